package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// A CA's OCSP answers are signed by a delegated responder (RFC 6960,
// 4.2.2.2): a key each server makes for the CA, kept in its memory only,
// and a short-lived certificate for it that the CA issues, marked for OCSP
// signing and not to be checked for revocation itself (id-pkix-ocsp-nocheck,
// 4.2.2.2.1). The CA's key then signs a certificate every
// responderLifetime/2 per server, logged as any issuance, instead of an
// answer per certificate and status twice a day, which its log would keep
// for good; and a CA whose key is in hardware is not asked to sign at the
// pace relying parties ask.
//
// A responder's key that leaked would vouch for any status of the CA's
// certificates until its certificate ends, which no revocation of it
// shortens: responderLifetime bounds that. Operators who want every answer
// signed by the CA's own key, and logged, turn delegation off
// (Config.OCSPSignedByCA).
//
// The CA signs its answers itself where a responder is not to be relied
// on (see delegates): for ML-DSA and SM2 keys, whose relying parties' OCSP
// clients rarely take a delegated responder of them (Go's refuses both);
// for a CA whose certificate or chain constrains names, which its
// responder's name would have to satisfy; for a CA certificate whose key
// identifier is not made from its key alone; and when the CA's
// certificate ends before an answer signed now would, or has not begun.
// Only an ACTIVE CA issues a responder: a disabled one uses the one it
// has, then signs itself.
const (
	// responderLifetime is how long a responder's certificate is valid;
	// a server issues the next at half of it, and stops using one whose
	// end would come before that of an answer it signs (ocspValidity).
	responderLifetime = 3 * 24 * time.Hour
	// responderBackdate starts a responder's certificate before its
	// issuance, for relying parties whose clocks run behind.
	responderBackdate = time.Hour
	// responderRetry is how long a server waits, after a try to issue a
	// CA's responder failed, before it tries again: each try makes a key.
	responderRetry = time.Minute
	// signRetry is how long a server waits, after the CA's key failed to
	// sign for OCSP, before it asks the key store again; meanwhile the
	// answers the key would sign are tryLater.
	signRetry = 10 * time.Second
)

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960, 4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// ocspResponder is a CA's delegated OCSP responder.
type ocspResponder struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// usable reports whether r may sign, at now, answers about the
// certificates of the CA certificate issuer: its certificate was issued
// under that one and outlasts an answer.
func (r *ocspResponder) usable(issuer *x509.Certificate, now time.Time) bool {
	return r != nil && bytes.Equal(r.cert.RawIssuer, issuer.RawSubject) && bytes.Equal(r.cert.AuthorityKeyId, issuer.SubjectKeyId) &&
		!now.Before(r.cert.NotBefore) && !now.Add(ocspValidity).After(r.cert.NotAfter) && !r.cert.NotAfter.After(issuer.NotAfter)
}

// due reports whether the next responder is to be issued at now.
func (r *ocspResponder) due(now time.Time) bool {
	return !now.Before(r.cert.NotBefore.Add(responderBackdate + responderLifetime/2))
}

// responders are a server's delegated OCSP responders, by CA id.
type responders struct {
	mu     sync.Mutex
	by     map[string]*ocspResponder
	failed map[string]time.Time // when issuing a CA's next one last failed
	// refused is when a CA's own key last failed to sign for OCSP (a
	// responder's certificate, or an answer): for signRetry after, the
	// key store is not asked again, and answers are tryLater.
	refused map[string]time.Time
	// queued are the CAs whose next responder's key waits for the slot of
	// the responders' keys, behind other CAs'.
	queued map[string]bool
}

// queue records whether ca's next responder's key waits for its slot.
func (rs *responders) queue(caID string, waits bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !waits {
		delete(rs.queued, caID)
		return
	}
	if rs.queued == nil {
		rs.queued = make(map[string]bool)
	}
	rs.queued[caID] = true
}

