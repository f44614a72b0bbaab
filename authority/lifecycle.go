package authority

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// DefaultPermanentDeletionTimeInDays is the restoration period of a deleted
// CA when the request sets none.
const DefaultPermanentDeletionTimeInDays = 30

// UpdateCertificateAuthority changes a CA's status between ACTIVE and
// DISABLED, or its revocation configuration. The CA must be ACTIVE or
// DISABLED (an EXPIRED CA needs a new certificate first).
func (s *Service) UpdateCertificateAuthority(ctx context.Context, in *openpca.UpdateCertificateAuthorityRequest) error {
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, nil, func(ca *openpca.CA) error {
		switch in.Status {
		case "", openpca.CertificateAuthorityStatusActive, openpca.CertificateAuthorityStatusDisabled:
		default:
			return openpca.Errorf(openpca.CodeInvalidArgs, "Status %s cannot be set: UpdateCertificateAuthority sets a certificate authority only to ACTIVE or DISABLED.", in.Status)
		}
		if err := checkRevocation(in.RevocationConfiguration); err != nil {
			return err
		}
		if err := s.checkCRLBucket(ctx, ca.AccountID, in.RevocationConfiguration); err != nil {
			return err
		}
		now := s.now().UTC()
		if st := ca.StatusAt(now); st != openpca.CertificateAuthorityStatusActive && st != openpca.CertificateAuthorityStatusDisabled {
			return invalidState("The certificate authority must be in the ACTIVE or DISABLED state to be updated; %s is %s.", ca.ARN, st)
		}
		if in.Status != "" && in.Status != ca.Status {
			ca.SetStatus(in.Status, now)
		}
		if rc := in.RevocationConfiguration; rc != nil {
			// Each of CRL and OCSP left out keeps its configuration: an
			// update that names one does not silently turn the other off
			// (our reading; AWS does not document it).
			merged := openpca.RevocationConfiguration{}
			if ca.Revocation != nil {
				merged = *ca.Revocation
			}
			if rc.CrlConfiguration != nil {
				merged.CrlConfiguration = rc.CrlConfiguration
			}
			if rc.OcspConfiguration != nil {
				merged.OcspConfiguration = rc.OcspConfiguration
			}
			// An update that leaves CRLs as they were leaves them alone.
			if rc.CrlConfiguration != nil && len(ca.Certificate) > 0 {
				cert, err := pki.ParseCertificate(ca.Certificate)
				if err != nil {
					return err
				}
				if err := checkCRLSign(ca, cert, &merged, openpca.CodeInvalidArgs); err != nil {
					return err
				}
			}
			ca.Revocation = &merged
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "certificate authority updated", "ca", ca.ARN, "status", ca.Status)
	// A CRL configuration given has passed the bucket's probe: a CRL that
	// failed (its bucket gone, say, and now back) is not held to its
	// retry's wait, up to 15 minutes.
	if rc := in.RevocationConfiguration; rc != nil && rc.CrlConfiguration != nil && ca.CRL() != nil {
		if err := s.store.RetryCRLNow(ctx, ca.ID); err != nil {
			s.logger.WarnContext(ctx, "the CA's CRL that failed waits out its retry", "ca", ca.ARN, "error", err)
		}
	}
	s.wakeCRLs()
	return nil
}

// DeleteCertificateAuthority deletes a CA. An ACTIVE CA must be disabled
// first. A deleted CA stays restorable for PermanentDeletionTimeInDays,
// whatever its status was: AWS's API reference says so of a CA deleted
// while CREATING too.
func (s *Service) DeleteCertificateAuthority(ctx context.Context, in *openpca.DeleteCertificateAuthorityRequest) error {
	days := int(in.PermanentDeletionTimeInDays)
	if days == 0 {
		days = DefaultPermanentDeletionTimeInDays
	}
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, nil, func(ca *openpca.CA) error {
		now := s.now().UTC()
		switch st := ca.StatusAt(now); st {
		case openpca.CertificateAuthorityStatusActive:
			return invalidState("The certificate authority is not in a valid state for deletion: %s is ACTIVE; disable it with UpdateCertificateAuthority first.", ca.ARN)
		case openpca.CertificateAuthorityStatusDeleted:
			return invalidState("The certificate authority is not in a valid state for deletion: %s is already DELETED.", ca.ARN)
		}
		ca.RestorableUntil = now.Add(time.Duration(days) * 24 * time.Hour)
		ca.StatusBeforeDeletion = ca.Status
		ca.SetStatus(openpca.CertificateAuthorityStatusDeleted, now)
		var err error
		ca.Destruction, err = s.signDestruction(ca, auditlog.DestructionDeleted, ca.RestorableUntil)
		return err
	})
	if err == nil {
		s.keys.Forget(ca.ID)
		s.logger.InfoContext(ctx, "certificate authority deleted", "ca", ca.ARN, "restorable_until", ca.RestorableUntil)
	}
	return err
}

