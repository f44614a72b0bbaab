package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/witness"
)

// runOpenpca runs the command in this process, as a user would run it, and
// returns what it printed.
func runOpenpca(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr, func(string) (string, bool) { return "", false })
	return stdout.String() + stderr.String(), err
}

// auditServer is a server with a CA that has issued and revoked
// certificates, and a JSON audit report of it in a local bucket.
type auditServer struct {
	env                        *testenv.Env
	caARN, report, proof, vkey string
	serials                    []string // hex, colon-free; the first is revoked
}

func newAuditServer(t *testing.T) *auditServer {
	signAsTestKey(t)
	s := &auditServer{env: testenv.Start(t)}
	env := s.env
	s.caARN, _ = env.NewActiveRoot(t, "Audit Root")
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "audited.example", Organization: []string{"Example"}}}).CSRPEM
	for range 12 {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &s.caARN, Csr: leaf})
		s.serials = append(s.serials, arn[strings.LastIndex(arn, "/")+1:])
	}
	if _, err := env.Client.RevokeCertificate(t.Context(), &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &s.caARN,
		CertificateSerial: &s.serials[0], RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	s.report = newReport(t, env, s.caARN)
	s.proof = s.report + auditlog.ProofSuffix
	key, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.vkey = strings.TrimSpace(key)
	return s
}

func (s *auditServer) verify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runOpenpca(t, append([]string{"audit", "verify", "--report", s.report, "--key", s.vkey}, args...)...)
}

// TestAuditVerifyEarlier: a report's log must extend an earlier report's,
// given: an operator who forks the log (takes issuances out of it, and
// grows it again) leaves a later report that verifies alone, and against
// the server that signs the fork, but not against an earlier report of
// what was taken out.
func TestAuditVerifyEarlier(t *testing.T) {
	s := newAuditServer(t)
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "later.example"}}).CSRPEM
	issue := func(n int) {
		for range n {
			s.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &s.caARN, Csr: leaf})
		}
	}
	issue(3)
	s.env.Clock.Advance(31 * time.Minute) // a report of the CA every 30 minutes at most
	second := newReport(t, s.env, s.caARN)
	verify := func(report, earlier string) (string, error) {
		return runOpenpca(t, "audit", "verify", "--report", report, "--key", s.vkey, "--earlier", earlier+auditlog.ProofSuffix)
	}
	if out, err := verify(second, s.report); err != nil || !strings.Contains(out, "OK it extends the earlier report's log: its first 16 entries") {
		t.Errorf("a later report against an earlier one: %v\n%s", err, out)
	}
	if out, err := verify(s.report, second); !errors.Is(err, errVerification) || !strings.Contains(out, "more than this report's") {
		t.Errorf("an earlier report against a later one: %v\n%s", err, out)
	}

	s.env.Stop(t)
	forkLog(t, s.env, s.env.DB(t), s.caARN[strings.LastIndex(s.caARN, "/")+1:], 2)
	s.env.Restart(t)
	issue(4)
	s.env.Clock.Advance(31 * time.Minute)
	third := newReport(t, s.env, s.caARN)
	if out, err := runOpenpca(t, "audit", "verify", "--report", third, "--key", s.vkey, "--server", s.env.URL); err != nil {
		t.Errorf("the forked log's report, alone and against the server: %v\n%s", err, out)
	}
	if out, err := verify(third, second); !errors.Is(err, errVerification) || !strings.Contains(out, "FAIL earlier: the log's first 19 entries are not the earlier report's: its history was rewritten since") {
		t.Errorf("the forked log's report against the report before the fork: %v\n%s", err, out)
	}
	// What the fork kept, the first report had alone: it still extends it.
	if out, err := verify(third, s.report); err != nil {
		t.Errorf("the forked log's report against a report the fork kept: %v\n%s", err, out)
	}
}

