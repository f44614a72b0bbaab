package audit

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// CheckCRLEntries checks what crl lists against a proof file's log, which
// must be checkpoint's, and in which entry is crl's signing: a CRL is made
// from the store's certificates, not from the log, and an operator who
// cleared a revocation there had the next CRLs leave it out, the log
// unchanged. Each certificate crl lists must be revoked in the log before
// entry, at the same second and for the same reason. Each that the log
// revoked before the CA's previous CRL there, and that is valid at crl's
// thisUpdate, must be listed: a CA's CRLs are made one at a time, each
// read from the store after the last was logged, so a revocation logged
// after the previous CRL may be on this one or the next. (A CA's first
// CRL is checked for what it lists alone.)
func CheckCRLEntries(proof io.ReadSeeker, checkpoint *auditlog.Checkpoint, crl *x509.RevocationList, entry int64) error {
	type revocation struct {
		serial string // as the log writes it
		seq    int64
		at     int64 // Unix seconds, as a CRL dates it
		reason int
	}
	revoked := map[string]revocation{} // by bareSerial
	previous := int64(-1)              // the CA's CRL before crl in the log
	err := rereadProof(proof, checkpoint, func(seq int64, record []byte, _ *auditlog.Hasher) error {
		if seq >= entry {
			return nil
		}
		var r openpca.KeyUseRecord
		if err := decodeRecord(record, &r); err != nil {
			return fmt.Errorf("entry %d: %w", seq, err)
		}
		switch r.Kind {
		case openpca.KeyUseCRL:
			previous = seq
		case openpca.KeyUseRevoke:
			at, err := time.Parse(time.RFC3339Nano, r.At)
			if err != nil {
				return fmt.Errorf("entry %d: %w", seq, err)
			}
			// The first, as the report's verification takes it (which
			// fails a log that revokes a certificate twice).
			if _, again := revoked[bareSerial(r.Serial)]; !again {
				revoked[bareSerial(r.Serial)] = revocation{serial: r.Serial, seq: seq, at: at.Unix(), reason: pki.CRLReason(openpca.RevocationReason(r.RevocationReason))}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < maxCRLProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	listed := make(map[string]bool, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		serial := pki.SerialHex(e.SerialNumber)
		listed[bareSerial(serial)] = true
		r, ok := revoked[bareSerial(serial)]
		switch {
		case !ok:
			problem("it lists the certificate %s, which the log has not revoked before it", serial)
		case r.at != e.RevocationTime.Unix() || r.reason != e.ReasonCode:
			problem("it lists the certificate %s as revoked at %s for reason %d; the log's revocation (entry %d) is at %s for reason %d",
				serial, e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode, r.seq, time.Unix(r.at, 0).UTC().Format(time.RFC3339), r.reason)
		}
	}
	// Revoked before the previous CRL and not listed: left out, unless
	// the certificate is no longer valid, which its issuance says.
	missing := map[string]revocation{}
	for serial, r := range revoked {
		if r.seq < previous && !listed[serial] {
			missing[serial] = r
		}
	}
	if len(missing) > 0 {
		if _, err := proof.Seek(0, io.SeekStart); err != nil {
			return err
		}
		err := rereadProof(proof, checkpoint, func(seq int64, record []byte, _ *auditlog.Hasher) error {
			var r openpca.KeyUseRecord
			if seq >= entry || decodeRecord(record, &r) != nil || r.Kind != openpca.KeyUseIssue {
				return nil
			}
			if rev, ok := missing[bareSerial(r.Serial)]; ok && seq < rev.seq {
				if notAfter, err := time.Parse(time.RFC3339, r.NotAfter); err == nil && notAfter.Before(crl.ThisUpdate) {
					delete(missing, bareSerial(r.Serial)) // expired: rightly not listed
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		left := slices.SortedFunc(maps.Keys(missing), func(a, b string) int { return cmp.Compare(missing[a].seq, missing[b].seq) })
		for _, serial := range left {
			problem("it leaves out the certificate %s, whose revocation the log holds (entry %d) before the CA's previous CRL (entry %d), and which is valid at its thisUpdate",
				missing[serial].serial, missing[serial].seq, previous)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("CRL %v is not the log's revocations: %s", crl.Number, strings.Join(problems, "; "))
}

// bareSerial is a serial, hex, without the leading zeros a record may
// write and a CRL's integer has not.
func bareSerial(hex string) string { return strings.TrimLeft(strings.ToLower(hex), "0") }

// maxCRLProblems bounds what CheckCRLEntries says of a CRL: one that
// lists a million made-up serials needs its first few said.
const maxCRLProblems = 10
