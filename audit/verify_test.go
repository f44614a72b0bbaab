package audit

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/race"
)

// logFixture is a CA's key-use log, and the report and proof file a
// server would write of it. Tests tamper with its parts before writing.
type logFixture struct {
	ca      *openpca.CA
	records [][]byte               // the log, in order
	rows    []*openpca.Certificate // the report's rows, in order
	signer  note.Signer
	vkey    string
	format  openpca.AuditReportResponseFormat
	// checkpoint, if set, replaces the signed checkpoint of records.
	checkpoint []byte
	// header, if set, changes the proof file's header once it is signed.
	header func(h *auditlog.ProofHeader)
}

func newKey(t testing.TB) (note.Signer, string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, auditlog.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// fixtureCA is the id of the fixtures' CA.
const fixtureCA = "11111111-2222-3333-4444-555555555555"

// newLogFixture logs a CSR and n issuances, and revokes every fifth
// certificate.
func newLogFixture(t testing.TB, n int, format openpca.AuditReportResponseFormat) *logFixture {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ca := &openpca.CA{ID: fixtureCA, AccountID: "111122223333", CreatedAt: at, CSR: []byte("csr")}
	ca.ARN = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/" + ca.ID
	f := &logFixture{ca: ca, format: format}
	f.signer, f.vkey = newKey(t)
	f.records = append(f.records, openpca.CSRUse(ca, "account:111122223333", "req-0").Record)
	for i := range n {
		issued := at.Add(time.Duration(i) * 1500 * time.Microsecond)
		serial := fmt.Sprintf("%032x", i+1)
		c := &openpca.Certificate{
			CAID: ca.ID, AccountID: ca.AccountID, Serial: serial, ARN: ca.ARN + "/certificate/" + serial, DER: []byte{byte(i)},
			Subject: fmt.Sprintf("CN=host-%d.example.com,O=Example", i), NotBefore: issued.Truncate(time.Second),
			NotAfter: issued.Truncate(time.Second).AddDate(0, 0, 30), IssuedAt: issued, TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
		}
		f.records = append(f.records, openpca.IssueUse(ca.ARN, c).Record)
		f.rows = append(f.rows, c)
	}
	for i := 0; i < n; i += 5 {
		c := f.rows[i]
		c.RevokedAt, c.RevocationReason = c.IssuedAt.Add(time.Hour), openpca.RevocationReasonKeyCompromise
		f.records = append(f.records, openpca.RevokeUse(ca.ARN, c, c.RevokedAt, c.RevocationReason, "account:111122223333", "req-r").Record)
	}
	return f
}

// signedCheckpoint signs the checkpoint of records with signer.
func signedCheckpoint(t testing.TB, arn string, records [][]byte, signer note.Signer) []byte {
	var tree auditlogtest.Tree
	for _, r := range records {
		if err := tree.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := tree.Root(tree.Size())
	signed, err := auditlog.Checkpoint{Origin: auditlog.Origin(arn), Size: tree.Size(), Root: root, Time: time.Now().UTC().Truncate(time.Second)}.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// write returns the report and its proof file.
func (f *logFixture) write(t testing.TB) (report, proof []byte) {
	var rb, pb bytes.Buffer
	w, err := NewWriter(f.format, &rb)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.rows {
		if err := w.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkpoint := f.checkpoint
	if checkpoint == nil {
		checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
	}
	h := &auditlog.ProofHeader{Format: auditlog.ProofFormat, CertificateAuthorityArn: f.ca.ARN, AuditReportID: "r",
		S3Key: "audit-report/" + f.ca.ID + "/r.json", ReportFormat: string(f.format), Checkpoint: string(checkpoint)}
	statement, err := auditlog.NewReportStatement(h.AuditReportID, h.S3Key, h.ReportFormat, checkpoint).Sign(f.signer)
	if err != nil {
		t.Fatal(err)
	}
	h.Report = string(statement)
	if f.header != nil {
		f.header(h)
	}
	err = auditlogtest.WriteProof(&pb, h, func(yield func([]byte) error) error {
		for _, r := range f.records {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rb.Bytes(), pb.Bytes()
}

// forged returns a certificate the CA never issued.
func forged(f *logFixture) *openpca.Certificate {
	c := *f.rows[len(f.rows)-1]
	c.Serial = "0bad"
	c.ARN = f.ca.ARN + "/certificate/0bad"
	c.IssuedAt = c.IssuedAt.Add(time.Second)
	return &c
}

// TestVerify tampers with a report, its proof file or the key, in each way
// the issue lists and a few more, and expects the exact check that fails.
func TestVerify(t *testing.T) {
	_, otherKey := newKey(t)
	tests := []struct {
		name   string
		tamper func(f *logFixture)
		cut    int    // bytes cut from the end of the proof file
		key    string // verify with this key instead
		want   []string
	}{
		{name: "clean"},
		{name: "row deleted", tamper: func(f *logFixture) { f.rows = slices.Delete(f.rows, 3, 4) },
			want: []string{"missing: certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:04 (log entry 4, issued 2026-11-23T10:00:00+0000) is missing from the report"}},
		{name: "field changed", tamper: func(f *logFixture) { f.rows[1].Subject = "CN=evil.example.com" },
			want: []string{`row 2: certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:02: subject is "CN=evil.example.com", the log says "CN=host-1.example.com,O=Example"`}},
		{name: "revocation hidden", tamper: func(f *logFixture) { f.rows[5].RevokedAt, f.rows[5].RevocationReason = time.Time{}, "" },
			want: []string{`row 6: certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:06: revokedAt is "", the log says "2026-11-23T11:00:00+0000"`,
				`row 6: certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:06: revocationReason is "", the log says "KEY_COMPROMISE"`}},
		{name: "rows reordered", tamper: func(f *logFixture) { f.rows[2], f.rows[3] = f.rows[3], f.rows[2] },
			want: []string{"row 4: certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:03 is out of order"}},
		{name: "row repeated", tamper: func(f *logFixture) { f.rows = append(f.rows, f.rows[7]) },
			want: []string{"certificate 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:08 is listed again (first on row 8)"}},
		{name: "forged row", tamper: func(f *logFixture) { f.rows = append(f.rows, forged(f)) },
			want: []string{"row 21: certificate 0b:ad is not in the log"}},
		{name: "forged row and log entry", tamper: func(f *logFixture) {
			c := forged(f)
			f.rows = append(f.rows, c)
			f.records = append(f.records, openpca.IssueUse(f.ca.ARN, c).Record)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records[:len(f.records)-1], f.signer)
		}, want: []string{"log: the proof file has more log entries than the checkpoint's 25: entries were added"}},
		{name: "log truncated", tamper: func(f *logFixture) {
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
			f.records = f.records[:len(f.records)-4]
		}, want: []string{"entries were removed (the log was truncated)"}},
		{name: "proof file cut", cut: 10, want: []string{"the file ends within a line: it was cut short"}},
		{name: "history rewritten", tamper: func(f *logFixture) {
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
			f.rows[0].Subject = "CN=other"
			f.records[1] = openpca.IssueUse(f.ca.ARN, f.rows[0]).Record
		}, want: []string{"log: the log entries do not hash to the checkpoint's root"}},
		{name: "log entries reordered", tamper: func(f *logFixture) {
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
			f.records[1], f.records[2] = f.records[2], f.records[1]
		}, want: []string{"log: the log entries do not hash to the checkpoint's root"}},
		{name: "another server's key", key: otherKey, want: []string{"checkpoint: the checkpoint is not signed by the key " + otherKey}},
		{name: "re-signed by another key", tamper: func(f *logFixture) {
			other, _ := newKey(t)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, other)
		}, want: []string{"checkpoint: the checkpoint is not signed by the key"}},
		{name: "checkpoint altered", tamper: func(f *logFixture) {
			f.checkpoint = bytes.Replace(signedCheckpoint(t, f.ca.ARN, f.records, f.signer), []byte("\n25\n"), []byte("\n24\n"), 1)
		}, want: []string{"checkpoint: the checkpoint's signature is not valid"}},
		{name: "another CA's log", tamper: func(f *logFixture) {
			f.checkpoint = signedCheckpoint(t, f.ca.ARN+"0", f.records, f.signer)
		}, want: []string{"the checkpoint is of the log"}},
		{name: "header names another report", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) { h.AuditReportID, h.S3Key = "r2", "audit-report/"+f.ca.ID+"/r2.json" }
		}, want: []string{"report: the signed statement is of report r (key audit-report/" + fixtureCA + "/r.json, ", "not of the report the header names, r2 (key audit-report/" + fixtureCA + "/r2.json"}},
		{name: "statement of another checkpoint", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) {
				other := signedCheckpoint(t, f.ca.ARN, f.records[:3], f.signer)
				s, _ := auditlog.NewReportStatement(h.AuditReportID, h.S3Key, h.ReportFormat, other).Sign(f.signer)
				h.Report = string(s)
			}
		}, want: []string{"report: the signed statement is of report r"}},
		{name: "statement signed by another key", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) {
				other, _ := newKey(t)
				s, _ := auditlog.NewReportStatement(h.AuditReportID, h.S3Key, h.ReportFormat, []byte(h.Checkpoint)).Sign(other)
				h.Report = string(s)
			}
		}, want: []string{"report: the report statement is not signed by the key"}},
		{name: "a checkpoint for a statement", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) { h.Report = h.Checkpoint }
		}, want: []string{"report: the report statement is not one"}},
		{name: "no statement, as versions before it", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) { h.Report = "" }
		}},
		// Records other readers would read otherwise, or that no server
		// writes, signed into the log by the audit key's holder.
		{name: "a member given twice", tamper: func(f *logFixture) {
			f.records[1] = append(bytes.TrimSuffix(f.records[1], []byte("}")), `,"KIND":"CSR"}`...)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
		}, want: []string{"log: entry 1 is not a key-use record a server writes"}},
		{name: "a kind no log records", tamper: func(f *logFixture) {
			f.records[1] = bytes.Replace(f.records[1], []byte(`"kind":"ISSUE"`), []byte(`"kind":"Issue"`), 1)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
		}, want: []string{`log: entry 1 is not a key-use record a server writes: its kind "Issue"`}},
		{name: "a certificate of another CA", tamper: func(f *logFixture) {
			lookalike := strings.Replace(f.ca.ARN, "certificate-authority", "certificate-auth\u043erity", 1)
			f.records[1] = bytes.Replace(f.records[1], []byte(`"certificateAuthorityArn":"`+f.ca.ARN), []byte(`"certificateAuthorityArn":"`+lookalike), 1)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
		}, want: []string{"log: entry 1 is not a key-use record a server writes: its certificate"}},
		{name: "a certificate revoked twice", tamper: func(f *logFixture) {
			c := *f.rows[0]
			f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, &c, c.RevokedAt.Add(time.Hour), openpca.RevocationReasonSuperseded, "account:111122223333", "req-r2").Record)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
		}, want: []string{"log: entry 25 revokes the certificate 00000000000000000000000000000001 again (first at entry 21)"}},
		{name: "a revocation of a certificate never issued", tamper: func(f *logFixture) {
			f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, forged(f), time.Now(), openpca.RevocationReasonSuperseded, "account:111122223333", "req-r2").Record)
			f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
		}, want: []string{"log: entry 25 revokes the certificate 0bad, which the log has not issued before it"}},
		{name: "a CA named like another", tamper: func(f *logFixture) {
			lookalike := strings.Replace(f.ca.ARN, "certificate-authority", "certificate-auth\u043erity", 1)
			f.checkpoint = signedCheckpoint(t, lookalike, f.records, f.signer)
			f.header = func(h *auditlog.ProofHeader) { h.CertificateAuthorityArn = lookalike }
		}, want: []string{"checkpoint: the proof file is of \"arn:aws:acm-pca:us-east-1:111122223333:certificate-auth\u043erity/"}},
		{name: "a report kept as another CA's", tamper: func(f *logFixture) {
			f.header = func(h *auditlog.ProofHeader) {
				h.S3Key = "audit-report/99999999-2222-3333-4444-555555555555/r.json"
				s, _ := auditlog.NewReportStatement(h.AuditReportID, h.S3Key, h.ReportFormat, []byte(h.Checkpoint)).Sign(f.signer)
				h.Report = string(s)
			}
		}, want: []string{"report: the report r is at audit-report/99999999-2222-3333-4444-555555555555/r.json in its bucket, which is not where the reports of"}},
	}
	for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
		for _, tt := range tests {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				f := newLogFixture(t, 20, format)
				if tt.tamper != nil {
					tt.tamper(f)
				}
				report, proof := f.write(t)
				proof = proof[:len(proof)-tt.cut]
				key := f.vkey
				if tt.key != "" {
					key = tt.key
				}
				v := Verify(bytes.NewReader(report), bytes.NewReader(proof), key)
				var got []string
				for _, p := range v.Problems {
					got = append(got, p.String())
				}
				if len(tt.want) == 0 {
					if len(got) > 0 || v.Rows != 20 || v.Certificates != 20 || v.Checkpoint == nil || v.Checkpoint.Size != 25 {
						t.Fatalf("clean report: rows %d, certificates %d, checkpoint %+v, problems:\n%s", v.Rows, v.Certificates, v.Checkpoint, strings.Join(got, "\n"))
					}
					if signed := v.Statement != nil && v.Statement.ID == "r"; signed != (v.Header.Report != "") {
						t.Errorf("statement %+v of a header with %q", v.Statement, v.Header.Report)
					}
					return
				}
				for _, w := range tt.want {
					if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
						t.Errorf("no problem says %q; got:\n%s", w, strings.Join(got, "\n"))
					}
				}
			})
		}
	}
}