// TestAuditVerify checks a real report with openpca audit verify: clean, it
// verifies, offline and against the server; tampered with, or against
// another key, it fails and says what is wrong.
func TestAuditVerify(t *testing.T) {
	s := newAuditServer(t)
	if !strings.HasPrefix(s.vkey, auditlog.KeyName+"+") {
		t.Fatalf("public key %q", s.vkey)
	}
	if fromData, err := runOpenpca(t, "audit", "public-key", "--data-dir", s.env.Config.DataDir); err != nil || strings.TrimSpace(fromData) != s.vkey {
		t.Errorf("the data folder's public key %q (%v) is not the server's %q", fromData, err, s.vkey)
	}

	out, err := s.verify(t)
	if err != nil || !strings.Contains(out, "its 13 rows are the 13 certificates of the first 16 entries") {
		t.Fatalf("clean report: %v\n%s", err, out)
	}
	// One witness's key under two names would count twice toward the
	// quorum: its cosignatures sign no name.
	_, w, err := witness.NewKey("w1.example")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.verify(t, "--witness", w, "--witness", testenv.RenamedWitnessKey(w, "w2.example")); err == nil || !strings.Contains(err.Error(), "one witness's key") {
		t.Errorf("one witness's key under two names: %v\n%s", err, out)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.pub")
	os.WriteFile(keyFile, []byte(s.vkey+"\n"), 0o644)
	if out, err := runOpenpca(t, "audit", "verify", "--report", s.report, "--key", keyFile, "--server", s.env.URL); err != nil || !strings.Contains(out, "OK the server's current log extends it") {
		t.Fatalf("clean report against the server: %v\n%s", err, out)
	}
	plus := filepath.Join(t.TempDir(), "keys+2026", "audit.pub") // a path may hold a "+" as a key does
	os.Mkdir(filepath.Dir(plus), 0o755)
	os.WriteFile(plus, []byte(s.vkey+"\n"), 0o644)
	if out, err := runOpenpca(t, "audit", "verify", "--report", s.report, "--key", plus); err != nil {
		t.Errorf("the key in a file whose path holds a +: %v\n%s", err, out)
	}

	// A report of an earlier version, beside its proof file of that
	// version: the lines alone, as Go's own gzip reader reads them.
	report, _ := os.ReadFile(s.report)
	proof, _ := os.ReadFile(s.proof)
	zr, err := gzip.NewReader(bytes.NewReader(proof))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := io.ReadAll(zr)
	if err != nil || !bytes.HasPrefix(lines, []byte(`{"format":"openpca-audit-proof/v1"`)) {
		t.Fatalf("the proof file, decompressed: %v\n%.100s", err, lines)
	}
	legacy := filepath.Join(t.TempDir(), filepath.Base(s.report))
	os.WriteFile(legacy, report, 0o644)
	os.WriteFile(legacy+auditlog.LegacyProofSuffix, lines, 0o644)
	if out, err := runOpenpca(t, "audit", "verify", "--report", legacy, "--key", s.vkey); err != nil || !strings.Contains(out, "its 13 rows") {
		t.Errorf("a report beside a proof file of an earlier version: %v\n%s", err, out)
	}

	// The report under another report's name (an older report put at a
	// newer one's key), or checked against another id, is not that report.
	id := strings.TrimSuffix(filepath.Base(s.report), ".json")
	if !strings.Contains(out, "OK it is report "+id+", JSON, at audit-report/") {
		t.Errorf("the clean report's verification does not say which report it is:\n%s", out)
	}
	stood := filepath.Join(t.TempDir(), "0195d1d6-0000-7000-8000-000000000000.json")
	os.WriteFile(stood, report, 0o644)
	out, err = runOpenpca(t, "audit", "verify", "--report", stood, "--proof", s.proof, "--key", s.vkey)
	if !errors.Is(err, errVerification) || !strings.Contains(out, "FAIL report: this is report "+id) || !strings.Contains(out, "not report 0195d1d6-0000-7000-8000-000000000000: another report was put in its place") {
		t.Errorf("a report under another report's name: %v\n%s", err, out)
	}
	for _, tc := range []struct{ id, want string }{{id, ""}, {"0195d1d6-0000-7000-8000-000000000000", "FAIL report: this is report " + id}} {
		out, err := runOpenpca(t, "audit", "verify", "--report", stood, "--proof", s.proof, "--key", s.vkey, "--report-id", tc.id)
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, errVerification) || !strings.Contains(out, tc.want)) {
			t.Errorf("--report-id %s: %v\n%s", tc.id, err, out)
		}
	}
	// A proof file without the statement, as earlier versions wrote: a
	// report named for its id fails (an older one of the CA, its
	// statement taken out, could stand in for it), unless such proof files
	// are allowed; it then verifies with a note that nothing says which
	// report it is.
	head, rest, _ := bytes.Cut(lines, []byte("\n"))
	var header map[string]any
	if err := json.Unmarshal(head, &header); err != nil || header["report"] == nil {
		t.Fatalf("the proof file's header has no report statement: %v\n%s", err, head)
	}
	delete(header, "report")
	head, _ = json.Marshal(header)
	unsigned := filepath.Join(t.TempDir(), filepath.Base(s.report))
	os.WriteFile(unsigned, report, 0o644)
	os.WriteFile(unsigned+auditlog.LegacyProofSuffix, slices.Concat(head, []byte("\n"), rest), 0o644)
	if out, err := runOpenpca(t, "audit", "verify", "--report", unsigned, "--key", s.vkey, "--allow-unsigned-identity"); err != nil || !strings.Contains(out, "NOTE its proof file does not sign which report it is") {
		t.Errorf("a proof file without a statement, allowed: %v\n%s", err, out)
	}
	for _, asked := range [][]string{nil, {"--report-id", id}} {
		if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", unsigned, "--key", s.vkey}, asked...)...); !errors.Is(err, errVerification) ||
			!strings.Contains(out, "FAIL report: the proof file does not sign which report it is, so it cannot show that it is report "+id) {
			t.Errorf("a proof file without a statement, %v: %v\n%s", asked, err, out)
		}
	}

	// A field changed in the report.
	var rows []map[string]string
	if err := json.Unmarshal(report, &rows); err != nil {
		t.Fatal(err)
	}
	rows[4]["notAfter"] = "2099-01-01T00:00:00+0000"
	tampered, _ := json.Marshal(rows)
	tamperedPath := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(tamperedPath, tampered, 0o644)
	out, err = runOpenpca(t, "audit", "verify", "--report", tamperedPath, "--proof", s.proof, "--key", s.vkey)
	if !errors.Is(err, errVerification) || !strings.Contains(out, `FAIL row 5: certificate `) || !strings.Contains(out, `notAfter is "2099-01-01T00:00:00+0000", the log says`) {
		t.Errorf("a changed notAfter: %v\n%s", err, out)
	}

	// Another server's key.
	other := testenv.Start(t)
	otherKey, _ := runOpenpca(t, "audit", "public-key", "--server", other.URL)
	out, err = runOpenpca(t, "audit", "verify", "--report", s.report, "--key", strings.TrimSpace(otherKey))
	if !errors.Is(err, errVerification) || !strings.Contains(out, "FAIL checkpoint: the checkpoint is not signed by the key") {
		t.Errorf("another server's key: %v\n%s", err, out)
	}

	// The log grows: the server's log still extends the report's.
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "later.example"}}).CSRPEM
	for range 5 {
		s.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &s.caARN, Csr: leaf})
	}
	if out, err := s.verify(t, "--server", s.env.URL); err != nil {
		t.Fatalf("after more issuances: %v\n%s", err, out)
	}

	// An operator rewrites an entry of the log, and every hash after it,
	// in the database: the report alone still verifies (it was cut before),
	// but the server's log no longer extends it.
	db := s.env.DB(t)
	caID := s.caARN[strings.LastIndex(s.caARN, "/")+1:]
	path := filepath.Join(s.env.Config.DataDir, "openpca.db")
	rewriteLog(t, db, path, caID, func(records [][]byte) [][]byte {
		records[3] = bytes.Replace(records[3], []byte("audited.example"), []byte("rewritten.example"), 1)
		return records
	})
	out, err = s.verify(t, "--server", s.env.URL)
	if !errors.Is(err, errVerification) || !strings.Contains(out, "FAIL server: the server's current log (21 entries) does not extend the report's (16 entries): its history was rewritten") {
		t.Errorf("a rewritten history: %v\n%s", err, out)
	}
	// ... or truncates it.
	rewriteLog(t, db, path, caID, func(records [][]byte) [][]byte { return records[:10] })
	out, err = s.verify(t, "--server", s.env.URL)
	if !errors.Is(err, errVerification) || !strings.Contains(out, "the server's log has 10 entries, fewer than the 16 of the report's checkpoint: it was truncated") {
		t.Errorf("a truncated log: %v\n%s", err, out)
	}
}

