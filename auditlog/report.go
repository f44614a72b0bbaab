package auditlog

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ReportStatement is what the audit key signs of a report beside its
// checkpoint: which report a proof file is of. The checkpoint says what
// the log held; the statement says that this report, by its id, its key
// in the bucket and its format, was made of that checkpoint. Without it,
// an older report of the same log, put under a newer report's key, would
// verify.
//
//	openpca audit report
//	<report id>
//	<the report's S3 key>
//	<JSON or CSV>
//	<base64 SHA-256 of the signed checkpoint note>
type ReportStatement struct {
	ID, S3Key, Format string
	// Checkpoint is the SHA-256 of the signed checkpoint note in the
	// proof file's header.
	Checkpoint [sha256.Size]byte
}

const reportStatementTitle = "openpca audit report"

// NewReportStatement returns the statement of a report made of the signed
// checkpoint note.
func NewReportStatement(id, s3Key, format string, checkpoint []byte) ReportStatement {
	return ReportStatement{ID: id, S3Key: s3Key, Format: format, Checkpoint: sha256.Sum256(checkpoint)}
}

// Text formats the statement as a note's text.
func (s ReportStatement) Text() (string, error) {
	for _, f := range []string{s.ID, s.S3Key, s.Format} {
		if f == "" || strings.ContainsAny(f, "\n") {
			return "", fmt.Errorf("auditlog: a report statement's field %q is empty or has a line break", f)
		}
	}
	return fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n", reportStatementTitle, s.ID, s.S3Key, s.Format, base64.StdEncoding.EncodeToString(s.Checkpoint[:])), nil
}

// Sign signs the statement with s.
func (s ReportStatement) Sign(signer note.Signer) ([]byte, error) {
	text, err := s.Text()
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: text}, signer)
}

// OpenReportStatement checks that signed is a report statement signed by
// the key of verifierKey, and parses it.
func OpenReportStatement(signed []byte, verifierKey string) (ReportStatement, error) {
	lines, err := openStatement(signed, verifierKey, "the report statement", reportStatementTitle, 5)
	if err != nil {
		return ReportStatement{}, err
	}
	s := ReportStatement{ID: lines[1], S3Key: lines[2], Format: lines[3]}
	hash, err := base64.StdEncoding.DecodeString(lines[4])
	if err != nil || len(hash) != sha256.Size {
		return ReportStatement{}, fmt.Errorf("the report statement's checkpoint hash %q is not a base64 SHA-256 hash", lines[4])
	}
	copy(s.Checkpoint[:], hash)
	return s, nil
}

// Of reports whether the statement is of the report with the proof file
// header h.
func (s ReportStatement) Of(h *ProofHeader) bool {
	return s == NewReportStatement(h.AuditReportID, h.S3Key, h.ReportFormat, []byte(h.Checkpoint))
}