// TestVerifyManyProblems: what compareRows says of a report that differs
// from its log in many rows, which it finds by keys and digests of the
// log's rows and quotes from a third read of the proof file: the first
// problems, and then that there are more; what differs in a row after
// rows of a megabyte; and a serial the log issued twice compared with its
// later issuance.
func TestVerifyManyProblems(t *testing.T) {
	const n = maxProblems + 100
	serial := func(i int) string {
		return strings.Repeat("00:", 14) + fmt.Sprintf("%02x:%02x", (i+1)>>8, (i+1)&0xff)
	}
	long := "CN=" + strings.Repeat("a", maxRow-4096)
	tests := []struct {
		name   string
		n      int
		tamper func(f *logFixture)
		first  string // the first problem starts so
		want   []string
		count  int // of problems, if not 0
	}{
		{name: "rows reversed", n: n, tamper: func(f *logFixture) { slices.Reverse(f.rows) },
			first: "row 2: certificate " + serial(n-2) + " is out of order", count: maxProblems + 1},
		{name: "every row deleted", n: n, tamper: func(f *logFixture) { f.rows = nil },
			first: "missing: certificate " + serial(0) + " (log entry 1, issued 2026-11-23T10:00:00+0000)", count: maxProblems + 1},
		// Rows of a megabyte before it do not keep a row from saying
		// what differs.
		{name: "long rows", n: 21, tamper: func(f *logFixture) {
			for _, c := range f.rows[:16] {
				c.Subject = long
			}
			f.rows[20].RevokedAt, f.rows[20].RevocationReason = time.Time{}, ""
		}, first: "row 1: certificate " + serial(0) + `: subject is "CN=aaa`, count: 18,
			want: []string{"row 16: certificate " + serial(15) + `: subject is "CN=aaa`,
				"row 21: certificate " + serial(20) + `: revokedAt is "", the log says "2026-11-23T11:00:00+0000"`,
				"row 21: certificate " + serial(20) + `: revocationReason is "", the log says "KEY_COMPROMISE"`}},
		// Said in the log's order, not the serials'.
		{name: "revoked twice", n: 20, tamper: func(f *logFixture) {
			for _, c := range []*openpca.Certificate{f.rows[5], f.rows[0]} {
				f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, c, c.RevokedAt.Add(time.Hour), openpca.RevocationReasonSuperseded, "account:111122223333", "req-r2").Record)
			}
		}, first: "log: entry 25 revokes the certificate 00000000000000000000000000000006 again (first at entry 22)", count: 2,
			want: []string{"log: entry 26 revokes the certificate 00000000000000000000000000000001 again (first at entry 21)"}},
		{name: "a serial issued twice", n: 20, tamper: func(f *logFixture) {
			c := *f.rows[0]
			c.Subject, c.IssuedAt = "CN=again", c.IssuedAt.Add(time.Hour)
			f.records = append(f.records, openpca.IssueUse(f.ca.ARN, &c).Record)
		}, first: "row 1: certificate " + serial(0) + `: subject is "CN=host-0.example.com,O=Example", the log says "CN=again"`,
			want: []string{"missing: certificate " + serial(0) + " (log entry 1, issued 2026-11-23T10:00:00+0000) is missing from the report"}},
	}
	for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
		for _, tt := range tests {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				f := newLogFixture(t, tt.n, format)
				tt.tamper(f)
				f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
				report, proof := f.write(t)
				v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
				var got []string
				for _, p := range v.Problems {
					got = append(got, p.String())
				}
				switch {
				case len(got) == 0:
					t.Fatal("no problems")
				case !strings.HasPrefix(got[0], tt.first):
					t.Errorf("first problem %q, want one that starts %q", got[0], tt.first)
				case tt.count != 0 && len(got) != tt.count:
					t.Errorf("%d problems, want %d; the last: %q", len(got), tt.count, got[len(got)-1])
				case tt.count > maxProblems && !strings.HasPrefix(got[maxProblems], "more: "):
					t.Errorf("the last problem is %q, not that there are more", got[maxProblems])
				}
				for _, w := range tt.want {
					if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
						t.Errorf("no problem starts %q; got:\n%s", w, strings.Join(got[:min(len(got), 30)], "\n"))
					}
				}
			})
		}
	}
}