// TestAuditProof prints inclusion proofs of a revoked certificate, from the
// server and from a proof file, and checks them with the key.
func TestAuditProof(t *testing.T) {
	s := newAuditServer(t)
	colons := strings.ToUpper(s.serials[0][:2]) + ":" + s.serials[0][2:4] // any case, with colons
	for len(colons) < len(s.serials[0])*3/2-1 {
		i := len(strings.ReplaceAll(colons, ":", ""))
		colons += ":" + s.serials[0][i:i+2]
	}
	for _, args := range [][]string{
		{"--server", s.env.URL, "--ca", s.caARN, "--serial", colons},
		{"--proof", s.proof, "--serial", s.serials[0]},
	} {
		out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", s.vkey}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		var p auditlog.InclusionProof
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if len(p.Entries) != 2 || !strings.Contains(p.Entries[0].Record, `"kind":"ISSUE"`) || !strings.Contains(p.Entries[1].Record, `"kind":"REVOKE"`) {
			t.Errorf("%v: entries %s", args, out)
		}
		if err := p.Check(s.vkey); err != nil {
			t.Errorf("%v: the printed proof does not check: %v", args, err)
		}
		p.Entries[0].Record = strings.Replace(p.Entries[0].Record, "audited", "forged", 1)
		if err := p.Check(s.vkey); err == nil {
			t.Errorf("%v: a proof of an altered record checks", args)
		}
	}
	out, err := runOpenpca(t, "audit", "proof", "--server", s.env.URL, "--ca", s.caARN, "--serial", "0badbad")
	if err == nil || !strings.Contains(out+err.Error(), "ResourceNotFoundException") {
		t.Errorf("an unknown serial: %v\n%s", err, out)
	}

	// --revoked: the proof must hold the certificate's revocation, which
	// a server may leave out of its answer (here one that serves the
	// true proof of the revoked certificate, its revocation taken out).
	withRevocation, err := runOpenpca(t, "audit", "proof", "--server", s.env.URL, "--ca", s.caARN, "--serial", s.serials[0], "--key", s.vkey)
	if err != nil {
		t.Fatal(err)
	}
	var cut auditlog.InclusionProof
	json.Unmarshal([]byte(withRevocation), &cut)
	cut.Entries = cut.Entries[:1]
	cutAnswer, _ := json.Marshal(cut)
	leaving := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(cutAnswer)
	}))
	defer leaving.Close()
	for _, tc := range []struct {
		name    string
		args    []string
		revoked bool
	}{
		{"revoked, from the server", []string{"--server", s.env.URL, "--ca", s.caARN, "--serial", s.serials[0]}, true},
		{"revoked, from the proof file", []string{"--proof", s.proof, "--serial", s.serials[0]}, true},
		{"not revoked", []string{"--proof", s.proof, "--serial", s.serials[1]}, false},
		{"revoked, the revocation left out", []string{"--server", leaving.URL, "--ca", s.caARN, "--serial", s.serials[0]}, false},
	} {
		out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", s.vkey, "--revoked"}, tc.args...)...)
		if got := err == nil; got != tc.revoked || !tc.revoked && (!errors.Is(err, errVerification) || !strings.Contains(err.Error(), "has no revocation")) {
			t.Errorf("--revoked, %s: %v\n%s", tc.name, err, out)
		}
	}

	// A certificate given itself must be the one logged: another of a
	// logged serial, which the CA's key signed outside the log (here one
	// signed by another key: the log's record is what tells), fails.
	issued, _ := s.env.Certificate(t, s.caARN, s.caARN+"/certificate/"+s.serials[1])
	forgedKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: issued.SerialNumber, Subject: pkix.Name{CommonName: "www.victim-bank.example"},
		NotBefore: issued.NotBefore, NotAfter: issued.NotAfter}, &x509.Certificate{Subject: issued.Issuer}, forgedKey.Public(), forgedKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issuedPath, forgedPath := filepath.Join(dir, "issued.pem"), filepath.Join(dir, "forged.der")
	if err := errors.Join(os.WriteFile(issuedPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Raw}), 0o600),
		os.WriteFile(forgedPath, forged, 0o600)); err != nil {
		t.Fatal(err)
	}
	for _, from := range [][]string{{"--server", s.env.URL, "--ca", s.caARN}, {"--proof", s.proof}} {
		if out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", s.vkey, "--certificate", issuedPath}, from...)...); err != nil {
			t.Errorf("%v: the certificate logged: %v\n%s", from, err, out)
		}
		out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", s.vkey, "--certificate", forgedPath}, from...)...)
		if !errors.Is(err, errVerification) || !strings.Contains(err.Error(), "is of another certificate") {
			t.Errorf("%v: a certificate of a logged serial, not logged: %v; want a failed verification\n%s", from, err, out)
		}
	}
	if out, err := runOpenpca(t, "audit", "proof", "--proof", s.proof, "--certificate", forgedPath); err == nil || !strings.Contains(err.Error(), "needs --key") {
		t.Errorf("--certificate without --key: %v\n%s", err, out)
	}

	// A server that lies answers with a true proof of something else: of
	// another certificate, of another CA's, or of a record that is not
	// the certificate's. Each fails.
	other, _ := s.env.NewActiveRoot(t, "Another Root")
	otherSerial := func() string {
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "other.example"}}).CSRPEM
		arn := s.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &other, Csr: leaf})
		return arn[strings.LastIndex(arn, "/")+1:]
	}()
	proofOf := func(ca, serial string) []byte {
		out, err := runOpenpca(t, "audit", "proof", "--server", s.env.URL, "--ca", ca, "--serial", serial, "--key", s.vkey)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return []byte(out)
	}
	relabelled := func(b []byte, serial string) []byte {
		var p auditlog.InclusionProof
		json.Unmarshal(b, &p)
		p.Serial = serial
		out, _ := json.Marshal(p)
		return out
	}
	for _, tc := range []struct {
		name, want string
		answer     []byte
	}{
		{"another certificate's", "is about the certificate", proofOf(s.caARN, s.serials[1])},
		{"another certificate's, relabelled", "is about the certificate " + s.serials[1], relabelled(proofOf(s.caARN, s.serials[1]), s.serials[0])},
		{"another CA's", "is of the CA " + other, proofOf(other, otherSerial)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/audit-log/inclusion" {
					w.Header().Set("Content-Type", "application/json")
					w.Write(tc.answer)
					return
				}
				http.Error(w, "not here", http.StatusNotFound)
			}))
			defer liar.Close()
			out, err := runOpenpca(t, "audit", "proof", "--server", liar.URL, "--ca", s.caARN, "--serial", s.serials[0], "--key", s.vkey)
			if !errors.Is(err, errVerification) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v; want a failed verification with %q\n%s", err, tc.want, out)
			}
		})
	}
}