// waiting reports whether ca's next responder's key waits for its slot.
func (rs *responders) waiting(caID string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.queued[caID]
}

// recent reports whether at is within d of now. A time further after now
// was set by a clock since stepped back, and does not count: a wait it
// began would last as long as the step. (One a little after now is of a
// request that read the clock a moment later, or truncated it.)
func recent(now, at time.Time, d time.Duration) bool {
	since := now.Sub(at)
	return since > -d && since < d
}

// refuse records that ca's key failed to sign at now, and reports whether
// that is news: no refusal was recorded within signRetry. Requests at once
// about distinct serials each ask the key store before the first refusal
// is recorded; only one of them need say so.
func (rs *responders) refuse(caID string, now time.Time) (first bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.refused == nil {
		rs.refused = make(map[string]time.Time)
	}
	at, ok := rs.refused[caID]
	rs.refused[caID] = now
	return !ok || !recent(now, at, signRetry)
}

// refusing reports whether ca's key failed to sign within signRetry of
// now.
func (rs *responders) refusing(caID string, now time.Time) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	at, ok := rs.refused[caID]
	if ok && !recent(now, at, signRetry) {
		delete(rs.refused, caID)
		return false
	}
	return ok
}

func (rs *responders) get(caID string) (*ocspResponder, time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.by[caID], rs.failed[caID]
}

// set records the outcome of issuing a CA's responder at now, and forgets
// those that ended (of CAs no longer asked about, or gone).
func (rs *responders) set(caID string, r *ocspResponder, err error, now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.by == nil {
		rs.by, rs.failed = make(map[string]*ocspResponder), make(map[string]time.Time)
	}
	if err != nil {
		rs.failed[caID] = now
		return
	}
	delete(rs.failed, caID)
	rs.by[caID] = r
	for id, other := range rs.by {
		if now.After(other.cert.NotAfter) {
			delete(rs.by, id)
		}
	}
}

// delegates reports whether ca's answers at now are its responder's to
// sign (see above). Its certificate's key identifier must be one made
// from the key alone, as the certificates that renew it would make it
// again: a responder's authority key identifier names the CA certificate
// it was issued under, and OpenSSL refuses a responder whose identifier
// another certificate of the CA's key does not have.
func (s *Service) delegates(ca *openpca.CA, is *issuer, now time.Time) bool {
	alg := ca.Config.KeyAlgorithm
	return !s.ocspSignedByCA && !pki.IsMLDSA(alg) && alg != openpca.KeyAlgorithmSm2 && !is.constrains() &&
		!now.Before(is.cert.NotBefore) && !is.cert.NotAfter.Before(now.Add(ocspValidity)) && pki.KeyMadeID(is.cert)
}

// errResponderUnusable is a responder issued that ocspResponder would not
// use, which should not happen: the CA signs its answers itself instead.
var errResponderUnusable = errors.New("authority: the OCSP responder issued is not one to use")

