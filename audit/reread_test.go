package audit

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/openpca/openpca"
)

// swappingReader serves first until its Seek after the first after, then
// second: a proof file on storage the operator controls (a network file
// system, a FUSE mount of the audit bucket) that the operator rewrites
// between two times the verifier reads it.
type swappingReader struct {
	first, second []byte
	after         int
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
	b := s.second
	if s.seeks <= s.after {
		b = s.first
	}
	s.r = bytes.NewReader(b)
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

// TestCheckExtendsProofReadAgain: CheckExtends reads the report's proof
// file again, after Verify: the entries it hashes must be those Verify
// checked. A proof file that became the earlier report's in between had a
// log rewritten since (an issuance taken out) pass as extending it. A
// proof file whose log Verify found wrong is not checked again, nor said
// to have changed.
func TestCheckExtendsProofReadAgain(t *testing.T) {
	early := newLogFixture(t, 10, openpca.AuditReportResponseFormatJson)
	_, earlier := early.write(t)
	f := newLogFixture(t, 20, openpca.AuditReportResponseFormatJson)
	f.signer, f.vkey = early.signer, early.vkey
	f.records = slices.Delete(f.records, 4, 5)
	f.rows = slices.Delete(f.rows, 3, 4)
	report, rewritten := f.write(t)
	f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
	f.records = f.records[:len(f.records)-1]
	_, truncated := f.write(t)
	for _, tc := range []struct {
		name          string
		first, second []byte // the proof file as Verify reads it, then as CheckExtends does
		problems      []string
	}{
		{"read the same", rewritten, rewritten, []string{"earlier: the log's first 13 entries are not the earlier report's"}},
		{"the earlier report's, read again", rewritten, earlier, []string{"earlier: reading the proof file again: " + errProofChanged.Error()}},
		{"a log that does not hold", truncated, truncated, []string{"log: the proof file has 23 log entries, the checkpoint 24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof := &swappingReader{first: tc.first, second: tc.first, after: math.MaxInt}
			v := Verify(bytes.NewReader(report), proof, f.vkey)
			proof.second, proof.after = tc.second, proof.seeks
			v.CheckExtends(proof, bytes.NewReader(earlier), f.vkey)
			var problems []string
			for _, p := range v.Problems {
				problems = append(problems, p.String())
			}
			if v.Extends != nil || len(problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %q", problems, tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.HasPrefix(problems[i], want) {
					t.Errorf("problem %q, want %q", problems[i], want)
				}
			}
		})
	}
}

var _ io.ReadSeeker = (*swappingReader)(nil)