// TestAuditProofCRL proves a CRL the CA published from the server and
// from a report's proof file: the log's record must be of it, byte for
// byte. A CRL of the same number and date signed outside the log (here by
// another key: the record is what tells), one the log has not, and a
// server that answers with a proof of something else each fail.
func TestAuditProofCRL(t *testing.T) {
	signAsTestKey(t)
	env := testenv.Start(t)
	caARN := activeCAWithCRLs(t, env)
	dir := t.TempDir()
	logged := filepath.Join(dir, "logged.crl")
	var crl *x509.RevocationList
	for deadline := time.Now().Add(15 * time.Second); crl == nil; time.Sleep(50 * time.Millisecond) {
		der, err := os.ReadFile(filepath.Join(env.Config.DataDir, "s3", "crls", "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl"))
		if err == nil {
			if crl, err = x509.ParseRevocationList(der); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(logged, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CRL: %v", err)
		}
	}
	proofFile := newReport(t, env, caARN) + auditlog.ProofSuffix
	key, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(key)

	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(name string, number int64) string {
		signer := &x509.Certificate{Subject: pkix.Name{CommonName: "Backed Up"}, SubjectKeyId: []byte{1}, KeyUsage: x509.KeyUsageCRLSign}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate},
			signer, otherKey)
		if err != nil {
			t.Fatal(err)
		}
		return fileOf(t, dir, name, der)
	}
	number := crl.Number.Int64()
	forged, unlogged := forge("forged.crl", number), forge("unlogged.crl", number+100)
	for _, from := range [][]string{{"--server", env.URL, "--ca", caARN}, {"--proof", proofFile}} {
		out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", vkey, "--crl", logged}, from...)...)
		var p auditlog.InclusionProof
		if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.CRLNumber != number || len(p.Entries) != 1 ||
			!strings.Contains(p.Entries[0].Record, `"kind":"CRL"`) || p.Check(vkey) != nil {
			t.Errorf("%v: the CRL logged: %v\n%s", from, err, out)
		}
		for _, tc := range []struct{ crl, want string }{
			{forged, "is another CRL"},
			{unlogged, fmt.Sprintf("CRL %d", number+100)},
		} {
			out, err := runOpenpca(t, append([]string{"audit", "proof", "--key", vkey, "--crl", tc.crl}, from...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, %s: %v; want an error with %q\n%s", from, filepath.Base(tc.crl), err, tc.want, out)
			}
		}
	}
	if out, err := runOpenpca(t, "audit", "proof", "--proof", proofFile, "--crl", logged); err == nil || !strings.Contains(err.Error(), "needs --key") {
		t.Errorf("--crl without --key: %v\n%s", err, out)
	}

	// A server that answers with a true proof of another entry: the CSR's.
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "crl.example"}}).CSRPEM
	arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf})
	certProof, err := runOpenpca(t, "audit", "proof", "--server", env.URL, "--ca", caARN, "--serial", arn[strings.LastIndex(arn, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	var p auditlog.InclusionProof
	json.Unmarshal([]byte(certProof), &p)
	relabel := func(serial string) []byte {
		var p auditlog.InclusionProof
		json.Unmarshal([]byte(certProof), &p)
		p.Serial, p.CRLNumber = serial, number
		b, _ := json.Marshal(p)
		return b
	}
	for _, tc := range []struct {
		name, want string
		answer     []byte
	}{
		{"a certificate's", "the proof is about CRL 0", []byte(certProof)},
		{"a certificate's, labelled a CRL's as well", "has its entry alone, and no serial", relabel(p.Serial)},
		{"a certificate's, labelled a CRL's", "is not the signing of CRL", relabel("")},
	} {
		liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(tc.answer)
		}))
		out, err := runOpenpca(t, "audit", "proof", "--server", liar.URL, "--ca", caARN, "--crl", logged, "--key", vkey)
		liar.Close()
		if !errors.Is(err, errVerification) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s proof for a CRL: %v; want a failed verification with %q\n%s", tc.name, err, tc.want, out)
		}
	}
}

