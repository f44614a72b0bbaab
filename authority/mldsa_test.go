package authority_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// interopObject is an object for interop/mldsa/verify.mjs to check.
type interopObject struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"` // certificate, crl, ocsp
	DER          string `json:"der"`
	Issuer       string `json:"issuer"`
	SubjectMLDSA bool   `json:"subjectMLDSA,omitempty"`
}

// TestMLDSA: for each ML-DSA scheme, a root CA signs its own certificate
// with the RootCACertificate template, and a subordinate CA of the same
// scheme is imported under it; the subordinate issues end-entity
// certificates for EC, RSA and ML-DSA keys, revokes one, publishes CRLs and
// answers OCSP, all signed with ML-DSA, and its audit report verifies. A
// signing algorithm of another family is refused. Every ML-DSA signature
// is checked again by @noble/post-quantum over asn1js (interop/mldsa), and
// OpenSSL parses the certificates.
func TestMLDSA(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	dir := t.TempDir()
	var manifest []interopObject
	write := func(name string, der []byte) string {
		path := filepath.Join(dir, name+".der")
		if err := os.WriteFile(path, der, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, alg := range []types.KeyAlgorithm{types.KeyAlgorithmMlDsa44, types.KeyAlgorithmMlDsa65, types.KeyAlgorithmMlDsa87} {
		sigAlg := types.SigningAlgorithm(alg)
		created, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(alg, string(alg)+" Root"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot})
		if err != nil {
			t.Fatal(err)
		}
		rootARN := *created.CertificateAuthorityArn
		root := env.ActivateRoot(t, rootARN)
		rootPath := write(string(alg)+"-root", root.Raw)
		manifest = append(manifest, interopObject{Name: string(alg) + " root", Kind: "certificate", DER: rootPath, Issuer: rootPath, SubjectMLDSA: true})

		// The subordinate, with CRLs and OCSP.
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(alg, string(alg)+" Issuing"), CertificateAuthorityType: types.CertificateAuthorityTypeSubordinate,
			RevocationConfiguration: &types.RevocationConfiguration{
				CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")},
				OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
			}})
		if err != nil {
			t.Fatal(err)
		}
		subARN := *out.CertificateAuthorityArn
		csr, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &subARN})
		if err != nil {
			t.Fatal(err)
		}
		subCertARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: []byte(*csr.Csr), SigningAlgorithm: sigAlg,
			TemplateArn: aws.String("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"),
			Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(5)}})
		sub, _ := env.Certificate(t, rootARN, subCertARN)
		if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &subARN,
			Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sub.Raw}), CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})}); err != nil {
			t.Fatalf("importing the %s subordinate: %v", alg, err)
		}
		subPath := write(string(alg)+"-sub", sub.Raw)
		manifest = append(manifest, interopObject{Name: string(alg) + " subordinate", Kind: "certificate", DER: subPath, Issuer: rootPath, SubjectMLDSA: true})

		// End-entity certificates for three families of keys.
		mlKey, err := pki.GenerateKey(openpca.KeyAlgorithmMlDsa65)
		if err != nil {
			t.Fatal(err)
		}
		mlCSR, err := pki.CreateCSR(mlKey, &openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmMlDsa65,
			SigningAlgorithm: openpca.SigningAlgorithmMlDsa65, Subject: &openpca.ASN1Subject{CommonName: "ml-dsa.example"}})
		if err != nil {
			t.Fatal(err)
		}
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		rsaCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "rsa.example"}}, rsaKey)
		csrs := map[string][]byte{
			"EC":     testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec.example"}}).CSRPEM,
			"RSA":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: rsaCSR}),
			"ML-DSA": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: mlCSR}),
		}
		var leaves []*x509.Certificate
		for _, family := range []string{"EC", "RSA", "ML-DSA"} {
			arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subARN, Csr: csrs[family], SigningAlgorithm: sigAlg})
			leaf, _ := env.Certificate(t, subARN, arn)
			if err := pki.CheckSignatureFrom(leaf, sub); err != nil {
				t.Errorf("the %s leaf of the %s subordinate: %v", family, alg, err)
			}
			manifest = append(manifest, interopObject{Name: fmt.Sprintf("%s leaf (%s key)", alg, family), Kind: "certificate",
				DER: write(fmt.Sprintf("%s-leaf-%s", alg, family), leaf.Raw), Issuer: subPath, SubjectMLDSA: family == "ML-DSA"})
			leaves = append(leaves, leaf)
		}
		_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subARN, Csr: csrs["EC"],
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
		testenv.WantError(t, err, "InvalidArgsException")

		// Revocation: the CRL lists the revoked certificate, and OCSP
		// answers for both.
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &subARN,
			CertificateSerial: aws.String(leaves[0].SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
			t.Fatal(err)
		}
		subID := subARN[strings.LastIndex(subARN, "/")+1:]
		var crlDER []byte
		for number := int64(0); ; {
			crl, der := waitCRL(t, number, func() ([]byte, error) {
				return os.ReadFile(filepath.Join(env.Config.DataDir, "s3", "crls", "crl", subID+".crl"))
			})
			if number = crl.Number.Int64(); len(crl.RevokedCertificateEntries) == 1 && crl.RevokedCertificateEntries[0].SerialNumber.Cmp(leaves[0].SerialNumber) == 0 {
				crlDER = der
				break
			}
		}
		manifest = append(manifest, interopObject{Name: string(alg) + " CRL", Kind: "crl", DER: write(string(alg)+"-crl", crlDER), Issuer: subPath})
		for i, want := range []int{ocsp.Revoked, ocsp.Good} {
			der, err := post(env.URL+"/ocsp", ocspRequest(t, sub, leaves[i].SerialNumber))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponse(der, nil) // the library cannot check an ML-DSA signature; verify.mjs does
			if err != nil || resp.Status != want || resp.SerialNumber.Cmp(leaves[i].SerialNumber) != 0 {
				t.Errorf("the %s OCSP answer for leaf %d: %+v, %v", alg, i, resp, err)
			}
			manifest = append(manifest, interopObject{Name: fmt.Sprintf("%s OCSP answer (%s)", alg, ocspStatusNames(want)), Kind: "ocsp",
				DER: write(fmt.Sprintf("%s-ocsp-%d", alg, i), der), Issuer: subPath})
		}

		// The audit report over the ML-DSA CA verifies.
		rep, err := createReport(env, subARN, "crls", types.AuditReportResponseFormatJson)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitReport(t, env, subARN, *rep.AuditReportId); err != nil {
			t.Fatal(err)
		}
		report, err := os.Open(filepath.Join(env.Config.DataDir, "s3", "crls", *rep.S3Key))
		if err != nil {
			t.Fatal(err)
		}
		proof, err := os.Open(filepath.Join(env.Config.DataDir, "s3", "crls", *rep.S3Key+".proof.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if v := audit.Verify(report, proof, publicKey(t, env)); len(v.Problems) > 0 || v.Rows != 3 {
			t.Errorf("the %s CA's audit report: %d rows, %v", alg, v.Rows, v.Problems)
		}
		report.Close()
		proof.Close()

		if openssl, err := exec.LookPath("openssl"); err == nil {
			for _, path := range []string{rootPath, subPath} {
				if out, err := exec.Command(openssl, "x509", "-inform", "DER", "-in", path, "-noout", "-text").CombinedOutput(); err != nil {
					t.Errorf("openssl x509 does not parse %s: %v\n%s", path, err, out)
				}
			}
		}
	}

	path := filepath.Join(dir, "manifest.json")
	b, _ := json.Marshal(manifest)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	interop, _ := filepath.Abs("../interop/mldsa")
	if _, err := os.Stat(filepath.Join(interop, "node_modules")); err != nil && os.Getenv("CI") == "" {
		t.Skipf("interop/mldsa has no node_modules: run npm ci there to check the signatures with @noble/post-quantum")
	}
	out, err := exec.Command("node", filepath.Join(interop, "verify.mjs"), path).CombinedOutput()
	if err != nil || strings.Count(string(out), "\nok ")+1 != len(manifest) || !strings.HasPrefix(string(out), "ok ") {
		t.Errorf("interop/mldsa/verify.mjs: %v\n%s", err, out)
	}
}

func ocspStatusNames(s int) string {
	return map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[s]
}
