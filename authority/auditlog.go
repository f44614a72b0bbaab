package authority

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// The operations below are OpenPCA's own, beside the AWS API: they serve
// the tamper-evident key-use logs (package auditlog) to the CA's account.

// AuditVerifierKey returns the public key that checks the server's
// checkpoints.
func (s *Service) AuditVerifierKey() string { return s.log.VerifierKey() }

// AuditCheckpoint signs a checkpoint of the whole log of the caller's CA.
func (s *Service) AuditCheckpoint(ctx context.Context, caARN string) ([]byte, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	signed, _, err := s.log.Checkpoint(ctx, ca.ARN, ca.ID, -1)
	return signed, err
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
	return s.log.ConsistencyProof(ctx, ca.ID, from, to)
}

// AuditInclusionProof proves that the log entries about a certificate of
// the caller's CA (its issuance, and its revocation if any) are in the
// log, as of a checkpoint signed now.
func (s *Service) AuditInclusionProof(ctx context.Context, caARN, serial string) (*auditlog.InclusionProof, error) {
	ca, err := s.findCA(ctx, caARN, nil)
	if err != nil {
		return nil, err
	}
	hexSerial, err := pki.ParseSerial(serial)
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidRequest, "serial: %v.", err)
	}
	uses, err := s.store.CertificateKeyUses(ctx, ca.ID, hexSerial)
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "%s has issued no certificate with serial %s.", ca.ARN, serial)
	}
	if err != nil {
		return nil, err
	}
	signed, checkpoint, err := s.log.Checkpoint(ctx, ca.ARN, ca.ID, -1)
	if err != nil {
		return nil, err
	}
	out := &auditlog.InclusionProof{CertificateAuthorityArn: ca.ARN, Serial: hexSerial, Checkpoint: string(signed)}
	for _, u := range uses {
		proof, err := s.log.InclusionProof(ctx, ca.ID, u.Seq, checkpoint.Size)
		if err != nil {
			return nil, err
		}
		out.Entries = append(out.Entries, auditlog.ProvenEntry{Index: u.Seq, Record: string(u.Record), Proof: proof})
	}
	return out, nil
}
