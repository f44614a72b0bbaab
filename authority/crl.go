package authority

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// DefaultCRLExpirationInDays is the life of a CRL when the configuration
// sets none, as the AWS console proposes.
const DefaultCRLExpirationInDays = 7

// CRL publication timing. A new CRL is wanted at once after a revocation:
// the server that revokes wakes its publisher, and the others look every
// crlPoll. A failed publication is retried after crlRetry.
const (
	crlPoll  = 2 * time.Second
	crlLease = time.Minute
	crlRetry = 30 * time.Second
)

// crlKey is the key of a CA's CRL in its bucket: crl/<ca-id>.crl, as AWS
// writes it, or <CustomPath>/<ca-id>.crl (our reading of CustomPath,
// which AWS documents only by example).
func crlKey(ca *openpca.CA, cfg *openpca.CrlConfiguration) string {
	prefix := "crl"
	if cfg.CustomPath != "" {
		prefix = cfg.CustomPath
	}
	return prefix + "/" + ca.ID + ".crl"
}

// crlURL is the distribution point of a CA's CRL: at the CNAME if set,
// else where the object store serves the bucket.
func (s *Service) crlURL(ca *openpca.CA, cfg *openpca.CrlConfiguration) string {
	if cfg.CustomCname != "" {
		return "http://" + cfg.CustomCname + "/" + crlKey(ca, cfg)
	}
	return s.objects.URL(cfg.S3BucketName, crlKey(ca, cfg))
}

// ocspURL is where relying parties ask for the status of a CA's
// certificates: this server's /ocsp, under the CNAME if set (which must
// lead to this server).
func (s *Service) ocspURL(cfg *openpca.OcspConfiguration) string {
	base := s.publicURL
	if cfg.OcspCustomCname != "" {
		base = "http://" + cfg.OcspCustomCname
	}
	return base + "/ocsp"
}

// Extension OIDs the revocation extensions check for.
var (
	oidCRLDistributionPoints  = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAuthorityInfoAccess    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidIssuingDistributionPtr = asn1.ObjectIdentifier{2, 5, 29, 28}
)

// addRevocationInfo tells relying parties of a certificate the CA issues
// where to learn of its revocation: the CRL distribution point if the CA
// publishes CRLs (unless omitted), and the OCSP responder if OCSP is
// enabled, each unless the certificate already carries its own.
func (s *Service) addRevocationInfo(ca *openpca.CA, t *x509.Certificate) {
	has := func(oid asn1.ObjectIdentifier) bool {
		for _, e := range t.ExtraExtensions {
			if e.Id.Equal(oid) {
				return true
			}
		}
		return false
	}
	if crl := ca.CRL(); crl != nil && !omitCDP(crl) && len(t.CRLDistributionPoints) == 0 && !has(oidCRLDistributionPoints) {
		t.CRLDistributionPoints = []string{s.crlURL(ca, crl)}
	}
	if o := ca.OCSP(); o != nil && len(t.OCSPServer) == 0 && !has(oidAuthorityInfoAccess) {
		t.OCSPServer = []string{s.ocspURL(o)}
	}
}

func omitCDP(cfg *openpca.CrlConfiguration) bool {
	o := cfg.CrlDistributionPointExtensionConfiguration
	return o != nil && o.OmitExtension != nil && *o.OmitExtension
}

// WakeCRLs tells the CRL publisher that a CRL is wanted.
func (s *Service) WakeCRLs() {
	select {
	case s.crlWake <- struct{}{}:
	default:
	}
}

// PublishCRLs publishes the CRLs the store says are wanted or due, until
// ctx ends; owner names this server among those sharing the store.
func (s *Service) PublishCRLs(ctx context.Context, owner string) {
	t := time.NewTicker(crlPoll)
	defer t.Stop()
	for ctx.Err() == nil {
		job, err := s.store.ClaimCRL(ctx, owner, s.now(), crlLease)
		if err == nil {
			if err := s.publishCRL(ctx, job, owner); err != nil && ctx.Err() == nil {
				s.logger.Error("publishing a CRL", "ca", job.CAID, "error", err)
				if err := s.store.ReleaseCRL(context.WithoutCancel(ctx), job.CAID, owner, s.now().Add(crlRetry)); err != nil {
					s.logger.Error("releasing a CRL", "ca", job.CAID, "error", err)
				}
			}
			continue
		}
		if !errors.Is(err, openpca.ErrNotFound) && ctx.Err() == nil {
			s.logger.Error("claiming a CRL", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-s.crlWake:
		case <-t.C:
		}
	}
}

// crlStatuses are those of a CA that signs CRLs: a disabled CA still
// revokes, and its relying parties still need its CRL.
var crlStatuses = []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive, openpca.CertificateAuthorityStatusDisabled}