// TestAuditProofCRLLeavesOutARevocation: an operator who clears a
// revocation in the database has the CA's next CRLs leave it out, its log
// unchanged. Proven from a report's proof file, such a CRL fails, naming
// the certificate; the CRL before it, which listed it, holds (a
// red-team's finding: every check passed).
func TestAuditProofCRLLeavesOutARevocation(t *testing.T) {
	signAsTestKey(t)
	env := testenv.Start(t)
	ctx := t.Context()
	caARN := activeCAWithCRLs(t, env)
	serialOf := func(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
	var serials []string
	for _, name := range []string{"cleared.example", "kept.example"} {
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}).CSRPEM
		serials = append(serials, serialOf(env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})))
	}
	dir := t.TempDir()
	// crlListing revokes serial and waits for the CA's CRL that lists it,
	// which it writes to a file of its own and returns the path of.
	crlListing := func(serial string) (string, *x509.RevocationList) {
		t.Helper()
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
			CertificateSerial: aws.String(serial), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			env.Clock.CatchUp() // the CRL waits for the second after the last CRL's
			der, err := os.ReadFile(filepath.Join(env.Config.DataDir, "s3", "crls", "crl", serialOf(caARN)+".crl"))
			if err == nil {
				crl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return pki.SerialHex(e.SerialNumber) == serial }) {
					return fileOf(t, dir, serial+".crl", der), crl
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no CRL lists %s: %v", serial, err)
			}
		}
	}
	listed, listedCRL := crlListing(serials[0])
	db := env.DB(t)
	clear := `UPDATE certificates SET revoked_at = NULL, revocation_reason = '', revoke_seq = NULL WHERE serial = ?`
	var saved struct{ at, reason, seq any }
	if err := db.QueryRowContext(ctx, `SELECT revoked_at, revocation_reason, revoke_seq FROM certificates WHERE serial = ?`, serials[0]).Scan(&saved.at, &saved.reason, &saved.seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, clear, serials[0]); err != nil {
		t.Fatal(err)
	}
	leftOut, crl := crlListing(serials[1])
	if len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the CRL after the revocation was cleared lists %d certificates; want the second alone", len(crl.RevokedCertificateEntries))
	}
	// The row put back as it was, for the report (whose rows are checked
	// against the log as they are read).
	if _, err := db.ExecContext(ctx, `UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoke_seq = ? WHERE serial = ?`, saved.at, saved.reason, saved.seq, serials[0]); err != nil {
		t.Fatal(err)
	}
	proofFile := newReport(t, env, caARN) + auditlog.ProofSuffix
	key, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	prove := func(crl string) error {
		_, err := runOpenpca(t, "audit", "proof", "--proof", proofFile, "--key", strings.TrimSpace(key), "--crl", crl)
		return err
	}
	if err := prove(listed); err != nil {
		t.Errorf("the CRL that listed the revocation: %v", err)
	}
	if err := prove(leftOut); !errors.Is(err, errVerification) || !strings.Contains(err.Error(), "leaves out the certificate "+serials[0]) {
		t.Errorf("the CRL that left the revocation out: %v; want a failed verification naming %s", err, serials[0])
	}
	// The report's verification, which has the log and no CRL, finds the
	// CRL that left the revocation out by its record, and only that one.
	out, err := runOpenpca(t, "audit", "verify", "--report", strings.TrimSuffix(proofFile, auditlog.ProofSuffix), "--key", strings.TrimSpace(key))
	want := fmt.Sprintf("signs CRL %v, which lists 1 certificates", crl.Number)
	if !errors.Is(err, errVerification) || !strings.Contains(out, want) || strings.Count(out, "signs CRL") != 1 {
		t.Errorf("the report's verification: %v\n%s\nwant %q alone (CRL %v listed the revocation)", err, out, want, listedCRL.Number)
	}
}

