package authority

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
)

// DefaultAuditReportInterval is the least time between two audit reports
// of one CA, as AWS Private CA allows them.
const DefaultAuditReportInterval = 30 * time.Minute

// CreateCertificateAuthorityAuditReport requests a report of every
// certificate an ACTIVE or DISABLED CA issued or revoked. The report is
// written in the background; it covers the CA's key-use log as it is when
// the request is accepted. A CA gets one report per interval (a FAILED one
// does not count); the check and the new report are one transaction, so
// of two concurrent requests exactly one is accepted.
func (s *Service) CreateCertificateAuthorityAuditReport(ctx context.Context, in *openpca.CreateCertificateAuthorityAuditReportRequest) (*openpca.CreateCertificateAuthorityAuditReportResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if st := ca.StatusAt(now); st != openpca.CertificateAuthorityStatusActive && st != openpca.CertificateAuthorityStatusDisabled {
		return nil, invalidState("The certificate authority %s is %s; audit reports can be created only for ACTIVE and DISABLED certificate authorities.", ca.ARN, st)
	}
	if err := s.checkBucket(ctx, ca.AccountID, in.S3BucketName, "", reportBucket); err != nil {
		return nil, err
	}
	id := uuid.NewString()
	r := &openpca.AuditReport{
		ID: id, CAID: ca.ID, AccountID: ca.AccountID, Bucket: in.S3BucketName, Key: openpca.AuditReportKey(ca.ID, id, in.AuditReportResponseFormat),
		Format: in.AuditReportResponseFormat, Status: openpca.AuditReportStatusCreating, CreatedAt: now,
	}
	last, err := s.store.CreateAuditReport(ctx, r, now.Add(-s.reportInterval))
	if errors.Is(err, openpca.ErrTooSoon) {
		return nil, openpca.Errorf(openpca.CodeRequestInProgress, "An audit report of %s was created at %s; the next one can be created after %s.",
			ca.ARN, last.CreatedAt.Format(time.RFC3339), last.CreatedAt.Add(s.reportInterval).Format(time.RFC3339))
	}
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "audit report requested", "ca", ca.ARN, "report", id, "bucket", r.Bucket, "key", r.Key, "log_size", r.LogSize)
	if s.reports != nil {
		s.reports.Wake()
	}
	return &openpca.CreateCertificateAuthorityAuditReportResponse{AuditReportId: id, S3Key: r.Key}, nil
}

// DescribeCertificateAuthorityAuditReport tells the status of a report.
func (s *Service) DescribeCertificateAuthorityAuditReport(ctx context.Context, in *openpca.DescribeCertificateAuthorityAuditReportRequest) (*openpca.DescribeCertificateAuthorityAuditReportResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	r, err := s.store.FindAuditReport(ctx, ca.ID, in.AuditReportId)
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "Could not find audit report %s of %s.", in.AuditReportId, ca.ARN)
	}
	if err != nil {
		return nil, err
	}
	return &openpca.DescribeCertificateAuthorityAuditReportResponse{
		AuditReportStatus: r.Status, S3BucketName: r.Bucket, S3Key: r.Key, CreatedAt: openpca.NewTimestamp(r.CreatedAt),
	}, nil
}