// TestVerifyJSONText: a JSON report verifies only as the one array of rows
// that was checked, with nothing after it and no member given twice: other
// readers would show what verification never saw.
func TestVerifyJSONText(t *testing.T) {
	f := newLogFixture(t, 5, openpca.AuditReportResponseFormatJson)
	report, proof := f.write(t)
	first := bytes.Index(report, []byte(`"subject":`))
	tests := []struct {
		name   string
		report []byte
		want   string
	}{
		{"clean", report, ""},
		{"trailing whitespace", append(bytes.Clone(report), " \n"...), ""},
		{"another array after it", append(bytes.Clone(report), `[{"serial":"0b:ad","subject":"CN=hidden.example"}]`...), "more after its array"},
		{"text after it", append(bytes.Clone(report), " this is not json"...), "more after its array"},
		{"a member twice", slices.Concat(report[:first], []byte(`"subject":"CN=evil.example",`), report[first:]), `row 1: it has the member "subject" twice`},
		{"a member that is not a string", bytes.Replace(report, []byte(`"subject":"`), []byte(`"subject":7,"x":"`), 1), `row 1: its member "subject" is not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verify(bytes.NewReader(tt.report), bytes.NewReader(proof), f.vkey)
			var got []string
			for _, p := range v.Problems {
				got = append(got, p.String())
			}
			if tt.want == "" {
				if len(got) > 0 || v.Rows != 5 {
					t.Errorf("%d rows, problems:\n%s", v.Rows, strings.Join(got, "\n"))
				}
				return
			}
			if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, tt.want) }) {
				t.Errorf("no problem says %q; got:\n%s", tt.want, strings.Join(got, "\n"))
			}
		})
	}
}

// TestVerifyCSVCarriageReturns: a subject with carriage returns, which a
// CSV report cannot keep, verifies, also once the report is read row by
// row (here because its line ends were changed to LF, which changes no
// value).
func TestVerifyCSVCarriageReturns(t *testing.T) {
	f := newLogFixture(t, 5, openpca.AuditReportResponseFormatCsv)
	f.rows[1].Subject = "CN=cr\rhere,O=two\r\nlines"
	f.records[2] = openpca.IssueUse(f.ca.ARN, f.rows[1]).Record
	report, proof := f.write(t)
	for name, r := range map[string][]byte{"as written": report, "with LF line ends": bytes.ReplaceAll(report, []byte("\r\n"), []byte("\n"))} {
		v := Verify(bytes.NewReader(r), bytes.NewReader(proof), f.vkey)
		if len(v.Problems) > 0 || v.Rows != 5 {
			t.Errorf("%s: %d rows, problems %v", name, v.Rows, v.Problems)
		}
	}
}

// BenchmarkVerify verifies a JSON report of 100,000 certificates and its
// proof file: with the fixture's revocations (one certificate in five);
// with every certificate revoked, as after a key compromise; and with the
// last row's subject changed, which Verify finds by reading the report row
// by row. Verify holds the log's revocations until it has read the report,
// and then 64 bytes of each issuance too; peak-heap-MiB is the most its
// heap's objects grew by while it ran (garbage not yet collected too).
func BenchmarkVerify(b *testing.B) {
	allRevoked := func(f *logFixture) {
		for i, c := range f.rows {
			if i%5 != 0 {
				c.RevokedAt, c.RevocationReason = c.IssuedAt.Add(2*time.Hour), openpca.RevocationReasonSuperseded
				f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, c, c.RevokedAt, c.RevocationReason, "account:111122223333", "req-r").Record)
			}
		}
	}
	lastChanged := func(f *logFixture) { f.rows[len(f.rows)-1].Subject = "CN=changed.example.com" }
	for _, tt := range []struct {
		name     string
		tamper   func(f *logFixture)
		problems int
	}{{"all-revoked=false", nil, 0}, {"all-revoked=true", allRevoked, 0}, {"last-row-changed", lastChanged, 1}} {
		b.Run(tt.name, func(b *testing.B) {
			report, proof, vkey := verifyFiles(b, 100_000, openpca.AuditReportResponseFormatJson, tt.tamper)
			b.ReportAllocs()
			growth := heapGrowth()
			for b.Loop() {
				if err := rewind(report, proof); err != nil {
					b.Fatal(err)
				}
				if v := Verify(report, proof, vkey); len(v.Problems) != tt.problems || v.Rows != 100_000 {
					b.Fatalf("%d rows, problems %v", v.Rows, v.Problems)
				}
			}
			b.ReportMetric(growth(), "peak-heap-MiB")
		})
	}
}

// TestVerifyMemory: what Verify keeps of a log whose report differs from
// it in every row is 64 bytes of each issuance, and of each problem no
// more than it shows, in either format. GOGC is 10 while it runs, so that garbage does not
// hide what is kept. The race detector, which has nothing to watch here
// (Verify runs on one goroutine), made it a fifth of the Go tests' CPU:
// it runs without (scripts/test runs it so, beside the fuzzing).
func TestVerifyMemory(t *testing.T) {
	race.Skip(t)
	long := "CN=" + strings.Repeat("a", maxRow-4096)
	for _, tt := range []struct {
		name   string
		n      int
		tamper func(f *logFixture)
	}{
		{"every row deleted", 50_000, func(f *logFixture) { f.rows = nil }},
		{"every row changed", 50_000, func(f *logFixture) {
			for _, c := range f.rows {
				c.Subject += "x"
			}
		}},
		// Problems that quote no row.
		{"every serial changed", 50_000, func(f *logFixture) {
			for _, c := range f.rows {
				c.Serial = "ff" + c.Serial
			}
		}},
		// A problem quotes a kilobyte of a field: the rest is not kept.
		{"rows of a megabyte changed", 32, func(f *logFixture) {
			for _, c := range f.rows {
				c.Subject = long
			}
		}},
	} {
		for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				report, proof, vkey := verifyFiles(t, tt.n, format, tt.tamper)
				defer debug.SetGCPercent(debug.SetGCPercent(10))
				growth := heapGrowth()
				v := Verify(report, proof, vkey)
				grew := growth()
				if len(v.Problems) == 0 {
					t.Error("no problems")
				}
				if grew > 16 {
					t.Errorf("the heap grew by %.1f MiB, want at most 16", grew)
				}
				t.Logf("the heap grew by %.1f MiB", grew)
			})
		}
	}
}

// TestRevocationsBounded: a log that revokes one certificate at every
// entry costs Verify the 64 bytes of each revocation and no more, and
// finding a revocation allocates nothing.
func TestRevocationsBounded(t *testing.T) {
	var rs revocations
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const serial = "00000000000000000000000000000001"
	for i := range 200_000 {
		rs.add(int64(200_000-i), serial, at, string(openpca.RevocationReasonKeyCompromise))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var said []int64
	rs.sort(func(r, first logRevocation) { said = append(said, r.seq) })
	runtime.ReadMemStats(&after)
	if len(rs.list) != 1 || rs.list[0].seq != 1 || len(said) != maxProblems+1 || said[0] != 2 || !slices.IsSorted(said) {
		t.Errorf("kept %d (the first at entry %d), said %d", len(rs.list), rs.list[0].seq, len(said))
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("sorting allocated %d KiB", a>>10)
	}
	if n := testing.AllocsPerRun(100, func() { rs.find(serial) }); n != 0 || rs.find(serial) == nil || rs.find(serial+"0") != nil {
		t.Errorf("find: %v allocations", n)
	}
}

// verifyFiles writes the report of the format and the proof file of a log
// of n issuances, tampered with if tamper is not nil, and opens them.
func verifyFiles(tb testing.TB, n int, format openpca.AuditReportResponseFormat, tamper func(f *logFixture)) (report, proof *os.File, vkey string) {
	f := newLogFixture(tb, n, format)
	if tamper != nil {
		tamper(f)
	}
	r, p := f.write(tb)
	if b, ok := tb.(*testing.B); ok {
		b.SetBytes(int64(len(r) + len(p)))
	}
	dir := tb.TempDir()
	for _, file := range []struct {
		name string
		data []byte
		to   **os.File
	}{{"report.json", r, &report}, {"proof.jsonl.gz", p, &proof}} {
		name := filepath.Join(dir, file.name)
		if err := os.WriteFile(name, file.data, 0o600); err != nil {
			tb.Fatal(err)
		}
		opened, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { opened.Close() })
		*file.to = opened
	}
	return report, proof, f.vkey
}

// heapGrowth collects garbage and then samples the heap's objects every
// millisecond (runtime/metrics, which does not stop the world as
// ReadMemStats does) until the function it returns is called, which
// returns the most they grew by, in MiB.
func heapGrowth() func() float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	done := make(chan uint64)
	go func() {
		most := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				most = max(most, read())
			case done <- most:
				return
			}
		}
	}()
	return func() float64 { return float64(<-done-base) / (1 << 20) }
}

// TestVerifyOrdersByLog: a report lists certificates in the order of
// their log entries, whatever their issue times (which group commits can
// log slightly out of order); the same rows sorted by issue time are out
// of order.
func TestVerifyOrdersByLog(t *testing.T) {
	f := newLogFixture(t, 3, openpca.AuditReportResponseFormatJson)
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.records = f.records[:1]
	for i, c := range f.rows {
		c.IssuedAt = base.Add(time.Duration(3-i) * time.Millisecond)
		c.RevokedAt, c.RevocationReason = time.Time{}, ""
		f.records = append(f.records, openpca.IssueUse(f.ca.ARN, c).Record)
	}
	report, proof := f.write(t)
	if v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey); len(v.Problems) > 0 {
		t.Errorf("problems: %v", v.Problems)
	}
	slices.Reverse(f.rows)
	report, proof = f.write(t)
	v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
	if len(v.Problems) == 0 || !strings.Contains(v.Problems[0].String(), "out of order") {
		t.Errorf("rows sorted by issue time: %v", v.Problems)
	}
}

// FuzzParseRecord: whatever a record is, the fast path decodes it as
// encoding/json does, or leaves it to encoding/json.
func FuzzParseRecord(f *testing.F) {
	fx := newLogFixture(f, 5, openpca.AuditReportResponseFormatJson)
	for _, r := range fx.records {
		f.Add(r)
	}
	f.Add([]byte(`{"kind":"CRL","crlNumber":12,"revokedCertificates":0}`))
	f.Add([]byte(`{"kind":"CRL","revokedCertificates":1,"revocationsBefore":0,"expiringFrom":"2026-12-07T00:00:00Z","entriesSha256":"ab"}`))
	f.Add([]byte(`{"kind":"CRL","revokedCertificates":1,"revocationsBefore":7,"revocationsFrom":3,"expiringFrom":"2026-12-07T00:00:00Z","entriesSha256":"ab"}`))
	f.Add([]byte(`{"kind":"ISSUE","Kind":"OCSP"}`))
	f.Add([]byte(`{"subject":"CN=a\u0026b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast openpca.KeyUseRecord
		if !parseFlatRecord(b, &fast) {
			return
		}
		var slow openpca.KeyUseRecord
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("the fast path took %q, which encoding/json refuses: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\n fast %+v\n json %+v", b, fast, slow)
		}
	})
}