// TestAuditVerifyCRLsOfAClockSetBack: an honest server's CRLs verify
// when its clock runs ahead for one CRL and is set back, and the next
// CRL, dated before the last, is logged but not written (its bucket
// fails): the CRL that follows lists the certificates valid since the
// last CRL written, which is after the last logged (a review found verify
// held a CRL to the last logged, and failed this log).
func TestAuditVerifyCRLsOfAClockSetBack(t *testing.T) {
	signAsTestKey(t)
	var mu sync.Mutex
	var ahead time.Duration
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().UTC().Add(ahead) }
	setAhead := func(d time.Duration) { mu.Lock(); ahead = d; mu.Unlock() }
	env := testenv.Start(t, func(c *app.Config) { c.Now = now })
	ctx := t.Context()
	caARN := activeCAWithCRLs(t, env)
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	db := env.DB(t)
	// await waits until query, of the CA, counts at least n.
	await := func(what, query string, n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var got int
			if err := db.QueryRowContext(ctx, query, caID).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d %s, want %d", got, what, n)
			}
		}
	}
	logged := func(n int) {
		t.Helper()
		await("CRLs logged", `SELECT count(*) FROM key_uses WHERE ca_id = ? AND kind = 'CRL'`, n)
	}
	// written waits for the CRL logged last to be written: a bucket taken
	// away while it is written fails it, and the next is 30 s away.
	written := func() {
		t.Helper()
		await("CRLs written as wanted", `SELECT count(*) FROM crl_publications WHERE ca_id = ? AND owner IS NULL AND published = wanted AND failures = 0`, 1)
	}
	revoke := func() {
		t.Helper()
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "set-back.example"}}).CSRPEM
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
			CertificateSerial: aws.String(arn[strings.LastIndex(arn, "/")+1:]), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
			t.Fatal(err)
		}
	}
	logged(1)
	written()
	setAhead(10 * time.Minute)
	revoke()
	logged(2)
	written()
	setAhead(0)
	bucket := filepath.Join(env.Config.DataDir, "s3", "crls")
	if err := os.Rename(bucket, bucket+".away"); err != nil {
		t.Fatal(err)
	}
	revoke()
	logged(3)
	// Signed and logged, not written: the bucket comes back once its
	// write failed.
	await("failures", `SELECT failures FROM crl_publications WHERE ca_id = ?`, 1)
	if err := os.Rename(bucket+".away", bucket); err != nil {
		t.Fatal(err)
	}
	setAhead(31 * time.Second) // past the retry's wait
	logged(4)
	_, report, err := awaitReport(t, env, caARN, types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	key, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", strings.TrimSpace(key)); err != nil {
		t.Errorf("an honest server's CRLs: %v\n%s", err, out)
	}
}

// TestAuditProofOCSP: an OCSP answer a relying party kept is checked
// against a report's log: what it says must be what the log says. An
// operator who clears a revocation in the database has the answer say
// "good" of a certificate the log revoked, which fails: its responder's,
// or an ML-DSA CA's, which signs its answers itself, and whose signature
// Go cannot check (the log's record of the answer shows that the CA
// signed it). The honest answers (good, then revoked, and unknown of a
// serial never issued) hold, and one signed by a subscriber's key in a
// responder's place fails (a red-team's finding: nothing read an answer
// against the log).
func TestAuditProofOCSP(t *testing.T) {
	signAsTestKey(t)
	env := testenv.Start(t)
	key, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg     types.KeyAlgorithm
		signing types.SigningAlgorithm
	}{
		{types.KeyAlgorithmEcPrime256v1, types.SigningAlgorithmSha256withecdsa},
		{types.KeyAlgorithmMlDsa65, types.SigningAlgorithmMlDsa65},
	} {
		t.Run(string(tc.alg), func(t *testing.T) { testAuditProofOCSP(t, env, strings.TrimSpace(key), tc.alg, tc.signing) })
	}
}

