package authority

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// The operations below are OpenPCA's own, beside the AWS API: they serve
// the tamper-evident key-use logs (package auditlog) to the CA's account,
// and what the console shows of a CA's certificates.

// AuditVerifierKey returns the public key that checks the server's
// checkpoints.
func (s *Service) AuditVerifierKey() string { return s.log.VerifierKey() }

// AuditCheckpoint returns, if witnessed, the latest checkpoint of the log
// of the caller's CA that witnesses cosigned, if the server has witnesses
// and they have; else it signs a checkpoint of the whole log. The
// witnessed one may be older than the log, by a round, or for as long as
// witnesses are down or refuse it.
func (s *Service) AuditCheckpoint(ctx context.Context, caARN string, witnessed bool) ([]byte, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	if witnessed && s.witnessed != nil {
		w, err := s.witnessed(ctx, ca.ID)
		if err == nil {
			return w.Note, nil
		}
		if !errors.Is(err, openpca.ErrNotFound) {
			return nil, err
		}
	}
	signed, _, err := s.log.Checkpoint(ctx, ca.ARN, ca.ID, -1)
	return signed, s.logIntegrity(ctx, ca, err)
}

// AuditConsistencyProof proves that the first to entries of the log of the
// caller's CA extend its first from entries.
func (s *Service) AuditConsistencyProof(ctx context.Context, caARN string, from, to int64) (tlog.TreeProof, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	size, err := s.store.LogSize(ctx, ca.ID)
	if err != nil {
		return nil, err
	}
	if from < 1 || to < from || to > size {
		return nil, openpca.Errorf(openpca.CodeInvalidRequest, "from and to must satisfy 1 <= from <= to <= %d, the size of the log of %s.", size, ca.ARN)
	}
	proof, err := s.log.ConsistencyProof(ctx, ca.ID, from, to)
	return proof, s.logIntegrity(ctx, ca, err)
}

// AuditInclusionProof proves that the log entries about a certificate of
// the caller's CA (its issuance, and its revocation if any) are in the
// log, as of a checkpoint signed now. It checks each entry against the
// checkpoint first: the server never hands out a proof that fails.
func (s *Service) AuditInclusionProof(ctx context.Context, caARN, serial string) (*auditlog.InclusionProof, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	hexSerial, err := pki.ParseSerial(serial)
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidRequest, "serial: %v.", err)
	}
	p, err := s.inclusionProof(ctx, ca, hexSerial)
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "%s has issued no certificate with serial %s.", ca.ARN, serial)
	}
	return p, s.logIntegrity(ctx, ca, err)
}

func (s *Service) inclusionProof(ctx context.Context, ca *openpca.CA, serial string) (*auditlog.InclusionProof, error) {
	uses, err := s.store.CertificateKeyUses(ctx, ca.ID, serial)
	if err != nil {
		return nil, err
	}
	return s.prove(ctx, ca, uses, &auditlog.InclusionProof{CertificateAuthorityArn: ca.ARN, Serial: serial})
}

// AuditCRLInclusionProof proves that the log entry of a CRL the caller's
// CA signed, of number and thisUpdate (both the CRL's), is in the log, as
// of a checkpoint signed now.
func (s *Service) AuditCRLInclusionProof(ctx context.Context, caARN string, number int64, thisUpdate time.Time) (*auditlog.InclusionProof, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	if number <= 0 {
		return nil, openpca.Errorf(openpca.CodeInvalidRequest, "crlNumber: a CRL's number is 1 or more.")
	}
	uses, err := s.store.CRLKeyUses(ctx, ca.ID, thisUpdate.UTC().Truncate(time.Second))
	if err != nil {
		return nil, err
	}
	uses = slices.DeleteFunc(uses, func(u *openpca.KeyUse) bool {
		var r openpca.KeyUseRecord
		return json.Unmarshal(u.Record, &r) != nil || r.CRLNumber != number
	})
	if len(uses) == 0 {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "%s has logged no CRL %d of thisUpdate %s.", ca.ARN, number, thisUpdate.UTC().Format(time.RFC3339))
	}
	p, err := s.prove(ctx, ca, uses[:1], &auditlog.InclusionProof{CertificateAuthorityArn: ca.ARN, CRLNumber: number})
	return p, s.logIntegrity(ctx, ca, err)
}

