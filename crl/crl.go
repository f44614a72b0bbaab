// Package crl publishes the certificate revocation lists of CAs: it signs
// each CA's CRL when a revocation or a change of the CA asks for one, and
// again at half its life, records the signing in the CA's key-use log, and
// writes the CRL to the CA's bucket.
package crl

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// Key is the key of a CA's CRL in its bucket: crl/<ca-id>.crl, as AWS
// writes it, or <CustomPath>/<ca-id>.crl (our reading of CustomPath,
// which AWS documents only by example).
func Key(ca *openpca.CA, cfg *openpca.CrlConfiguration) string {
	prefix := "crl"
	if cfg.CustomPath != "" {
		prefix = cfg.CustomPath
	}
	return prefix + "/" + ca.ID + ".crl"
}

// URL is the distribution point of a CA's CRL: at the CNAME if set, else
// where the object store serves the bucket. Of the key, what a URL's path
// cannot hold as it is ("%", "?", "#", a space...) is escaped, and only
// that: a certificate's distribution point and a partitioned CRL's must be
// the same string, in certificates issued before as after.
func URL(objects openpca.ObjectStore, ca *openpca.CA, cfg *openpca.CrlConfiguration) string {
	var b strings.Builder
	for _, c := range []byte(Key(ca, cfg)) {
		if inPath(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	key := b.String()
	if cfg.CustomCname != "" {
		return "http://" + cfg.CustomCname + "/" + key
	}
	return objects.URL(cfg.S3BucketName, key)
}

// inPath reports whether c stands for itself in a URL's path: RFC 3986's
// pchar, and "/".
func inPath(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// OmitDistributionPoint reports whether the CA's certificates leave out
// the CRL distribution point extension.
func OmitDistributionPoint(cfg *openpca.CrlConfiguration) bool {
	o := cfg.CrlDistributionPointExtensionConfiguration
	return o != nil && o.OmitExtension != nil && *o.OmitExtension
}

// signTimeout bounds the opening of a CA's key and the CRL's signature,
// made by a token or KMS: a signature there takes milliseconds, and a
// minute is a store that hangs.
const signTimeout = time.Minute

// sign signs CRL number job.Number+1 of a CA at now, and returns it, its
// nextUpdate and what it lists. A revoked certificate is listed until it
// expires, and in one more CRL after: those that expired after the last
// CRL are still listed, and so is each revocation logged since the last
// CRL published read them (or the first signed, while none was), once,
// whatever its end.
func (p *Publisher) sign(ctx context.Context, ca *openpca.CA, cfg *openpca.CrlConfiguration, job *openpca.CRLJob, now time.Time) ([]byte, time.Time, *openpca.CRLEntries, error) {
	issuer, err := p.cfg.Keys.Certificate(ca)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	sigAlg, err := pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, ca.Config.SigningAlgorithm)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	next := now.AddDate(0, 0, int(cfg.ExpirationInDays))
	// Listed: what was still valid at the last CRL published (a
	// certificate stays on the first CRL past its end; its validity
	// includes its notAfter, RFC 5280 4.1.2.5), or at the first signed if
	// none was, so that one that expired while none could be written is on
	// the first written. Of a last CRL dated ahead (by a clock since
	// stepped back, or by a server whose clock runs ahead), which would
	// leave out certificates still valid, what was valid at the latest CRL
	// signed before now, or at now; so too of a last CRL dated after that
	// latest, which no CRL was (a CA that stopped publishing has its last
	// dated now). Audit verify holds a CRL to the latest of the CA's CRLs
	// before it dated at or before its own, which is none earlier than any
	// of these. To the second, as the CRL's record says it (certificates
	// end on one).
	last := job.LastThisUpdate
	if last.IsZero() {
		last = job.FirstSigned
	}
	if last.After(now) || !job.SignedBefore.IsZero() && last.After(job.SignedBefore) {
		last = job.SignedBefore
	}
	cutoff := last.Truncate(time.Second)
	if cutoff.IsZero() || cutoff.After(now) {
		cutoff = now
	}
	list := &x509.RevocationList{Number: big.NewInt(job.Number + 1), ThisUpdate: now, NextUpdate: next, SignatureAlgorithm: sigAlg}
	var revoked pki.RevokedCertificates
	// A certificate whose notAfter is the cutoff itself was still valid
	// then: the store lists those that expire after the instant before
	// (times are stored to the microsecond). A revocation the last CRL
	// published did not read (or, while none was, the first signed, from
	// whose date the cutoff then is) may be of a certificate that ended
	// before it (one requested before the end, and committed while that
	// CRL read): listed from its end, it is on one CRL past it. A CA's
	// first CRL lists what is valid, as one whose CRLs were enabled late
	// would otherwise list every revocation it ever made.
	before, listedAfter, err := p.cfg.Store.RevokedCertificates(ctx, ca.ID, cutoff.Add(-time.Microsecond), job.RevocationsRead, func(r *openpca.RevokedCertificate) error {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return fmt.Errorf("serial %q of %s is not hexadecimal", r.Serial, ca.ARN)
		}
		return revoked.Add(serial, r.RevokedAt, pki.CRLReason(r.Reason))
	})
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	entries := &openpca.CRLEntries{RevocationsBefore: before, ExpiringFrom: listedAfter.Add(time.Microsecond), Count: revoked.Len(), SHA256: revoked.SHA256()}
	if job.RevocationsRead >= 0 {
		entries.RevocationsFrom = &job.RevocationsRead
	}
	if cfg.CrlType == openpca.CrlTypePartitioned && !OmitDistributionPoint(cfg) {
		idp, err := issuingDistributionPoint(URL(p.cfg.Objects, ca, cfg))
		if err != nil {
			return nil, time.Time{}, nil, err
		}
		list.ExtraExtensions = append(list.ExtraExtensions, idp)
	}
	// A token or KMS that hangs must not hold the CA's CRL for good: the
	// round's lease is renewed while it waits, so no other server would
	// take the CRL over. Bounded once the list is read, the wait is the
	// key store's alone.
	kctx, cancel := context.WithTimeout(ctx, p.signTimeout)
	defer cancel()
	signer, err := p.cfg.Keys.Signer(kctx, ca)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	der, err := pki.CreateRevocationList(list, &revoked, issuer, signer)
	if err != nil {
		return nil, time.Time{}, nil, fmt.Errorf("signing the CRL of %s: %w", ca.ARN, p.cfg.Keys.SigningError(signer, err))
	}
	return der, next, entries, nil
}

var oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}

// issuingDistributionPoint is the critical extension that binds a CRL to
// the distribution point its certificates name (RFC 5280, 5.2.5): with
// PARTITIONED CRLs, a relying party must check that they match.
func issuingDistributionPoint(uri string) (pkix.Extension, error) {
	// IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0]
	// DistributionPointName OPTIONAL, ... }, DistributionPointName ::=
	// CHOICE { fullName [0] GeneralNames, ... }, and a URI is
	// GeneralName [6] IA5String.
	type distributionPointName struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type idp struct {
		DistributionPoint distributionPointName `asn1:"optional,tag:0"`
	}
	value, err := asn1.Marshal(idp{DistributionPoint: distributionPointName{
		FullName: []asn1.RawValue{{Tag: 6, Class: asn1.ClassContextSpecific, Bytes: []byte(uri)}},
	}})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: value}, nil
}