func testAuditProofOCSP(t *testing.T, env *testenv.Env, key string, alg types.KeyAlgorithm, signing types.SigningAlgorithm) {
	ctx := t.Context()
	created, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(alg, "OCSP Proven"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration:           &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	caARN := *created.CertificateAuthorityArn
	root := env.ActivateRoot(t, caARN)
	dir := t.TempDir()
	issuer := fileOf(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
	leafKey := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ocsp.example"}})
	leaf, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leafKey.CSRPEM, SigningAlgorithm: signing}))
	serial := pki.SerialHex(leaf.SerialNumber)
	// ask keeps the answer about the certificate of serial n in a file.
	ask := func(name string, n *big.Int) string {
		t.Helper()
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: n}, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Post(env.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		der, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fileOf(t, dir, name, der)
	}
	good := ask("good.der", leaf.SerialNumber)
	unknown := ask("unknown.der", big.NewInt(0xbad))
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(serial), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	revoked := ask("revoked.der", leaf.SerialNumber)
	// The revocation cleared from the database (and the answer it kept),
	// an answer signed then, and the row put back for the report.
	env.Clock.Advance(10 * time.Minute)
	db := env.DB(t)
	var saved struct{ at, reason, seq any }
	if err := db.QueryRowContext(ctx, `SELECT revoked_at, revocation_reason, revoke_seq FROM certificates WHERE serial = ?`, serial).Scan(&saved.at, &saved.reason, &saved.seq); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE certificates SET revoked_at = NULL, revocation_reason = '', revoke_seq = NULL WHERE serial = ?`, `DELETE FROM ocsp_responses WHERE serial = ?`} {
		if _, err := db.ExecContext(ctx, q, serial); err != nil {
			t.Fatal(err)
		}
	}
	lie := ask("lie.der", leaf.SerialNumber)
	if _, err := db.ExecContext(ctx, `UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoke_seq = ? WHERE serial = ?`, saved.at, saved.reason, saved.seq, serial); err != nil {
		t.Fatal(err)
	}
	proofFile := newReport(t, env, caARN) + auditlog.ProofSuffix
	cases := []struct{ answer, want string }{
		{good, "(good, "},
		{revoked, "(revoked, "},
		{unknown, "(unknown, "},
		{lie, "says the certificate " + serial + " is good; the log revoked it at"},
	}
	if alg == types.KeyAlgorithmEcPrime256v1 {
		// The subscriber's key signs an answer, its certificate in it.
		now := env.Clock.Now()
		der, err := ocsp.CreateResponse(root, leaf, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, ProducedAt: now, ThisUpdate: now,
			NextUpdate: now.Add(time.Hour), Certificate: leaf}, leafKey.Key)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ answer, want string }{fileOf(t, dir, "subscriber.der", der), "is no OCSP responder of the CA's"})
	}
	for _, tc := range cases {
		out, err := runOpenpca(t, "audit", "proof", "--proof", proofFile, "--key", key, "--issuer", issuer, "--ocsp", tc.answer, "--ca", caARN)
		if err != nil {
			out = err.Error()
		}
		if !strings.Contains(out, tc.want) || (tc.want[0] != '(') != errors.Is(err, errVerification) {
			t.Errorf("%s: %s; want %q", filepath.Base(tc.answer), out, tc.want)
		}
	}
	if out, err := runOpenpca(t, "audit", "proof", "--proof", proofFile, "--key", key, "--issuer", issuer, "--ocsp", good, "--ca", "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"); !errors.Is(err, errVerification) || !strings.Contains(err.Error(), "is of the CA") {
		t.Errorf("the proof file of another CA: %v\n%s", err, out)
	}
}

// TestAuditProofOCSPNamesTheCA: an OCSP answer signed by the CA of
// --issuer, but about a certificate of another CA, which its CertID names
// by the hashes of that CA's name and key, is refused; one whose CertID
// names the CA passes that check, to go on to the proof file's.
func TestAuditProofOCSPNamesTheCA(t *testing.T) {
	root := testenv.NewExternalRoot(t, "Issuing CA")
	other := testenv.NewExternalRoot(t, "Issuing CA") // of another key
	dir := t.TempDir()
	issuerPath := fileOf(t, dir, "ca.pem", root.PEM)
	for _, tc := range []struct {
		name  string
		about *x509.Certificate // the CA the answer's CertID names
		ok    bool
	}{
		{"the CA", root.Cert, true},
		{"another name", root.Sign(t, "Other CA", root.Key.Public(), root.Cert.NotAfter).Cert, false},
		{"another key", other.Cert, false},
	} {
		now := time.Now()
		der, err := ocsp.CreateResponse(tc.about, root.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(0x1234), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, root.Key)
		if err != nil {
			t.Fatal(err)
		}
		answer := fileOf(t, dir, "answer.der", der)
		_, err = runOpenpca(t, "audit", "proof", "--proof", filepath.Join(dir, "none.proof"), "--key", "none", "--issuer", issuerPath, "--ocsp", answer)
		if refused := errors.Is(err, errVerification) && strings.Contains(err.Error(), "about a certificate of another CA than that of "+issuerPath); refused == tc.ok || err == nil {
			t.Errorf("an answer that names %s: %v", tc.name, err)
		}
	}
}

// fileOf writes b to the file name in dir, and returns its path.
func fileOf(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signAsTestKey has the commands this test runs sign their requests as
// the test server's access key, through the standard AWS configuration.
func signAsTestKey(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// rewriteLog replaces a CA's log in the database with what change makes
// of its records, hashes and all (auditlogtest.RewriteLog).
func rewriteLog(t *testing.T, db *sql.DB, path, caID string, change func([][]byte) [][]byte) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := auditlogtest.RewriteLog(t.Context(), db, store, caID, change); err != nil {
		t.Fatal(err)
	}
}

// TestAuditEscapesServerText: what a server says reaches the auditor's
// terminal escaped, even signed by its audit key: the server may be the
// party audited, and control characters (U+009B starts an escape sequence
// on some terminals) or bidi overrides (U+202E) in a key's name or a CA's
// ARN would rewrite or disguise what the auditor reads.
func TestAuditEscapesServerText(t *testing.T) {
	signAsTestKey(t)
	skey, vkey, err := note.GenerateKey(rand.Reader, auditlog.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	_, hostileKey, err := note.GenerateKey(rand.Reader, "openpca\u009b2J\u202eaudit")
	if err != nil {
		t.Fatal(err)
	}
	signed := func(c auditlog.Checkpoint) string {
		b, err := c.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A region is any text but a colon: the ARN is valid, and its log is
	// signed by the key the auditor trusts.
	const (
		asked   = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"
		hostile = "arn:aws:acm-pca:us-east-1\u009b2J\u202e:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"
		escaped = `arn:aws:acm-pca:us-east-1\u009b2J\u202e:111122223333`
	)
	record, err := json.Marshal(openpca.KeyUseRecord{Kind: openpca.KeyUseIssue, CertificateAuth: hostile, At: "2026-01-02T03:04:05Z",
		Account: "111122223333", CertificateArn: hostile + "/certificate/0a", Serial: "0a"})
	if err != nil {
		t.Fatal(err)
	}
	proof := auditlog.InclusionProof{CertificateAuthorityArn: hostile, Serial: "0a", Entries: []auditlog.ProvenEntry{{Index: 0, Record: string(record)}},
		Checkpoint: signed(auditlog.Checkpoint{Origin: auditlog.Origin(hostile), Size: 1, Root: tlog.RecordHash(record), Time: time.Now()})}
	proofJSON, _ := json.Marshal(proof)
	// Of another CA than its checkpoint's log: Check's error names both.
	elsewhere := proof
	elsewhere.CertificateAuthorityArn = strings.Replace(hostile, "us-east-1", "eu-west-1", 1)
	elsewhereJSON, _ := json.Marshal(elsewhere)

	// A report of an empty log, whose proof file is of the hostile ARN.
	report := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(report, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty, _ := tlog.TreeHash(0, nil)
	var proofFile bytes.Buffer
	if err := auditlogtest.WriteProof(&proofFile, &auditlog.ProofHeader{Format: auditlog.ProofFormat, CertificateAuthorityArn: hostile, ReportFormat: "JSON",
		Checkpoint: signed(auditlog.Checkpoint{Origin: auditlog.Origin(hostile), Size: 0, Root: empty, Time: time.Now()})},
		func(func([]byte) error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report+auditlog.ProofSuffix, proofFile.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	var answer []byte // the liar's answer to any request
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(answer) }))
	defer liar.Close()
	for _, tc := range []struct {
		name   string
		answer []byte
		args   []string
		want   string // in what is printed, or in the error
	}{
		{"public key", []byte(hostileKey), []string{"public-key", "--server", liar.URL}, `openpca\u009b2J\u202eaudit+`},
		{"proof", proofJSON, []string{"proof", "--server", liar.URL, "--ca", asked, "--serial", "0a"}, `"certificateAuthorityArn": "` + escaped},
		{"proof of another CA", proofJSON, []string{"proof", "--server", liar.URL, "--ca", asked, "--serial", "0a", "--key", vkey}, "the proof is of the CA " + escaped},
		{"proof that fails", elsewhereJSON, []string{"proof", "--server", liar.URL, "--ca", asked, "--serial", "0a", "--key", vkey}, "not of arn:aws:acm-pca:eu-west-1\\u009b"},
		{"verified report", nil, []string{"verify", "--report", report, "--key", vkey}, "entries of the key-use log of " + escaped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.answer
			out, err := runOpenpca(t, append([]string{"audit"}, tc.args...)...)
			if err != nil {
				out += err.Error()
			}
			if !strings.Contains(out, tc.want) || strings.ContainsAny(out, "\u009b\u202e") {
				t.Errorf("got %q, want %q, escaped", out, tc.want)
			}
		})
	}
	// The proof printed is ASCII, and still the proof.
	answer = proofJSON
	out, err := runOpenpca(t, "audit", "proof", "--server", liar.URL, "--ca", asked, "--serial", "0a")
	var printed auditlog.InclusionProof
	if err != nil || strings.ContainsFunc(out, func(r rune) bool { return r >= utf8.RuneSelf }) || json.Unmarshal([]byte(out), &printed) != nil || printed.CertificateAuthorityArn != hostile {
		t.Errorf("the proof printed (%v) is not ASCII, or not the proof: %s", err, out)
	}
}

// TestASCIIJSON: JSON printed for an auditor is ASCII, and the same JSON.
func TestASCIIJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{"csi \u009b2J", `"csi \u009b2J"`},
		{"bidi \u202egnp.exe", `"bidi \u202egnp.exe"`},
		{"del \x7f", `"del \u007f"`},
		{"é", `"\u00e9"`},
		{"emoji 😀", `"emoji \ud83d\ude00"`},
		{"esc \x1b <", `"esc \u001b \u003c"`}, // escaped by encoding/json already
	} {
		b, err := json.Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got := asciiJSON(b)
		var back string
		if string(got) != tc.want || json.Unmarshal(got, &back) != nil || back != tc.in {
			t.Errorf("asciiJSON(%q) = %s (read back as %q), want %s", b, got, back, tc.want)
		}
	}
}