// FuzzVerify: whatever report and proof file an operator hands an auditor,
// Verify neither panics nor hangs, and what it verifies has the log's rows,
// every one: no key but the server's signs the checkpoint, so the log
// cannot change, and the report must then be its issuances. The seeds are
// a JSON and a CSV report with their proof files, compressed and not.
func FuzzVerify(f *testing.F) {
	// A key of its own, the same in every run, so that a failing input
	// found once fails again.
	skey, vkey, err := note.GenerateKey(mathrand.NewChaCha8([32]byte{}), auditlog.KeyName)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
		fx := newLogFixture(f, 6, format)
		fx.signer, fx.vkey = signer, vkey
		report, proof := fx.write(f)
		f.Add(report, proof)
		zr, err := gzip.NewReader(bytes.NewReader(proof))
		if err != nil {
			f.Fatal(err)
		}
		lines, err := io.ReadAll(zr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(report, lines)
	}
	// Every seed's log is the same: a report verified is of its rows.
	var want [][]string
	for _, c := range newLogFixture(f, 6, openpca.AuditReportResponseFormatJson).rows {
		want = append(want, values(c, nil))
	}
	f.Fuzz(func(t *testing.T, report, proof []byte) {
		v := Verify(bytes.NewReader(report), bytes.NewReader(proof), vkey)
		if len(v.Problems) > 0 {
			return
		}
		if v.Rows != 6 || v.Certificates != 6 {
			t.Fatalf("verified with %d rows and %d certificates, not the log's 6", v.Rows, v.Certificates)
		}
		var got [][]string
		err := readRows(bytes.NewReader(report), openpca.AuditReportResponseFormat(v.Header.ReportFormat), func(_ int, row []string) { got = append(got, slices.Clone(row)) })
		if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("verified a report whose rows are not the log's (%v):\n%q", err, got)
		}
	})
}

