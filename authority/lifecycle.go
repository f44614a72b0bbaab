package authority

import (
	"context"
	"time"

	"github.com/openpca/openpca"
)

// DefaultPermanentDeletionTimeInDays is the restoration period of a deleted
// CA when the request sets none.
const DefaultPermanentDeletionTimeInDays = 30

// UpdateCertificateAuthority changes a CA's status between ACTIVE and
// DISABLED, or its revocation configuration. The CA must be ACTIVE or
// DISABLED.
func (s *Service) UpdateCertificateAuthority(ctx context.Context, in *openpca.UpdateCertificateAuthorityRequest) error {
	switch in.Status {
	case "", openpca.CertificateAuthorityStatusActive, openpca.CertificateAuthorityStatusDisabled:
	default:
		return openpca.Errorf(openpca.CodeInvalidArgs, "Status %s cannot be set; a certificate authority can be set only to ACTIVE or DISABLED.", in.Status)
	}
	if err := checkRevocation(in.RevocationConfiguration); err != nil {
		return err
	}
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, func(ca *openpca.CA) error {
		if ca.Status != openpca.CertificateAuthorityStatusActive && ca.Status != openpca.CertificateAuthorityStatusDisabled {
			return invalidState(ca, "only an ACTIVE or DISABLED certificate authority can be updated")
		}
		if in.Status != "" && in.Status != ca.Status {
			ca.SetStatus(in.Status, s.now().UTC())
		}
		if in.RevocationConfiguration != nil {
			ca.Revocation = in.RevocationConfiguration
		}
		return nil
	})
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority updated", "ca", ca.ARN, "status", ca.Status)
	}
	return err
}

// DeleteCertificateAuthority deletes a CA. An ACTIVE CA must be disabled
// first. A CA deleted while PENDING_CERTIFICATE, DISABLED or EXPIRED stays
// restorable for PermanentDeletionTimeInDays; one deleted while CREATING or
// FAILED is gone at once.
func (s *Service) DeleteCertificateAuthority(ctx context.Context, in *openpca.DeleteCertificateAuthorityRequest) error {
	days := int(in.PermanentDeletionTimeInDays)
	if days == 0 {
		days = DefaultPermanentDeletionTimeInDays
	}
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, func(ca *openpca.CA) error {
		now := s.now().UTC()
		switch ca.Status {
		case openpca.CertificateAuthorityStatusActive:
			return invalidState(ca, "disable it with UpdateCertificateAuthority before deleting it")
		case openpca.CertificateAuthorityStatusDeleted:
			return invalidState(ca, "it is already deleted")
		case openpca.CertificateAuthorityStatusCreating, openpca.CertificateAuthorityStatusFailed:
			ca.RestorableUntil = now
		default:
			ca.RestorableUntil = now.Add(time.Duration(days) * 24 * time.Hour)
		}
		ca.StatusBeforeDeletion = ca.Status
		ca.SetStatus(openpca.CertificateAuthorityStatusDeleted, now)
		return nil
	})
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority deleted", "ca", ca.ARN, "restorable_until", ca.RestorableUntil)
	}
	return err
}

// RestoreCertificateAuthority restores a DELETED CA within its restoration
// period to the status it had when it was deleted.
func (s *Service) RestoreCertificateAuthority(ctx context.Context, in *openpca.RestoreCertificateAuthorityRequest) error {
	ca, err := s.updateCA(ctx, in.CertificateAuthorityArn, func(ca *openpca.CA) error {
		if ca.Status != openpca.CertificateAuthorityStatusDeleted {
			return invalidState(ca, "only a DELETED certificate authority can be restored")
		}
		now := s.now().UTC()
		ca.SetStatus(ca.StatusBeforeDeletion, now)
		ca.StatusBeforeDeletion = ""
		ca.RestorableUntil = time.Time{}
		// A CA whose certificate expired while it was deleted comes back EXPIRED.
		ca.Age(now)
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
		return invalidState(ca, "restore it before changing or listing its tags")
	}
	return nil
}

// checkRevocation checks a revocation configuration beyond what the model
// constrains.
func checkRevocation(rc *openpca.RevocationConfiguration) error {
	if rc == nil {
		return nil
	}
	if crl := rc.CrlConfiguration; crl != nil && crl.Enabled != nil && *crl.Enabled && crl.S3BucketName == "" {
		return openpca.Errorf(openpca.CodeInvalidArgs, "CrlConfiguration.S3BucketName is required when the CRL is enabled.")
	}
	return nil
}
