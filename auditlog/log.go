package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
)

// Store is what a Log reads of the store (see openpca.CertificateStore).
type Store interface {
	LogSize(ctx context.Context, caID string) (int64, error)
	LogHashes(ctx context.Context, caID string, indexes []int64) ([][32]byte, error)
}

// Log signs checkpoints of CAs' logs and proves what they hold, from the
// hashes the store keeps.
type Log struct {
	store       Store
	signer      note.Signer
	verifierKey string
	now         func() time.Time
}

// NewLog returns a Log that signs with signer, whose public key is
// verifierKey; now nil means time.Now.
func NewLog(store Store, signer note.Signer, verifierKey string, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, signer: signer, verifierKey: verifierKey, now: now}
}

// VerifierKey returns the public key that checks the Log's checkpoints.
func (l *Log) VerifierKey() string { return l.verifierKey }

// hashes reads a CA's stored hashes.
func (l *Log) hashes(ctx context.Context, caID string) tlog.HashReader {
	return hashes(ctx, l.store, caID)
}

// TreeHash returns the root of the tree of the first size entries of a
// CA's log, as its stored hashes give it.
func TreeHash(ctx context.Context, store Store, caID string, size int64) (tlog.Hash, error) {
	return tlog.TreeHash(size, hashes(ctx, store, caID))
}

func hashes(ctx context.Context, store Store, caID string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := store.LogHashes(ctx, caID, indexes)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	})
}

// Checkpoint signs the checkpoint of the first size entries of a CA's
// log; size < 0 means all of them now.
func (l *Log) Checkpoint(ctx context.Context, caARN, caID string, size int64) ([]byte, Checkpoint, error) {
	if size < 0 {
		var err error
		if size, err = l.store.LogSize(ctx, caID); err != nil {
			return nil, Checkpoint{}, err
		}
	}
	root, err := TreeHash(ctx, l.store, caID, size)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	c := Checkpoint{Origin: Origin(caARN), Size: size, Root: root, Time: l.now().UTC().Truncate(time.Second)}
	signed, err := c.Sign(l.signer)
	return signed, c, err
}

// SignReport signs a report's statement.
func (l *Log) SignReport(s ReportStatement) ([]byte, error) { return s.Sign(l.signer) }

// ConsistencyProof proves that the tree of a CA's first to entries
// extends the tree of its first from.
func (l *Log) ConsistencyProof(ctx context.Context, caID string, from, to int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(to, from, l.hashes(ctx, caID))
}

// InclusionProof proves that entry seq is in the tree of a CA's first
// size entries.
func (l *Log) InclusionProof(ctx context.Context, caID string, seq, size int64) (tlog.RecordProof, error) {
	return tlog.ProveRecord(size, seq, l.hashes(ctx, caID))
}

// InclusionProof shows that the log entries about one certificate, or
// the entry of one CRL, are in a CA's log as of a checkpoint.
type InclusionProof struct {
	CertificateAuthorityArn string `json:"certificateAuthorityArn"`
	Serial                  string `json:"serial,omitempty"`
	// CRLNumber is the number of the CRL the proof is of, in place of a
	// certificate's serial.
	CRLNumber  int64         `json:"crlNumber,omitempty"`
	Checkpoint string        `json:"checkpoint"` // a signed note
	Entries    []ProvenEntry `json:"entries"`
}

// ProvenEntry is a log entry with its inclusion proof (RFC 6962's audit
// path, base64 hashes).
type ProvenEntry struct {
	Index int64 `json:"index"`
	// Record is the entry's JSON text, as the tree hashes it, byte for
	// byte: a string, so that no reformatting of the proof changes it.
	Record string           `json:"record"`
	Proof  tlog.RecordProof `json:"proof"`
}

// Check checks that the proof is of what it says: each entry's proof
// against the checkpoint, whose signature it checks with verifierKey, and
// each entry's record, which must be the issuance of the certificate of
// Serial by the CA, then at most its revocation; or, of a CRL, the CA's
// signing of CRL number CRLNumber, alone. (An entry proven to be in the
// log, but about another certificate, CRL or CA, proves nothing of this
// one.)
func (p *InclusionProof) Check(verifierKey string) error {
	if _, err := openpca.ParseCAARN(p.CertificateAuthorityArn); err != nil {
		return err
	}
	c, err := OpenCheckpoint([]byte(p.Checkpoint), verifierKey)
	if err != nil {
		return err
	}
	if c.Origin != Origin(p.CertificateAuthorityArn) {
		return fmt.Errorf("the checkpoint is of the log %q, not of %s", c.Origin, p.CertificateAuthorityArn)
	}
	if len(p.Entries) == 0 {
		return errors.New("the proof has no entries")
	}
	if p.CRLNumber != 0 && (p.Serial != "" || len(p.Entries) != 1) {
		return fmt.Errorf("a proof of CRL %d has its entry alone, and no serial", p.CRLNumber)
	}
	serial := strings.TrimLeft(p.Serial, "0")
	issued, revoked, last := false, false, int64(-1)
	var check openpca.RecordChecker
	for _, e := range p.Entries {
		var r openpca.KeyUseRecord
		if err := json.Unmarshal([]byte(e.Record), &r); err != nil {
			return fmt.Errorf("entry %d is not a key-use record: %v", e.Index, err)
		}
		if err := check.Check([]byte(e.Record), &r); err != nil {
			return fmt.Errorf("entry %d: %v", e.Index, err)
		}
		switch {
		case r.CertificateAuth != p.CertificateAuthorityArn:
			return fmt.Errorf("entry %d is of the CA %s, not %s", e.Index, r.CertificateAuth, p.CertificateAuthorityArn)
		case p.CRLNumber != 0 && (r.Kind != openpca.KeyUseCRL || r.CRLNumber != p.CRLNumber):
			return fmt.Errorf("entry %d is not the signing of CRL %d", e.Index, p.CRLNumber)
		case p.CRLNumber != 0:
			issued = true // the CRL's
		case strings.TrimLeft(r.Serial, "0") != serial:
			return fmt.Errorf("entry %d is about the certificate %s, not %s", e.Index, r.Serial, p.Serial)
		case e.Index <= last:
			return fmt.Errorf("entry %d comes after entry %d", e.Index, last)
		case r.Kind == openpca.KeyUseIssue && !issued:
			issued = true
		case r.Kind == openpca.KeyUseRevoke && issued && !revoked:
			revoked = true
		default:
			return fmt.Errorf("entry %d is a %s record where the certificate's issuance, then its revocation, may be", e.Index, r.Kind)
		}
		last = e.Index
		if err := tlog.CheckRecord(e.Proof, c.Size, c.Root, e.Index, tlog.RecordHash([]byte(e.Record))); err != nil {
			return fmt.Errorf("entry %d is not in the log of the checkpoint (size %d): %v", e.Index, c.Size, err)
		}
	}
	if !issued {
		return fmt.Errorf("the proof has no issuance of the certificate %s", p.Serial)
	}
	return nil
}