// TestVerifyFutureEntries: an entry dated after its checkpoint was
// signed (a server's clock ahead) is noted, not a failure.
func TestVerifyFutureEntries(t *testing.T) {
	f := newLogFixture(t, 20, openpca.AuditReportResponseFormatJson)
	future := time.Now().UTC().AddDate(5, 0, 0).Truncate(time.Second)
	for i := range 3 {
		c := forged(f)
		c.Serial = fmt.Sprintf("0bad%d", i)
		c.ARN = f.ca.ARN + "/certificate/" + c.Serial
		c.IssuedAt = future.Add(time.Duration(i) * time.Second)
		f.rows = append(f.rows, c)
		f.records = append(f.records, openpca.IssueUse(f.ca.ARN, c).Record)
	}
	report, proof := f.write(t)
	v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
	if len(v.Problems) > 0 || len(v.Notes) != 2 || !strings.Contains(v.Notes[0], "entry 25 is dated "+future.Format(time.RFC3339)+", after the checkpoint that covers it was signed") ||
		!strings.Contains(v.Notes[1], "3 entries in all") {
		t.Errorf("problems %v, notes %v", v.Problems, v.Notes)
	}
}

// TestVerifyBounds: what an auditor is handed may be hostile. A proof
// file's records are read only once its checkpoint holds, and no more of
// them than it has; and problems are listed up to a bound, however many
// rows are forged.
func TestVerifyBounds(t *testing.T) {
	f := newLogFixture(t, 20, openpca.AuditReportResponseFormatCsv)
	report, proof := f.write(t)
	// A small proof file can decompress to millions of lines.
	h := newLogFixture(t, 20, openpca.AuditReportResponseFormatCsv)
	h.signer, h.vkey = f.signer, f.vkey
	h.checkpoint = signedCheckpoint(t, h.ca.ARN, h.records, h.signer)
	for range 200000 {
		h.records = append(h.records, []byte("{}"))
	}
	_, many := h.write(t)
	v := Verify(bytes.NewReader(report), bytes.NewReader(many), f.vkey)
	if len(v.Problems) != 1 || !strings.Contains(v.Problems[0].String(), "more log entries than the checkpoint's 25") || v.Log.Size() != 25 {
		t.Errorf("a proof file with 200,000 lines more: %d entries read, problems %v", v.Log.Size(), v.Problems)
	}
	other, _ := newKey(t)
	g := newLogFixture(t, 20, openpca.AuditReportResponseFormatCsv)
	g.checkpoint = signedCheckpoint(t, g.ca.ARN, g.records, other)
	_, forgedProof := g.write(t)
	v = Verify(bytes.NewReader(report), bytes.NewReader(forgedProof), f.vkey)
	if len(v.Problems) != 1 || v.Log.Size() != 0 {
		t.Errorf("a checkpoint signed by another key: %d entries read, problems %v", v.Log.Size(), v.Problems)
	}
	for range 5000 {
		f.rows = append(f.rows, forged(f))
	}
	report, _ = f.write(t)
	v = Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
	if len(v.Problems) != maxProblems+1 || v.Problems[maxProblems].Check != "more" {
		t.Errorf("5,000 forged rows: %d problems, the last %v", len(v.Problems), v.Problems[len(v.Problems)-1])
	}
}