// ocspResponder returns the responder to sign ca's answers at now, issuing
// one if it has none it may use, or nil if the CA signs them itself: where
// it does not delegate them, while it is not ACTIVE and has no responder
// (only an active CA issues), for a minute after an issuance failed, and
// while its responder's key waits behind other CAs'.
func (s *Service) ocspResponder(ctx context.Context, ca *openpca.CA, is *issuer, now time.Time) (*ocspResponder, error) {
	if !s.delegates(ca, is, now) {
		return nil, nil
	}
	r, failed := s.responders.get(ca.ID)
	usable := r.usable(is.cert, now)
	wait := recent(now, failed, responderRetry) || ca.StatusAt(now) != openpca.CertificateAuthorityStatusActive
	switch {
	case usable && (!r.due(now) || wait):
		return r, nil
	case wait:
		return nil, nil
	}
	// While the one in use serves, its successor is issued beside the
	// requests, not in their way.
	issue := s.shared(ctx, "issuing an OCSP responder", func(ctx context.Context) (any, error) { return s.issueResponder(ctx, ca, is) })
	flight := s.flights.do(&s.responderFlights, ca.ID, func() (any, error) {
		v, err := issue() // a panic in it is its error, whose try is paced too
		r, _ := v.(*ocspResponder)
		if err == nil && !r.usable(is.cert, s.now()) {
			r, err = nil, errResponderUnusable
		}
		s.responders.set(ca.ID, r, err, s.now())
		if err != nil {
			s.logger.ErrorContext(ctx, "issuing an OCSP responder; the CA's answers are signed by the one in use, or by the CA itself, or fail, until it is tried again in a minute",
				"ca", ca.ARN, "error", err)
		}
		return r, err
	})
	if usable {
		return r, nil
	}
	// The request waits while its CA's responder is made, not while its
	// key waits behind other CAs' (after a restart, one request to each of
	// many RSA-4096 CAs queued the last for 15 s): found so queued once
	// ocspSignerWait has passed (looked at each ocspSignerWait, as the key
	// joins the queue once the CA's key is open), the CA signs this answer
	// itself, as when an issuance failed.
	queued := time.NewTicker(ocspSignerWait)
	defer queued.Stop()
	for {
		select {
		case res := <-flight:
			switch {
			case errors.Is(res.Err, errResponderUnusable) || errors.Is(res.Err, openpca.ErrCAState):
				return nil, nil
			case res.Err != nil:
				return nil, res.Err
			}
			return res.Val.(*ocspResponder), nil
		case <-queued.C:
			if s.responders.waiting(ca.ID) {
				return nil, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// flights are the signings that requests share (singleflight), which run
// on when the request that began them ends: Service.Wait waits for them,
// before the store and the key stores close, and none begins after.
type flights struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// errStopping is a shared signing asked for once the server stops.
var errStopping = openpca.Errorf(openpca.CodeServiceUnavailable, "The server is stopping; retry.")

// do runs fn in g under key, shared with the callers that ask at once,
// and returns the channel of its result.
func (f *flights) do(g *singleflight.Group, key string, fn func() (any, error)) <-chan singleflight.Result {
	out := make(chan singleflight.Result, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		out <- singleflight.Result{Err: errStopping}
		return out
	}
	f.wg.Add(1)
	ch := g.DoChan(key, fn)
	go func() {
		defer f.wg.Done()
		out <- <-ch
	}()
	return out
}

// Wait waits for the signings that requests share to end, and lets none
// begin after: a signing by a CA's key must not outlive its store, which
// would not record it. Call it once requests stopped. A key store that
// does not answer (a token's signing heeds no context) is waited for
// ocspSigningTimeout at most.
func (s *Service) Wait() {
	s.flights.mu.Lock()
	s.flights.closed = true
	s.flights.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.flights.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ocspSigningTimeout):
		s.logger.Warn("stopping without the OCSP signings still under way: what a CA's key signs from now on is not recorded, and never leaves the server")
	}
}

// shared makes fn a function that requests share through singleflight: it
// runs with a context of its own (the first requester's values, not its
// end, bounded by ocspSigningTimeout), and a panic in it is its error,
// since singleflight raises it again where nothing recovers it, and the
// process would end.
func (s *Service) shared(ctx context.Context, what string, fn func(context.Context) (any, error)) func() (any, error) {
	return func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.logger.ErrorContext(ctx, "panic "+what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				v, err = nil, fmt.Errorf("authority: panic %s: %v", what, p)
			}
		}()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ocspSigningTimeout)
		defer cancel()
		return fn(ctx)
	}
}

