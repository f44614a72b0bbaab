package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// OCSP responses are signed by the CA's own key, valid for ocspValidity,
// and kept: a request gets the kept response while the certificate's
// status is the one it gives and it is younger than ocspRefresh. The
// status is read from the store at each request, so a revocation shows at
// once on every server.
const (
	ocspValidity = 24 * time.Hour
	ocspRefresh  = ocspValidity / 2
	// ocspCacheSize bounds the responses kept; past it, the cache starts
	// over.
	ocspCacheSize = 100_000
)

// DefaultOCSPUnknownRate is how many OCSP responses per second a server
// signs, at most, for serials no CA issued. Anyone may ask about any
// serial, and each answer is a signing the CA's log keeps for good: past
// this rate the responder answers tryLater (RFC 6960) instead, so that
// made-up serials cannot grow the logs without bound. Certificates that
// were issued are never held back.
const DefaultOCSPUnknownRate = 50

// ocspCache keeps signed responses by CA and serial.
type ocspCache struct {
	mu sync.Mutex
	m  map[ocspKey]*ocspEntry
}

type ocspKey struct{ caID, serial string }

type ocspEntry struct {
	status    int
	revokedAt time.Time
	der       []byte
	signedAt  time.Time
}

func (c *ocspCache) get(k ocspKey) *ocspEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *ocspCache) put(k ocspKey, e *ocspEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= ocspCacheSize {
		c.m = make(map[ocspKey]*ocspEntry)
	}
	c.m[k] = e
}

// OCSP answers an OCSP request (RFC 6960, DER) with a DER response. It
// never fails: a request it cannot answer gets an OCSP error response
// (malformedRequest, unauthorized for a CA it does not serve, or
// internalError), and only the first certificate of a request is answered,
// as RFC 5019's lightweight profile, which AWS follows.
func (s *Service) OCSP(ctx context.Context, request []byte) []byte {
	req, err := ocsp.ParseRequest(request)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse
	}
	resp, err := s.ocspResponse(ctx, req)
	if errors.Is(err, errOCSPUnauthorized) {
		return ocsp.UnauthorizedErrorResponse
	}
	if errors.Is(err, errOCSPTryLater) {
		return ocsp.TryLaterErrorResponse
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "answering an OCSP request", "error", err)
		return ocsp.InternalErrorErrorResponse
	}
	return resp
}

// errOCSPUnauthorized is a request for a CA this server does not answer
// for: unknown, without OCSP, or not signing.
var errOCSPUnauthorized = errors.New("authority: OCSP request for a CA this server does not answer for")

// errOCSPTryLater is a request for an unknown serial past the server's
// rate of them (Config.OCSPUnknownRate).
var errOCSPTryLater = errors.New("authority: too many OCSP requests for unknown serials")

func (s *Service) ocspResponse(ctx context.Context, req *ocsp.Request) ([]byte, error) {
	if req.HashAlgorithm != crypto.SHA1 {
		return nil, errOCSPUnauthorized // CAs are found by their SHA-1 key hash
	}
	ca, err := s.store.FindCAByKeyID(ctx, hex.EncodeToString(req.IssuerKeyHash))
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, errOCSPUnauthorized
	}
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	if ca.OCSP() == nil || len(ca.Certificate) == 0 || !containsStatus(crlStatuses, ca.StatusAt(now)) {
		return nil, errOCSPUnauthorized
	}
	issuer, err := s.caCertificate(ca)
	if err != nil {
		return nil, err
	}
	if name := sha1.Sum(issuer.RawSubject); !bytes.Equal(name[:], req.IssuerNameHash) {
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
		template.Status, template.RevokedAt, template.RevocationReason = ocsp.Revoked, cert.RevokedAt, crlReasons[cert.RevocationReason]
	}
	key := ocspKey{ca.ID, serial}
	if e := s.ocsp.get(key); e != nil && e.status == template.Status && e.revokedAt.Equal(template.RevokedAt) && now.Sub(e.signedAt) < ocspRefresh {
		return e.der, nil
	}
	if template.Status == ocsp.Unknown && !s.ocspUnknown.AllowN(s.now(), 1) {
		return nil, errOCSPTryLater
	}

	signer, err := s.signer(ca)
	if err != nil {
		return nil, err
	}
	if template.SignatureAlgorithm, err = caSignatureAlgorithm(ca); err != nil {
		return nil, err
	}
	template.ThisUpdate, template.NextUpdate, template.ProducedAt = now, now.Add(ocspValidity), now
	der, err := ocsp.CreateResponse(issuer, issuer, template, signer)
	if err != nil {
		return nil, err
	}
	// The response leaves only once its signing is in the CA's log.
	use := openpca.OCSPUse(ca, serial, ocspStatusNames[template.Status], now, der)
	if err := s.store.RecordKeyUse(ctx, use, crlStatuses); err != nil {
		if errors.Is(err, openpca.ErrCAState) {
			return nil, errOCSPUnauthorized
		}
		return nil, err
	}
	s.ocsp.put(key, &ocspEntry{status: template.Status, revokedAt: template.RevokedAt, der: der, signedAt: now})
	return der, nil
}

var ocspStatusNames = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}