// RestoreCertificateAuthority restores a DELETED CA within its restoration
// period to the status it had when it was deleted (EXPIRED if its
// certificate has expired meanwhile).
func (s *Service) RestoreCertificateAuthority(ctx context.Context, in *openpca.RestoreCertificateAuthorityRequest) error {
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, nil, func(ca *openpca.CA) error {
		now := s.now().UTC()
		if st := ca.StatusAt(now); st != openpca.CertificateAuthorityStatusDeleted {
			return invalidState("The certificate authority %s is %s; only a DELETED certificate authority can be restored.", ca.ARN, st)
		}
		ca.SetStatus(ca.StatusBeforeDeletion, now)
		ca.StatusBeforeDeletion = ""
		ca.RestorableUntil = time.Time{}
		ca.Destruction = nil
		return nil
	})
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority restored", "ca", ca.ARN, "status", ca.Status)
	}
	return err
}

// checkTaggable refuses tag operations on a deleted CA.
func checkTaggable(ca *openpca.CA) error {
	if ca.Status == openpca.CertificateAuthorityStatusDeleted {
		return invalidState("The certificate authority %s is DELETED; restore it before changing or listing its tags.", ca.ARN)
	}
	return nil
}

// checkRevocation checks a revocation configuration beyond what the model
// constrains, as AWS documents: a disabled block carries nothing but
// Enabled, an enabled CRL names its bucket, a CNAME has no scheme, and
// the CRL distribution point cannot be both omitted and given a CNAME.
// A CustomPath with "." or ".." segments, which the model's pattern
// allows, is refused too (our choice): no object store holds such a key.
func checkRevocation(rc *openpca.RevocationConfiguration) error {
	if rc == nil {
		return nil
	}
	invalid := func(format string, args ...any) error {
		return openpca.Errorf(openpca.CodeInvalidArgs, format, args...)
	}
	if crl := rc.CrlConfiguration; crl != nil {
		if crl.Enabled == nil || !*crl.Enabled {
			if crl.ExpirationInDays != 0 || crl.CustomCname != "" || crl.S3BucketName != "" || crl.S3ObjectAcl != "" ||
				crl.CrlDistributionPointExtensionConfiguration != nil || crl.CrlType != "" || crl.CustomPath != "" {
				return invalid("CrlConfiguration: a disabled CRL takes no settings other than Enabled.")
			}
		} else if crl.S3BucketName == "" {
			return invalid("CrlConfiguration.S3BucketName is required when the CRL is enabled.")
		}
		if hasScheme(crl.CustomCname) {
			return invalid("CrlConfiguration.CustomCname %q must be a name, without http:// or https://.", crl.CustomCname)
		}
		for seg := range strings.SplitSeq(crl.CustomPath, "/") {
			if seg == "." || seg == ".." {
				return invalid("CrlConfiguration.CustomPath %q must not have . or .. segments.", crl.CustomPath)
			}
		}
		if omit := crl.CrlDistributionPointExtensionConfiguration; omit != nil && omit.OmitExtension != nil && *omit.OmitExtension && crl.CustomCname != "" {
			return invalid("CrlConfiguration: CustomCname cannot be set when the CRL distribution point extension is omitted.")
		}
	}
	if ocsp := rc.OcspConfiguration; ocsp != nil {
		if (ocsp.Enabled == nil || !*ocsp.Enabled) && ocsp.OcspCustomCname != "" {
			return invalid("OcspConfiguration: a disabled OCSP configuration takes no OcspCustomCname.")
		}
		if hasScheme(ocsp.OcspCustomCname) {
			return invalid("OcspConfiguration.OcspCustomCname %q must be a name, without http:// or https://.", ocsp.OcspCustomCname)
		}
	}
	return nil
}

