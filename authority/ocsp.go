package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/time/rate"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// OCSP responses are signed by the CA's delegated responder (see
// responder.go) or its own key, valid for ocspValidity, and kept, in
// memory and, for issued certificates, in the store for every server: a
// request gets the kept response while the certificate's status is the
// one it gives and it is younger than ocspRefresh. The status is read
// from the store at each request, so a revocation shows at once on every
// server.
const (
	ocspValidity = openpca.OCSPValidity
	ocspRefresh  = ocspValidity / 2
)

// ocspCacheBytes bounds the memory the kept responses take: about 30,000
// answers of P-256 responders, 14,000 of RSA-4096 ones (each carries its
// responder's certificate).
const ocspCacheBytes = 32 << 20

// DefaultOCSPUnknownRate is how many OCSP responses per second a server
// signs, at most, for serials no CA issued. Anyone may ask about any
// serial, and each answer is a signing, which the CA's log keeps for good
// where the CA signs its answers itself: past this rate the responder
// answers tryLater (RFC 6960) instead. It bounds the signing work
// outsiders can cause; DefaultOCSPUnknownBudget bounds what they can add
// to each log. Answers for certificates that were issued are held back by
// no rate, only by how many the server signs at once (Config.OCSPSigners).
const DefaultOCSPUnknownRate = 50

// DefaultOCSPUnknownBudget is how many bytes a server lets answers for
// serials a CA never issued add to that CA's key-use log per hour, where
// the CA signs its answers itself (about 1,500 answers, 24 MiB a day at
// most); past it, such requests get tryLater until the budget refills, at
// the same pace.
const DefaultOCSPUnknownBudget = 1 << 20

// ocspSignerWait is how long an OCSP answer to be signed waits for one of
// its slots (Config.OCSPSigners, Config.OCSPStoreSigners) before it is
// answered tryLater instead.
const ocspSignerWait = time.Second

// ocspEntryOverhead is what a key-use log entry takes in the database
// besides its record (about 325 bytes for an unknown serial): its keys,
// its Merkle tree hashes, and the tables' own bookkeeping. Measured with
// 5,000 such answers: 597 bytes an entry in all on SQLite, 644 on
// PostgreSQL; rounded up.
const ocspEntryOverhead = 384

// ocspCertID is the CertID of a request, exactly as asked: the key of the
// kept responses, so that a response is served only for the CertID it was
// signed for.
type ocspCertID struct {
	hash              crypto.Hash
	nameHash, keyHash string
	serial            string // the serial number's bytes, big-endian
}

// ocspEntry is a kept response, and the key identifier of the CA
// certificate its delegated responder was issued under (the responder's
// authority key identifier). Relying parties find the responder's issuer
// by it, and OpenSSL refuses a responder whose issuer is a CA certificate
// without it: the answer is served only while the CA's certificate in use
// has it, which a certificate imported since (a renewal by another CA)
// need not. An answer the CA signed itself (delegated false) names only
// the CA's name or key, which every certificate of the CA shares.
type ocspEntry struct {
	openpca.OCSPResponse
	delegated bool
	under     []byte
}

// keptEntry is the entry of a response the store keeps, nil if its
// responder's certificate does not read.
func keptEntry(r *openpca.OCSPResponse) *ocspEntry {
	responder, err := pki.OCSPResponder(r.DER)
	if err != nil {
		return nil
	}
	e := &ocspEntry{OCSPResponse: *r}
	if responder != nil {
		e.delegated, e.under = true, responder.AuthorityKeyId
	}
	return e
}

// signedUnder reports whether e may be served beside the CA certificate
// issuer.
func (e *ocspEntry) signedUnder(issuer *x509.Certificate) bool {
	return !e.delegated || bytes.Equal(e.under, issuer.SubjectKeyId)
}

func (id ocspCertID) size(e *ocspEntry) int {
	const overhead = 128 // map entry, headers of the strings and slices
	return len(id.nameHash) + len(id.keyHash) + len(id.serial) + len(e.CAID) + len(e.Serial) + len(e.DER) + len(e.Status) + len(e.under) + overhead
}

// ocspCache keeps signed responses within a bound on their bytes, in two
// generations: new responses go to the current one, and when it holds
// half the bound it becomes the previous one, replacing the one before.
// A response asked for again is moved to the current generation, so those
// in use stay while the rest age out.
type ocspCache struct {
	mu        sync.Mutex
	limit     int
	cur, prev map[ocspCertID]*ocspEntry
	curBytes  int
}