// TestVerifyForgedRecords: a proof file whose signed checkpoint is genuine
// but whose records are someone else's (a megabyte's ARN in each, a
// serial of a kilobyte) is found not to be the checkpoint's log, and
// what the verification keeps and says of it stays small: it had each
// record's CA in memory, and quoted each in a problem, whole.
func TestVerifyForgedRecords(t *testing.T) {
	f := newLogFixture(t, 20, openpca.AuditReportResponseFormatJson)
	report, _ := f.write(t)
	f.checkpoint = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
	n := len(f.records)
	f.records = f.records[:1]
	for i := 1; i < n; i++ {
		arn := f.ca.ARN + strings.Repeat("x", 256<<10) + strconv.Itoa(i)
		c := *f.rows[0]
		c.Serial = strings.Repeat("ab", 512)
		c.ARN = arn + "/certificate/" + c.Serial
		caARN := arn
		if i == 1 {
			caARN, c.ARN = f.ca.ARN, f.ca.ARN+"/certificate/"+c.Serial
		}
		f.records = append(f.records, openpca.RevokeUse(caARN, &c, c.IssuedAt, openpca.RevocationReasonKeyCompromise, "account:111122223333", "req-r\x1b[2K").Record)
	}
	_, proof := f.write(t)
	v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
	said := 0
	var all []string
	for _, p := range v.Problems {
		said += len(p.String())
		all = append(all, p.String())
		if p.Check == "row" || p.Check == "missing" {
			t.Errorf("rows compared with a log that is not the checkpoint's: %v", p)
		}
	}
	if v.Statement == nil {
		t.Error("the proof file's report statement was not read: the report's identity would be said unsigned")
	}
	if said > 8<<10 || !strings.Contains(strings.Join(all, "\n"), "do not hash to the checkpoint's root") ||
		!strings.Contains(strings.Join(all, "\n"), "serial longer than 20 octets") {
		t.Errorf("%d problems, %d bytes in all:\n%.4000s", len(v.Problems), said, strings.Join(all, "\n"))
	}
}

