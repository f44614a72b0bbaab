package authority_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
)

// t61CSR is a CSR whose subject is one common name, a T61String of the
// bytes b (Latin-1, as Go's x509 and OpenSSL read T61String).
func t61CSR(t *testing.T, b []byte) []byte {
	t.Helper()
	raw, err := asn1.Marshal(pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: asn1.RawValue{Tag: asn1.TagT61String, Bytes: b}}}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: raw}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestAuditReportT61Subject: a certificate whose common name is a
// T61String with a byte past ASCII ("café.example" in Latin-1, which Go's
// x509 and OpenSSL read as such, and which OpenPCA issues) is listed with
// that name, in JSON and CSV, not with U+FFFD in place of the letter: two
// certificates of different names ("café", "cafè") must not read alike.
func TestAuditReportT61Subject(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "T61 Root")
	dir := makeLocalBucket(t, env, "reports")
	want := map[string]bool{}
	// The third is UTF-8's bytes for café, which Go and OpenSSL read as
	// Latin-1 too: cafÃ©.
	for _, name := range [][]byte{[]byte("caf\xe9.example"), []byte("caf\xe8.example"), []byte("caf\xc3\xa9.example")} {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: t61CSR(t, name)})
		c, _ := env.Certificate(t, caARN, arn)
		want["CN="+c.Subject.CommonName] = true // Go reads café.example, cafè.example
	}
	for _, format := range []types.AuditReportResponseFormat{types.AuditReportResponseFormatJson, types.AuditReportResponseFormatCsv} {
		out, err := createReport(env, caARN, "reports", format)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, *out.S3Key))
		if err != nil {
			t.Fatal(err)
		}
		var subjects []string
		if format == types.AuditReportResponseFormatJson {
			var rows []map[string]string
			if err := json.Unmarshal(b, &rows); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				subjects = append(subjects, r["subject"])
			}
		} else {
			recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs[1:] {
				subjects = append(subjects, r[4])
			}
		}
		got := map[string]bool{}
		for _, s := range subjects[1:] { // the root's own row first
			got[s] = true
		}
		for s := range want {
			if !got[s] {
				t.Errorf("%s report: subjects %q, want %q among them", format, subjects[1:], s)
			}
		}
		proof, err := os.ReadFile(filepath.Join(dir, *out.S3Key+auditlog.ProofSuffix))
		if err != nil {
			t.Fatal(err)
		}
		if v := audit.Verify(bytes.NewReader(b), bytes.NewReader(proof), publicKey(t, env)); len(v.Problems) > 0 {
			t.Errorf("%s report does not verify: %v", format, v.Problems)
		}
		env.Clock.Advance(31 * 60e9)
	}
}