func (c *ocspCache) get(id ocspCertID) *ocspEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[id]; ok {
		return e
	}
	e, ok := c.prev[id]
	if ok {
		delete(c.prev, id)
		c.add(id, e)
	}
	return e
}

func (c *ocspCache) put(id ocspCertID, e *ocspEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.prev, id)
	if old, ok := c.cur[id]; ok {
		c.curBytes -= id.size(old)
		delete(c.cur, id)
	}
	c.add(id, e)
}

func (c *ocspCache) add(id ocspCertID, e *ocspEntry) {
	if c.cur == nil || c.curBytes+id.size(e) > c.limit/2 {
		c.prev, c.cur, c.curBytes = c.cur, make(map[ocspCertID]*ocspEntry), 0
	}
	c.cur[id] = e
	c.curBytes += id.size(e)
}

// ocspBudgets holds, per CA, what answers for unknown serials may still
// add to its log: a token bucket of bytes, full at the hourly budget and
// refilled at the budget per hour.
type ocspBudgets struct {
	mu      sync.Mutex
	perHour int
	cas     map[string]*rate.Limiter
}

// spend takes n bytes from the budget of CA caID at now, if it has them
// and then also allows: the server's own limit, which a CA past its
// budget leaves untouched for the others.
func (b *ocspBudgets) spend(caID string, n int, now time.Time, also func() bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.cas[caID]
	if !ok {
		if b.cas == nil {
			b.cas = make(map[string]*rate.Limiter)
		}
		l = rate.NewLimiter(rate.Limit(float64(b.perHour)/3600), b.perHour)
		b.cas[caID] = l
	}
	r := l.ReserveN(now, n)
	if !r.OK() || r.DelayFrom(now) > 0 || !also() {
		r.CancelAt(now)
		return false
	}
	return true
}

// OCSP answers an OCSP request (RFC 6960, DER) with a DER response. It
// never fails: a request it cannot answer gets an OCSP error response
// (malformedRequest, unauthorized for a CA it does not serve, or
// internalError). A request is about one certificate, as RFC 5019's
// lightweight profile, which AWS follows, says; one about more is
// malformedRequest (see pki.ErrOCSPRequestMany). What the response says
// is in said: the certificate's status (good, revoked or unknown), or the
// error response's name, as RFC 6960 spells it. A successful response
// comes with its thisUpdate and nextUpdate, which tell HTTP caches how
// long it may be kept; an error response with zero times.
func (s *Service) OCSP(ctx context.Context, request []byte) (resp []byte, said string, thisUpdate, nextUpdate time.Time) {
	req, err := pki.ParseOCSPRequest(request)
	if err != nil || !wellFormedSerial(req.SerialNumber) {
		return ocsp.MalformedRequestErrorResponse, openpca.OCSPMalformedRequest, time.Time{}, time.Time{}
	}
	e, err := s.ocspResponse(ctx, req)
	if errors.Is(err, errOCSPUnauthorized) {
		return ocsp.UnauthorizedErrorResponse, openpca.OCSPUnauthorized, time.Time{}, time.Time{}
	}
	// A key store that cannot sign now is a reason to ask again later.
	if errors.Is(err, errOCSPTryLater) || openpca.ErrorCode(err) == openpca.CodeServiceUnavailable {
		return ocsp.TryLaterErrorResponse, openpca.OCSPTryLater, time.Time{}, time.Time{}
	}
	if err != nil {
		if !openpca.Abandoned(ctx, err) {
			s.ocspFailures.ErrorContext(ctx, "answering an OCSP request", "error", err)
		}
		return ocsp.InternalErrorErrorResponse, openpca.OCSPInternalError, time.Time{}, time.Time{}
	}
	return e.DER, e.Status, e.SignedAt, e.SignedAt.Add(ocspValidity)
}

// wellFormedSerial reports whether n is a serial number RFC 5280 allows:
// positive, and at most openpca.MaxSerialOctets long. Anything else is not
// the serial of a certificate this server issued, and is never answered.
func wellFormedSerial(n *big.Int) bool {
	return n.Sign() > 0 && n.BitLen() < 8*openpca.MaxSerialOctets
}

// errOCSPUnauthorized is a request for a CA this server does not answer
// for: unknown, without OCSP, or not signing.
var errOCSPUnauthorized = errors.New("authority: OCSP request for a CA this server does not answer for")

// errOCSPTryLater is a request for an unknown serial past the server's
// rate of them (Config.OCSPUnknownRate), or past its CA's budget, or for a
// CA whose key failed to sign moments ago.
var errOCSPTryLater = errors.New("authority: an OCSP request to answer later")