// TestVerifyLongRow: a report row far longer than a server writes, beside
// a genuine proof file, is refused without being read whole.
func TestVerifyLongRow(t *testing.T) {
	for _, format := range []openpca.AuditReportResponseFormat{openpca.AuditReportResponseFormatJson, openpca.AuditReportResponseFormatCsv} {
		t.Run(string(format), func(t *testing.T) {
			f := newLogFixture(t, 3, format)
			_, proof := f.write(t)
			long := *f.rows[1]
			long.Subject = strings.Repeat("CN=x,", 8<<20)
			f.rows[1] = &long
			report, _ := f.write(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
			runtime.ReadMemStats(&after)
			if !strings.Contains(fmt.Sprint(v.Problems), "longer than") {
				t.Errorf("a row of 40 MB: %.300v", v.Problems)
			}
			// The row alone is 40 MB; reading it whole took ten times that.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("%d MB allocated to refuse a row of 40 MB", alloc>>20)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"certificate 0a:1b is missing", "certificate 0a:1b is missing"},
		{"CN=Bücher, O=Société", "CN=Bücher, O=Société"},
		{"OK\x1b[1A\x1b[2K all good", `OK\x1b[1A\x1b[2K all good`},
		{"name\u202Egnp.exe", `name\u202egnp.exe`},
		{"a\tb\nc\r", `a\tb\nc\r`},
		{strings.Repeat("é", maxDetail), strings.Repeat("é", maxDetail/2) + "…"},
		{"a" + strings.Repeat("é", maxDetail), "a" + strings.Repeat("é", maxDetail/2-1) + "…"},
		{"serial\x9b2Kok", `serial\x9b2Kok`},
		{"CN=caf\xe9", `CN=caf\xe9`},
		{"\uFFFD", "\uFFFD"}, // a replacement character itself: harmless
	} {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%.40q) = %.60q, want %.60q", tt.in, got, tt.want)
		}
	}
}

// TestVerifyUnsignedIdentityNoted: the report statement sits in the proof
// file's header, which nothing signs: taken out, the proof file reads as
// one of a version before statements, and any report of a log the key
// signs, older or of another CA, verifies in the place of the one asked
// for. A report named for its id then fails, unless unsigned proof files
// are allowed (those of servers before statements), with a note; one
// named for none is noted, for every reader of it.
func TestVerifyUnsignedIdentityNoted(t *testing.T) {
	f := newLogFixture(t, 3, openpca.AuditReportResponseFormatJson)
	f.header = func(h *auditlog.ProofHeader) { h.Report = "" }
	report, proof := f.write(t)
	noted := func(v *Verification) bool {
		return slices.ContainsFunc(v.Notes, func(n string) bool { return strings.Contains(n, "does not sign which report it is") })
	}
	for _, tc := range []struct {
		name, file    string
		allowUnsigned bool
		fails         bool
	}{
		{"named for a report", "0b7a9f0e-9a55-4c41-8d9b-3c0a3f0e1d2c.json", false, true},
		{"named for a report, unsigned ones allowed", "0b7a9f0e-9a55-4c41-8d9b-3c0a3f0e1d2c.json", true, false},
		{"named for none", "r.json", false, false},
	} {
		v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
		v.CheckIdentity(tc.file, "", "", tc.allowUnsigned)
		if failed := len(v.Problems) > 0; failed != tc.fails || !tc.fails && !noted(v) {
			t.Errorf("%s: a proof file without its statement: problems %v, notes %q; want failed %v, else a note", tc.name, v.Problems, v.Notes, tc.fails)
		}
	}
	f.header = nil
	report, proof = f.write(t)
	v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
	v.CheckIdentity("r.json", "", "", false)
	if len(v.Problems) > 0 || len(v.Notes) > 0 {
		t.Errorf("a proof file with its statement: problems %v, notes %q", v.Problems, v.Notes)
	}
}

// TestCheckIdentitySpelling: a report's file named for its id, however
// the id is written (upper case, in braces), is that report; named for
// another id, it fails.
func TestCheckIdentitySpelling(t *testing.T) {
	const id = "0f8fad5b-d9cb-469f-a165-70867728950e"
	f := newLogFixture(t, 3, openpca.AuditReportResponseFormatJson)
	f.header = func(h *auditlog.ProofHeader) {
		h.AuditReportID, h.S3Key = id, "audit-report/"+f.ca.ID+"/"+id+".json"
		s, err := auditlog.NewReportStatement(id, h.S3Key, h.ReportFormat, []byte(h.Checkpoint)).Sign(f.signer)
		if err != nil {
			t.Fatal(err)
		}
		h.Report = string(s)
	}
	report, proof := f.write(t)
	for _, tc := range []struct {
		file  string
		fails bool
	}{
		{id + ".json", false},
		{strings.ToUpper(id) + ".json", false},
		{"{" + id + "}.json", false},
		{strings.ReplaceAll(id, "-", "") + ".json", false},
		{"1f8fad5b-d9cb-469f-a165-70867728950e.json", true},
	} {
		v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
		v.CheckIdentity(tc.file, "", "", false)
		if failed := len(v.Problems) > 0; failed != tc.fails {
			t.Errorf("%s: problems %v; want failed %v", tc.file, v.Problems, tc.fails)
		}
	}
}

// TestVerifyImports: verify notes the log's last import of the CA's
// certificate, by whom and when, its words quoted as a problem's are (a
// proof file is anyone's: a line break and an escape sequence would
// print a line of verify's own); and fails an upgrade's import after
// another import, which no server writes.
func TestVerifyImports(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	imported := func(f *logFixture, by, notAfter string) {
		ca := *f.ca
		ca.Certificate, ca.NotBefore, ca.NotAfter = []byte{0x30, 0}, at, at.AddDate(1, 0, 0)
		use, err := openpca.ImportUse(&ca, by, "req-i", at)
		if err != nil {
			t.Fatal(err)
		}
		record := bytes.Replace(use.Record, []byte(`"notAfter":"2027-12-01T00:00:00Z"`), []byte(`"notAfter":"`+notAfter+`"`), 1)
		f.records = append(f.records, record)
	}
	sum := sha256.Sum256([]byte{0x30, 0})
	for _, tc := range []struct {
		name    string
		imports func(f *logFixture)
		note    string // of the last import
		problem string
	}{
		{"one", func(f *logFixture) { imported(f, "arn:aws:iam::111122223333:root", "2027-12-01T00:00:00Z") },
			fmt.Sprintf("the log imports the CA's certificate 1 times; the last import, entry 21, by arn:aws:iam::111122223333:root at 2026-12-01T00:00:00Z, is of the certificate of SHA-256 %x, without a chain, valid from 2026-12-01T00:00:00Z to 2027-12-01T00:00:00Z", sum), ""},
		{"words not verify's", func(f *logFixture) {
			imported(f, "arn:aws:iam::111122223333:root", `2027\nOK esc/r.json: its 0 rows are fine\nverified\u001b[8m`)
		}, `to 2027\nOK esc/r.json: its 0 rows are fine\nverified\x1b[8m: compare`, ""},
		{"the upgrade's after another", func(f *logFixture) {
			imported(f, "arn:aws:iam::111122223333:root", "2027-12-01T00:00:00Z")
			imported(f, openpca.UpgradePrincipal, "2027-12-01T00:00:00Z")
		}, "2 times", "entry 22 imports the CA's certificate as the upgrade to a version that logs imports does, after entry 21 imported one"},
		{"the upgrade's first", func(f *logFixture) {
			imported(f, openpca.UpgradePrincipal, "2027-12-01T00:00:00Z")
			imported(f, "arn:aws:iam::111122223333:root", "2027-12-01T00:00:00Z")
		}, "2 times", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLogFixture(t, 20, openpca.AuditReportResponseFormatJson)
			f.records = f.records[:21] // the CSR and the issuances: the revocations would follow
			f.rows = f.rows[:20]
			for _, c := range f.rows {
				c.RevokedAt, c.RevocationReason = time.Time{}, ""
			}
			tc.imports(f)
			report, proof := f.write(t)
			v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
			notes := strings.Join(v.Notes, "\n")
			if !strings.Contains(notes, tc.note) || strings.Contains(notes, "\n") {
				t.Errorf("notes %q, want one with %q", notes, tc.note)
			}
			var problems []string
			for _, p := range v.Problems {
				problems = append(problems, p.String())
			}
			if got := strings.Join(problems, "; "); tc.problem == "" && got != "" || !strings.Contains(got, tc.problem) {
				t.Errorf("problems %q, want %q", got, tc.problem)
			}
		})
	}
}