// publishCRL signs the CRL a job asks for, records the key use, and
// writes the CRL to the CA's bucket. A CA that no longer publishes CRLs
// (disabled configuration, no certificate yet, deleted or expired) gets
// none, and the job is done.
func (s *Service) publishCRL(ctx context.Context, job *openpca.CRLJob, owner string) error {
	ca, err := s.store.FindCA(ctx, job.AccountID, job.CAID)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	cfg := ca.CRL()
	if cfg == nil || len(ca.Certificate) == 0 || !containsStatus(crlStatuses, ca.StatusAt(now)) {
		return s.store.FinishCRL(ctx, ca.ID, owner, job.Wanted, time.Time{}, time.Time{})
	}
	der, next, revoked, err := s.signCRL(ctx, ca, cfg, job, now)
	if err != nil {
		return err
	}
	use := openpca.CRLUse(ca, job.Number+1, now, next, revoked, der)
	if err := s.store.RecordCRL(ctx, job, owner, use, crlStatuses); err != nil {
		return fmt.Errorf("recording the CRL's key use: %w", err)
	}
	err = s.objects.Put(ctx, openpca.Object{Bucket: cfg.S3BucketName, Key: crlKey(ca, cfg), ContentType: "application/pkix-crl", ACL: crlACL(cfg)},
		bytes.NewReader(der))
	if err != nil {
		return fmt.Errorf("writing the CRL to bucket %s: %w", cfg.S3BucketName, err)
	}
	// Refresh at half the CRL's life, as AWS does.
	if err := s.store.FinishCRL(ctx, ca.ID, owner, job.Wanted, now, now.Add(next.Sub(now)/2)); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "CRL published", "ca", ca.ARN, "number", job.Number+1, "revoked", revoked, "bucket", cfg.S3BucketName, "key", crlKey(ca, cfg))
	return nil
}

// crlACL is the ACL of CRL objects: PUBLIC_READ unless the configuration
// says otherwise, as AWS.
func crlACL(cfg *openpca.CrlConfiguration) openpca.S3ObjectAcl {
	if cfg.S3ObjectAcl == "" {
		return openpca.S3ObjectAclPublicRead
	}
	return cfg.S3ObjectAcl
}

// signCRL signs CRL number job.Number+1 of a CA at now, and returns it, its
// nextUpdate and how many certificates it lists. A revoked certificate is
// listed until it expires, and in one more CRL after: those that expired
// after the last CRL are still listed.
func (s *Service) signCRL(ctx context.Context, ca *openpca.CA, cfg *openpca.CrlConfiguration, job *openpca.CRLJob, now time.Time) ([]byte, time.Time, int, error) {
	issuer, err := s.caCertificate(ca)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	signer, err := s.signer(ctx, ca)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	sigAlg, err := caSignatureAlgorithm(ca)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	days := int(cfg.ExpirationInDays)
	if days == 0 {
		days = DefaultCRLExpirationInDays
	}
	next := now.AddDate(0, 0, days)
	cutoff := job.LastThisUpdate
	if cutoff.IsZero() {
		cutoff = now
	}
	list := &x509.RevocationList{Number: big.NewInt(job.Number + 1), ThisUpdate: now, NextUpdate: next, SignatureAlgorithm: sigAlg}
	err = s.store.RevokedCertificates(ctx, ca.ID, cutoff, func(r *openpca.RevokedCertificate) error {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return fmt.Errorf("serial %q of %s is not hexadecimal", r.Serial, ca.ARN)
		}
		list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: serial, RevocationTime: r.RevokedAt, ReasonCode: crlReasons[r.Reason],
		})
		return nil
	})
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	if cfg.CrlType == openpca.CrlTypePartitioned && !omitCDP(cfg) {
		idp, err := issuingDistributionPoint(s.crlURL(ca, cfg))
		if err != nil {
			return nil, time.Time{}, 0, err
		}
		list.ExtraExtensions = append(list.ExtraExtensions, idp)
	}
	der, err := x509.CreateRevocationList(rand.Reader, list, issuer, signer)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("signing the CRL of %s: %w", ca.ARN, err)
	}
	return der, next, len(list.RevokedCertificateEntries), nil
}

// caSignatureAlgorithm is the algorithm a CA signs its CRLs and OCSP
// responses with: the one of its configuration.
func caSignatureAlgorithm(ca *openpca.CA) (x509.SignatureAlgorithm, error) {
	return pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, ca.Config.SigningAlgorithm)
}

// crlReasons maps the API's revocation reasons to RFC 5280's CRLReason
// codes.
var crlReasons = map[openpca.RevocationReason]int{
	openpca.RevocationReasonUnspecified:                    0,
	openpca.RevocationReasonKeyCompromise:                  1,
	openpca.RevocationReasonCertificateAuthorityCompromise: 2,
	openpca.RevocationReasonAffiliationChanged:             3,
	openpca.RevocationReasonSuperseded:                     4,
	openpca.RevocationReasonCessationOfOperation:           5,
	openpca.RevocationReasonPrivilegeWithdrawn:             9,
	openpca.RevocationReasonAACompromise:                   10,
}

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
	return pkix.Extension{Id: oidIssuingDistributionPtr, Critical: true, Value: value}, nil
}