// prove fills out with a checkpoint signed now, and uses, each with its
// proof against it.
func (s *Service) prove(ctx context.Context, ca *openpca.CA, uses []*openpca.KeyUse, out *auditlog.InclusionProof) (*auditlog.InclusionProof, error) {
	signed, checkpoint, err := s.log.Checkpoint(ctx, ca.ARN, ca.ID, -1)
	if err != nil {
		return nil, err
	}
	out.Checkpoint = string(signed)
	for _, u := range uses {
		proof, err := s.log.InclusionProof(ctx, ca.ID, u.Seq, checkpoint.Size)
		if err != nil {
			return nil, err
		}
		if tlog.CheckRecord(proof, checkpoint.Size, checkpoint.Root, u.Seq, tlog.RecordHash(u.Record)) != nil {
			return nil, &openpca.LogIntegrityError{CAID: ca.ID, Entry: u.Seq, Problem: "does not match the hash the log stored for it"}
		}
		out.Entries = append(out.Entries, auditlog.ProvenEntry{Index: u.Seq, Record: string(u.Record), Proof: proof})
	}
	return out, nil
}

// maxAuditReports bounds how many of a CA's reports AuditReports lists.
const maxAuditReports = 100

// AuditReports lists the latest audit reports of the caller's CA, the
// newest first, with the reason each failed report failed: Describe has no
// place for it in the AWS API.
func (s *Service) AuditReports(ctx context.Context, caARN string) ([]*openpca.AuditReport, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	return s.store.AuditReports(ctx, ca.ID, maxAuditReports)
}

// logIntegrity turns a CA's key-use log that does not match its hashes
// into an error naming the CA and the entry, and raises the alarm; it
// returns any other error as it is.
func (s *Service) logIntegrity(ctx context.Context, ca *openpca.CA, err error) error {
	li, ok := errors.AsType[*openpca.LogIntegrityError](err)
	if !ok {
		return err
	}
	s.alarm.Check(ctx, err)
	return openpca.Errorf(openpca.CodeInternalFailure,
		"Integrity alarm: entry %d of the key-use log of %s %s. The log was changed under the server, and no longer matches what the server signed.",
		li.Entry, ca.ARN, li.Detail())
}

// MayListCertificates refuses a caller that may not list the CA's
// certificates (acm-pca:ListCertificates). What else shows them all asks
// for it too: an audit report, read whole.
func (s *Service) MayListCertificates(ctx context.Context, caARN string) error {
	_, err := s.findCA(openpca.WithOperation(ctx, openpca.OperationListCertificates), caARN, nil)
	return err
}

// ListCertificates lists the certificates of the caller's CA that q asks
// for, the newest first (the action acm-pca:ListCertificates).
func (s *Service) ListCertificates(ctx context.Context, caARN string, q openpca.CertificateQuery) ([]*openpca.ListedCertificate, error) {
	ca, err := s.findCA(openpca.WithOperation(ctx, openpca.OperationListCertificates), caARN, nil)
	if err != nil {
		return nil, err
	}
	return s.store.ListCertificates(ctx, ca.ID, q)
}

// CertificateCounts counts the certificates of the caller's CA by day:
// those unrevoked that expire from now to until, and the issuances and
// revocations its key-use log recorded since since. They are what
// ListCertificates lists, and are authorized as it is.
func (s *Service) CertificateCounts(ctx context.Context, caARN string, now, until, since time.Time) (expiring, issued, revoked []openpca.DayCount, err error) {
	ca, err := s.findCA(openpca.WithOperation(ctx, openpca.OperationListCertificates), caARN, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if expiring, err = s.store.ExpiryCounts(ctx, ca.ID, now, until); err != nil {
		return nil, nil, nil, err
	}
	issued, revoked, err = s.store.ActivityCounts(ctx, ca.ID, since)
	return expiring, issued, revoked, err
}