// checkCRLBucket checks that the bucket of an enabled CRL configuration
// exists, can be written to and belongs to account, as AWS checks the
// bucket when the configuration is set.
func (s *Service) checkCRLBucket(ctx context.Context, account string, rc *openpca.RevocationConfiguration) error {
	if rc == nil || rc.CrlConfiguration == nil || rc.CrlConfiguration.Enabled == nil || !*rc.CrlConfiguration.Enabled {
		return nil
	}
	cfg := (&openpca.CA{Revocation: rc}).CRL() // with the default ACL
	return s.checkBucket(ctx, account, cfg.S3BucketName, cfg.S3ObjectAcl, crlBucket)
}

// bucketUse says how a request names a bucket, and which errors AWS gives
// for it.
type bucketUse struct {
	field                         string // the request's member
	notFound, denied, unreachable string // error codes
}

var (
	reportBucket = bucketUse{"S3BucketName", openpca.CodeResourceNotFound, openpca.CodeInvalidArgs, openpca.CodeRequestFailed}
	// AWS answers a CRL bucket it cannot write to with ValidationException
	// and the message below (as quoted in terraform-provider-aws#33306).
	crlBucket = bucketUse{"CrlConfiguration.S3BucketName", openpca.CodeInvalidArgs, openpca.CodeValidation, openpca.CodeInvalidArgs}
)

// bucketCheckTimeout bounds a request's check of a bucket: a look at the
// bucket and a write of a small object.
const bucketCheckTimeout = 20 * time.Second

// checkBucket checks that bucket exists, that the server can write to it,
// and that it belongs to account. A bucket of another account is refused
// exactly as a missing one is, so that no account learns which names the
// others use.
func (s *Service) checkBucket(ctx context.Context, account, bucket string, acl openpca.S3ObjectAcl, use bucketUse) error {
	if err := openpca.CheckBucketName(bucket); err != nil {
		return err
	}
	owner, err := openpca.BucketOwner(ctx, s.store, bucket, s.defaultAccount)
	if err != nil {
		return err
	}
	err = openpca.ErrBucketNotFound
	if owner == account {
		// A store that stopped answering is told in seconds, not when the
		// S3 client gives up (minutes, past a CLI's read timeout, which
		// would ask again).
		cctx, cancel := context.WithTimeout(ctx, bucketCheckTimeout)
		err = s.objects.CheckBucket(cctx, bucket, acl)
		cancel()
	}
	switch {
	case errors.Is(err, openpca.ErrBucketNotFound):
		return openpca.Errorf(use.notFound, "%s: the S3 bucket %s does not exist.", use.field, bucket)
	case errors.Is(err, openpca.ErrBucketAccess):
		return openpca.Errorf(use.denied, "Permission error with your S3 bucket '%s': the server cannot write to it. Check the bucket's permissions and try again.", bucket)
	case err != nil:
		s.logger.ErrorContext(ctx, "checking a bucket", "bucket", bucket, "error", err)
		return openpca.Errorf(use.unreachable, "%s: the S3 bucket %s could not be reached; try again later.", use.field, bucket)
	}
	return nil
}

func hasScheme(cname string) bool {
	lower := strings.ToLower(cname)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}
