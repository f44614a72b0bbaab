package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// LogStore is what CheckLogs reads.
type LogStore interface {
	auditlog.Store
	AuditEntries(ctx context.Context, caID string, logSize, from, to int64, fn func(*openpca.AuditEntry) error) error
	WitnessedCheckpoint(ctx context.Context, caID string) (*openpca.WitnessedCheckpoint, error)
	// ListAllCAs lists up to limit CAs, of every account and of none, in
	// creation order, after the one after names.
	ListAllCAs(ctx context.Context, after openpca.CACursor, limit int) ([]*openpca.CA, error)
}

// importOrder follows the imports of a log, in its order, to find an
// upgrade's import after another: the upgrade to a version that logs
// imports logs what a CA holds (openpca.UpgradePrincipal) only if its log
// imports nothing, and only once. Its zero value is ready.
type importOrder struct {
	first int64 // the first import's entry, if seen
	seen  bool
}

// add follows the import at entry seq, by requestedBy, and returns its
// problem, or "".
func (o *importOrder) add(seq int64, requestedBy string) string {
	if !o.seen {
		o.first, o.seen = seq, true
		return ""
	}
	if requestedBy != openpca.UpgradePrincipal {
		return ""
	}
	return fmt.Sprintf("imports the CA's certificate as the upgrade to a version that logs imports does, after entry %d imported one: no server writes that (the upgrade's migration was made to run again)", o.first)
}

// checkLastImport checks the CA of last against its log's last import
// (openpca.CheckImported), whose record must be an import a server
// writes, of that CA.
func checkLastImport(last *openpca.LastImport) error {
	if last.Entry < 0 {
		return openpca.CheckImported(last.CA, nil, 0, last.LogSize)
	}
	var (
		r       openpca.KeyUseRecord
		records recordParser
	)
	_, err := checkRecord(&records, last.Record, &r, last.CA.ARN)
	if err == nil && r.Kind != openpca.KeyUseImport {
		err = fmt.Errorf("is stored as an import of the CA's certificate, but is a %s record", r.Kind)
	}
	if err != nil {
		return &openpca.LogIntegrityError{CAID: last.CA.ID, Entry: last.Entry, Problem: err.Error()}
	}
	return openpca.CheckImported(last.CA, &r, last.Entry, last.LogSize)
}

// maxBadLogs bounds the logs, of those that fail, that CheckLogs's error
// names.
const maxBadLogs = 10

// CheckLogs checks the key-use log of every CA in the store, as a report
// of the whole log would, without writing one (CheckLog), and returns
// how many CAs and entries it checked. A log that fails does not stop it:
// its error names each CA whose log fails, by ARN, with its
// *openpca.LogIntegrityError (the first maxBadLogs, and how many more).
// Any other error stops it.
func CheckLogs(ctx context.Context, store LogStore, verifierKey string) (cas int, entries int64, err error) {
	const page = 100
	var (
		after  openpca.CACursor
		bad    []error
		failed int
	)
	for {
		list, err := store.ListAllCAs(ctx, after, page)
		if err != nil {
			return cas, entries, err
		}
		for _, ca := range list {
			// A CA a purge claimed (restorable until 0) is being
			// destroyed, a chunk of its log at a time: a backup may hold
			// part of its log, which no server reads again.
			if ca.Status == openpca.CertificateAuthorityStatusDeleted && ca.RestorableUntil.UnixMicro() == 0 {
				continue
			}
			n, err := CheckLog(ctx, store, ca, verifierKey)
			switch {
			case errors.Is(err, openpca.ErrLogIntegrity):
				if failed++; len(bad) < maxBadLogs {
					bad = append(bad, fmt.Errorf("%s: %w", ca.ARN, err))
				}
			case err != nil:
				return cas, entries, err
			}
			cas++
			entries += n
		}
		if len(list) < page {
			break
		}
		after = openpca.CACursor{CreatedAt: list[len(list)-1].CreatedAt, ID: list[len(list)-1].ID}
	}
	if failed > len(bad) {
		bad = append(bad, fmt.Errorf("and the logs of %d more CAs", failed-len(bad)))
	}
	return cas, entries, errors.Join(bad...)
}