// issueResponder makes a responder for ca: a key of the CA's algorithm
// and a certificate the CA signs for it, recorded as the CA's issuance.
func (s *Service) issueResponder(ctx context.Context, ca *openpca.CA, is *issuer) (*ocspResponder, error) {
	signer, err := s.keys.Signer(ctx, ca)
	if err != nil {
		s.responders.refuse(ca.ID, s.now())
		return nil, err
	}
	sigAlg, err := pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, ca.Config.SigningAlgorithm)
	if err != nil {
		return nil, err
	}
	// With the slot of the responders' keys (an RSA-4096 key takes a
	// second or more of a processor), not an answer's, waiting half the
	// issuance's time, which leaves the other half to make the key: a
	// responder not issued has the CA sign its answers for a minute.
	s.responders.queue(ca.ID, true)
	release, err := s.ocspSlots.key(ctx, ocspSigningTimeout/2)
	s.responders.queue(ca.ID, false)
	if err != nil {
		return nil, err
	}
	defer release()
	key, err := pki.GenerateKey(ca.Config.KeyAlgorithm)
	release()
	if err != nil {
		return nil, err
	}
	issued := s.now().UTC()
	now := issued.Truncate(time.Second)
	nb, na := now.Add(-responderBackdate), now.Add(responderLifetime)
	if nb.Before(is.cert.NotBefore) {
		nb = is.cert.NotBefore
	}
	if na.After(is.cert.NotAfter) {
		na = is.cert.NotAfter
	}
	subject, err := responderName(is.cert)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		serial, err := pki.NewSerial(issued)
		if err != nil {
			return nil, err
		}
		der, err := pki.CreateCertificate(&x509.Certificate{
			SerialNumber: serial, RawSubject: subject, NotBefore: nb, NotAfter: na, SignatureAlgorithm: sigAlg, AuthorityKeyId: is.cert.SubjectKeyId,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, BasicConstraintsValid: true,
			ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1.NullBytes}},
		}, is.cert, key.Public(), signer)
		if err != nil {
			s.responders.refuse(ca.ID, s.now())
			return nil, wrongSignature(signer, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		formatted, err := pki.FormatSubject(cert.RawSubject)
		if err != nil {
			return nil, err
		}
		c := &openpca.Certificate{CAID: ca.ID, AccountID: ca.AccountID, Serial: pki.SerialHex(serial), DER: der, Subject: formatted,
			NotBefore: nb, NotAfter: na, IssuedAt: issued, RequestedBy: openpca.ResponderPrincipal, RequestID: openpca.RequestIDFrom(ctx)}
		c.ARN = openpca.CertificateARN(ca.ARN, c.Serial)
		_, err = s.store.RecordIssuance(ctx, &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(ca.ARN, c),
			Statuses: []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}})
		if errors.Is(err, openpca.ErrConflict) && attempt < serialAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.logger.InfoContext(ctx, "issued an OCSP responder", "ca", ca.ARN, "certificate", c.ARN, "not_after", na)
		return &ocspResponder{cert: cert, key: key}, nil
	}
}

// responderName is the subject of the responder of the CA certificate
// issuer: the CA's name but for its common name, OCSP responder, a name of
// the CA's organization. Never the CA's own: a certificate whose subject
// is its issuer's counts as self-issued, which relying parties treat
// apart. Names are compared as OpenSSL compares them (RFC 5280, 7.1):
// their common names, the only attribute that could tell them apart,
// without case or the spaces around and between words.
func responderName(issuer *x509.Certificate) ([]byte, error) {
	name := pkix.Name{Country: issuer.Subject.Country, Organization: issuer.Subject.Organization, OrganizationalUnit: issuer.Subject.OrganizationalUnit,
		Locality: issuer.Subject.Locality, Province: issuer.Subject.Province}
	canonical := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	for _, cn := range []string{"OCSP responder", "Delegated OCSP responder"} {
		if !slices.ContainsFunc(issuer.Subject.Names, func(a pkix.AttributeTypeAndValue) bool {
			v, ok := a.Value.(string)
			return a.Type.Equal(oidCommonName) && ok && canonical(v) == canonical(cn)
		}) {
			name.CommonName = cn
			return asn1.Marshal(name.ToRDNSequence())
		}
	}
	return nil, errors.New("authority: no name for an OCSP responder differs from its CA's")
}
