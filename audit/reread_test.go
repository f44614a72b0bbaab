package audit

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/openpca/openpca"
)

// swappingReader serves first until the first Seek, then second: a proof
// file on storage the operator controls (a network file system, a FUSE
// mount of the audit bucket) that the operator rewrites between the two
// times the verifier reads it.
type swappingReader struct {
	first, second []byte
	r             *bytes.Reader
	seeks         int
}

func (s *swappingReader) Read(p []byte) (int, error) {
	if s.r == nil {
		s.r = bytes.NewReader(s.first)
	}
	return s.r.Read(p)
}

func (s *swappingReader) Seek(off int64, whence int) (int64, error) {
	s.seeks++
	s.r = bytes.NewReader(s.second)
	return s.r.Seek(off, whence)
}

// TestVerifyProofReadTwice: Verify hashes the proof file's records on its
// first read, then compares the report with the records of a second read,
// which it never hashes. A proof file that changes between the two reads
// has a report that omits an issued certificate verify.
func TestVerifyProofReadTwice(t *testing.T) {
	for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
		t.Run(string(format), func(t *testing.T) {
			f := newLogFixture(t, 20, format)
			_, genuine := f.write(t)
			// The same header and checkpoint, but the log without the
			// issuance of certificate 4 (entry 4), and a report without it.
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
			f.records = slices.Delete(f.records, 4, 5)
			f.rows = slices.Delete(f.rows, 3, 4)
			report, doctored := f.write(t)
			proof := &swappingReader{first: genuine, second: doctored}
			v := Verify(bytes.NewReader(report), proof, f.vkey)
			if len(v.Problems) == 0 {
				t.Fatalf("a report without certificate 4 verified (%d rows, %d certificates in the log, checkpoint of %d entries): the records compared with it were read again and never hashed",
					v.Rows, v.Certificates, v.Checkpoint.Size)
			}
			t.Logf("problems: %v", v.Problems)
		})
	}
}

var _ io.ReadSeeker = (*swappingReader)(nil)