// CheckLog checks what the store keeps of the key-use log of ca, and
// returns its size. As a report does, it checks each record against the
// hash stored for it (the store's AuditEntries), and each issuance and
// revocation entry against its certificate's row; and every other hash of the tree stored
// with an entry, against the tree the records make: a report's root, and
// the proofs, read them. It also checks the log against the latest checkpoint
// of it that witnesses cosigned, if any, which the server signed with
// the key of verifierKey: a log rewritten whole, records and hashes, is
// not the tree they saw.
func CheckLog(ctx context.Context, store LogStore, ca *openpca.CA, verifierKey string) (int64, error) {
	size, err := store.LogSize(ctx, ca.ID)
	if err != nil {
		return 0, err
	}
	var (
		tree     auditlog.Hasher
		records  recordParser
		imported *openpca.KeyUseRecord // the last import
		importAt int64
		order    importOrder
	)
	// Each hash an entry completes, as the tree makes them, is the one
	// stored with it at the same place.
	var (
		stored   []byte
		pos      int
		mismatch bool
	)
	tree.Stored = func(_ int64, h tlog.Hash) {
		s, err := auditlog.HashAt(stored, pos)
		mismatch = mismatch || err != nil || s != h
		pos++
	}
	// In chunks, as a report reads: no read holds the database long.
	for from := int64(0); from < size; from += chunkEntries {
		err := store.AuditEntries(ctx, ca.ID, size, from, min(from+chunkEntries, size), func(e *openpca.AuditEntry) error {
			stored, pos = e.Stored, 0
			if tree.AddHash(e.Hash); mismatch || pos*tlog.HashSize != len(stored) {
				return &openpca.LogIntegrityError{CAID: ca.ID, Entry: e.Seq,
					Problem: "has hashes of the log's tree stored with it that are not the tree's: the proofs that read them would not verify"}
			}
			if err := checkRows(ca.ID, ca.ARN, e, &records); err != nil || e.Kind != openpca.KeyUseImport { // as its record is
				return err
			}
			imported, importAt = new(openpca.KeyUseRecord), e.Seq
			if err := decodeRecord(e.Record, imported); err != nil {
				return err
			}
			if problem := order.add(e.Seq, imported.RequestedBy); problem != "" {
				return &openpca.LogIntegrityError{CAID: ca.ID, Entry: e.Seq, Problem: problem}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if err := openpca.CheckImported(ca, imported, importAt, size); err != nil {
		return 0, err
	}
	w, err := store.WitnessedCheckpoint(ctx, ca.ID)
	if errors.Is(err, openpca.ErrNotFound) {
		return size, nil
	}
	if err != nil {
		return 0, err
	}
	c, err := openWitnessed(ca, w.Note, verifierKey, max(size-1, 0))
	switch {
	case err != nil:
		return 0, err
	case c.Size > size:
		return 0, &openpca.LogIntegrityError{CAID: ca.ID, Entry: size, Problem: fmt.Sprintf("is missing: witnesses cosigned %d entries of the log", c.Size)}
	case c.Size == 0:
		return size, nil
	}
	witnessed, err := auditlog.TreeHash(ctx, store, ca.ID, c.Size)
	if err != nil {
		return 0, err
	}
	if witnessed != c.Root {
		return 0, witnessedRewritten(ca.ID, c.Size)
	}
	return size, nil
}

// openWitnessed opens signed, the checkpoint that witnesses last cosigned
// of the log of ca, as the server keeps it, and checks that the server
// signed it with the key of verifierKey, and that it is of ca's log. Entry
// is the one an error names.
func openWitnessed(ca *openpca.CA, signed []byte, verifierKey string, entry int64) (auditlog.Checkpoint, error) {
	c, err := auditlog.OpenCheckpoint(signed, verifierKey)
	switch {
	case err != nil:
		return c, &openpca.LogIntegrityError{CAID: ca.ID, Entry: entry, Problem: fmt.Sprintf("is in a log whose witnessed checkpoint the server did not sign: %v", err)}
	case c.Origin != auditlog.Origin(ca.ARN):
		return c, &openpca.LogIntegrityError{CAID: ca.ID, Entry: entry, Problem: fmt.Sprintf("is in a log whose witnessed checkpoint is of another log, %q", c.Origin)}
	}
	return c, nil
}

// witnessedRewritten is the error of a log whose first size entries are
// not the tree witnesses cosigned.
func witnessedRewritten(caID string, size int64) error {
	return &openpca.LogIntegrityError{CAID: caID, Entry: size - 1,
		Problem: "and those before it are not the log that witnesses cosigned: the log was rewritten"}
}

// storedHashesChanged is the error of a log whose first size records do
// not hash to the root that its stored hashes give.
func storedHashesChanged(caID string, size int64) error {
	return &openpca.LogIntegrityError{CAID: caID, Entry: size - 1,
		Problem: "and those before it do not hash to the root that the log's stored hashes give: the stored hashes were changed"}
}