// errOCSPBusy is an answer that found none of its OCSP slots free
// (Config.OCSPSigners, Config.OCSPStoreSigners) within ocspSignerWait:
// tryLater.
var errOCSPBusy = fmt.Errorf("%w: every OCSP signer is busy", errOCSPTryLater)

func (s *Service) ocspResponse(ctx context.Context, req *ocsp.Request) (*ocspEntry, error) {
	// CAs are found by their SHA-1 key hash. The answers the store keeps
	// are by CA and serial, which with SHA-1 alone (and a CA's subject,
	// which a renewal keeps) name one CertID: accepting another hash
	// would need it in their key.
	if req.HashAlgorithm != crypto.SHA1 || len(req.IssuerKeyHash) != sha1.Size {
		return nil, errOCSPUnauthorized
	}
	ca, err := s.store.FindCAByKeyID(ctx, hex.EncodeToString(req.IssuerKeyHash))
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, errOCSPUnauthorized
	}
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	if ca.OCSP() == nil || len(ca.Certificate) == 0 || !slices.Contains(openpca.RevocationStatuses, ca.StatusAt(now)) {
		return nil, errOCSPUnauthorized
	}
	is, err := s.keys.issuer(ca)
	if err != nil {
		return nil, err
	}
	if name := sha1.Sum(is.cert.RawSubject); !bytes.Equal(name[:], req.IssuerNameHash) {
		return nil, errOCSPUnauthorized
	}

	serial := pki.SerialHex(req.SerialNumber)
	template := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, IssuerHash: crypto.SHA1}
	cert, err := s.store.FindCertificate(ctx, ca.ID, serial)
	switch {
	case errors.Is(err, openpca.ErrNotFound):
		template.Status = ocsp.Unknown
	case err != nil:
		return nil, err
	case !cert.RevokedAt.IsZero():
		template.Status, template.RevokedAt, template.RevocationReason = ocsp.Revoked, cert.RevokedAt, pki.CRLReason(cert.RevocationReason)
	}
	id := ocspCertID{hash: req.HashAlgorithm, nameHash: string(req.IssuerNameHash), keyHash: string(req.IssuerKeyHash), serial: string(req.SerialNumber.Bytes())}
	status := pki.OCSPStatusName(template.Status)
	// Not an answer signed ahead of now, by a clock since stepped back:
	// relying parties refuse a thisUpdate in the future.
	current := func(e *ocspEntry) bool {
		return e.Status == status && e.RevokedAt.Equal(template.RevokedAt) && now.Sub(e.SignedAt) < ocspRefresh && !e.SignedAt.After(now) &&
			e.signedUnder(is.cert)
	}
	if e := s.ocsp.get(id); e != nil && current(e) {
		return e, nil
	}
	// Requests that miss at once share one signing: each would be signed,
	// and logged where the CA signs.
	// The signing is not the first requester's to cut short by leaving.
	flight := s.flights.do(&s.ocspFlights, ca.ID+"/"+serial+"/"+status+"/"+strconv.FormatInt(template.RevokedAt.UnixMicro(), 10), s.shared(ctx, "answering an OCSP request", func(ctx context.Context) (any, error) {
		// One that ended as this request missed the cache is not signed
		// again.
		if e := s.ocsp.get(id); e != nil && current(e) {
			return e, nil
		}
		signed, err := s.signOCSP(ctx, ca, is, serial, template, now, current)
		if err == nil {
			s.ocsp.put(id, signed)
		}
		return signed, err
	}))
	select {
	case r := <-flight:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*ocspEntry), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ocspSigningTimeout bounds a signing that requests share (and none of
// them can end).
const ocspSigningTimeout = 30 * time.Second

// signOCSP returns the answer template asks for, about the certificate of
// serial of ca at now: the one the store keeps if current, else one it
// signs and keeps (and logs, if the CA's key signs it).
func (s *Service) signOCSP(ctx context.Context, ca *openpca.CA, is *issuer, serial string, template ocsp.Response, now time.Time, current func(*ocspEntry) bool) (*ocspEntry, error) {
	status := pki.OCSPStatusName(template.Status)
	// The request names the CA (its name and key hashes were checked) and
	// the serial: the store's response for them is the one asked for.
	if template.Status != ocsp.Unknown {
		kept, err := s.store.OCSPResponse(ctx, ca.ID, serial)
		if err != nil && !errors.Is(err, openpca.ErrNotFound) {
			return nil, err
		}
		if kept != nil {
			if e := keptEntry(kept); e != nil && current(e) {
				return e, nil
			}
		}
	}
	responder, err := s.ocspResponder(ctx, ca, is, now)
	if err != nil {
		// The CA's key failed to sign the responder's certificate (which
		// ocspResponder logged): tryLater, as for the answers after it.
		if s.responders.refusing(ca.ID, now) {
			return nil, fmt.Errorf("%w: %w", errOCSPTryLater, err)
		}
		return nil, err
	}
	// A CA whose key failed to sign moments ago is not asked again at
	// every request: anyone can ask, and each try is a call to its key
	// store (a KMS request, a token's session) and was an ERROR line.
	if responder == nil && s.responders.refusing(ca.ID, now) {
		return nil, errOCSPTryLater
	}
	// A signing waits for one of its OCSP slots before an unknown serial
	// spends its rate and budget: one of the server's processors (a
	// responder's key, or the CA's in software), or one of its key store's
	// (a token or KMS), which a slow or hung store would otherwise hold
	// from every other CA's answers.
	var release func()
	if responder != nil || !s.keys.hardware(ca) {
		release, err = s.ocspSlots.processor(ctx, ocspSignerWait)
	} else {
		release, err = s.ocspSlots.store(ctx, ca.KeyStore, ca.ID, ocspSignerWait)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	if template.Status == ocsp.Unknown {
		rate := func() bool { return s.ocspUnknown.AllowN(s.now(), 1) }
		allowed := responder != nil && rate()
		if responder == nil {
			// What the answer will add to the log, known before it is
			// signed: its record's length does not depend on the signature.
			cost := len(openpca.OCSPUse(ca, serial, status, now, nil).Record) + ocspEntryOverhead
			allowed = s.ocspBudgets.spend(ca.ID, cost, s.now(), rate)
		}
		if !allowed {
			return nil, errOCSPTryLater
		}
	}

	if template.SignatureAlgorithm, err = pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, ca.Config.SigningAlgorithm); err != nil {
		return nil, err
	}
	// To the second, so that a revocation made this minute is not after
	// the answer that reports it (RFC 6960, 4.2.2.1).
	template.ThisUpdate, template.NextUpdate, template.ProducedAt = now, now.Add(ocspValidity), now
	var signedBy *x509.Certificate // nil: the CA
	var signer crypto.Signer
	if responder != nil {
		signedBy, signer = responder.cert, responder.key
	} else if signer, err = s.keys.Signer(ctx, ca); err != nil {
		return nil, s.refused(ctx, ca, err)
	}
	der, err := pki.CreateOCSPResponse(is.cert, signedBy, template, signer)
	release() // the store's write below needs no signer
	if err != nil {
		if responder == nil {
			return nil, s.refused(ctx, ca, wrongSignature(signer, err))
		}
		return nil, err
	}
	e := &ocspEntry{OCSPResponse: openpca.OCSPResponse{CAID: ca.ID, Serial: serial, Status: status, RevokedAt: template.RevokedAt, SignedAt: now, DER: der}}
	if responder != nil {
		e.delegated, e.under = true, responder.cert.AuthorityKeyId
	}
	// Answers for serials never issued are not kept: they would grow the
	// store with whatever serials anyone asks about.
	kept := &e.OCSPResponse
	if template.Status == ocsp.Unknown {
		kept = nil
	}
	// A response the CA's key signed leaves only once its signing is in
	// the CA's log; a responder's is in no log.
	var use *openpca.KeyUse
	if responder == nil {
		use = openpca.OCSPUse(ca, serial, status, now, der)
	} else if kept == nil {
		return e, nil
	}
	if err := s.store.RecordOCSP(ctx, use, kept, openpca.RevocationStatuses); err != nil {
		if errors.Is(err, openpca.ErrCAState) {
			return nil, errOCSPUnauthorized
		}
		return nil, err
	}
	return e, nil
}

// refused records that ca's key failed to sign an OCSP answer, logs it
// (once: the requests of the next signRetry do not ask the key store
// again), and returns the error as tryLater.
func (s *Service) refused(ctx context.Context, ca *openpca.CA, err error) error {
	if s.responders.refuse(ca.ID, s.now()) {
		s.logger.ErrorContext(ctx, "signing an OCSP answer with the CA's key; the answers it would sign are tryLater until it is tried again, 10 s on", "ca", ca.ARN, "error", err)
	}
	return fmt.Errorf("%w: %w", errOCSPTryLater, err)
}
