package authority_test

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
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
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
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

// hierarchy is a root CA and a subordinate CA of one key algorithm, made
// through the API as a user would: the root's self-signed certificate with
// RootCACertificate/V1, the subordinate's signed by the root and imported
// with its chain. The subordinate issued a certificate for each CSR it was
// given, revoked the first, published a CRL that lists it, and answered
// OCSP for the first two.
type hierarchy struct {
	root, sub *x509.Certificate
	leaves    []*x509.Certificate // in the order of the CSRs
	crl       []byte
	ocsp      [][]byte // for leaves[0], revoked, and leaves[1], good
}

// newHierarchy builds a hierarchy of alg in env, which must have a local
// bucket "crls", and checks what every key algorithm must do: the
// certificates verify, a signing algorithm of another family is refused,
// the CRL and OCSP say what was revoked, and the audit report verifies.
func newHierarchy(t *testing.T, env *testenv.Env, alg types.KeyAlgorithm, csrs ...[]byte) *hierarchy {
	t.Helper()
	h := &hierarchy{}
	cfg := testenv.Config(alg, string(alg)+" Root")
	sigAlg := cfg.SigningAlgorithm
	created, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: cfg, CertificateAuthorityType: types.CertificateAuthorityTypeRoot})
	if err != nil {
		t.Fatal(err)
	}
	rootARN := *created.CertificateAuthorityArn
	h.root = env.ActivateRoot(t, rootARN)
	if err := pki.CheckSignatureFrom(h.root, h.root); err != nil {
		t.Errorf("the %s root's self-signature: %v", alg, err)
	}

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
	partition := rootARN[len("arn:"):strings.Index(rootARN, ":acm-pca:")]
	subCertARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: []byte(*csr.Csr), SigningAlgorithm: sigAlg,
		TemplateArn: aws.String("arn:" + partition + ":acm-pca:::template/SubordinateCACertificate_PathLen0/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(5)}})
	h.sub, _ = env.Certificate(t, rootARN, subCertARN)
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &subARN,
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.sub.Raw}), CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.root.Raw})}); err != nil {
		t.Fatalf("importing the %s subordinate: %v", alg, err)
	}

	for i, csr := range csrs {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subARN, Csr: csr, SigningAlgorithm: sigAlg})
		leaf, _ := env.Certificate(t, subARN, arn)
		if err := pki.CheckSignatureFrom(leaf, h.sub); err != nil {
			t.Errorf("leaf %d of the %s subordinate: %v", i, alg, err)
		}
		h.leaves = append(h.leaves, leaf)
	}
	_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subARN, Csr: csrs[0],
		SigningAlgorithm: types.SigningAlgorithmSha256withrsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
	testenv.WantError(t, err, "InvalidArgsException")

	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &subARN,
		CertificateSerial: aws.String(h.leaves[0].SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	h.crl = crlListing(t, env, "crls", subARN, h.leaves[0].SerialNumber)
	for i, want := range []int{ocsp.Revoked, ocsp.Good} {
		der, err := post(env.URL+"/ocsp", ocspRequest(t, h.sub, h.leaves[i].SerialNumber))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ocsp.ParseResponse(der, nil) // the library checks no ML-DSA or SM2 signature; the callers do
		if err != nil || resp.Status != want || resp.SerialNumber.Cmp(h.leaves[i].SerialNumber) != 0 {
			t.Errorf("the %s OCSP answer for leaf %d: %+v, %v", alg, i, resp, err)
		}
		h.ocsp = append(h.ocsp, der)
	}

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
	defer report.Close()
	proof, err := os.Open(filepath.Join(env.Config.DataDir, "s3", "crls", *rep.S3Key+auditlog.ProofSuffix))
	if err != nil {
		t.Fatal(err)
	}
	defer proof.Close()
	if v := audit.Verify(report, proof, publicKey(t, env)); len(v.Problems) > 0 || v.Rows != len(csrs) {
		t.Errorf("the %s CA's audit report: %d rows, %v", alg, v.Rows, v.Problems)
	}
	return h
}

// csrPEM makes a PEM CSR of key for name.
func csrPEM(t *testing.T, key crypto.Signer, name string) []byte {
	t.Helper()
	der, err := pki.CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestMLDSA: for each ML-DSA scheme, a hierarchy whose CAs sign with it,
// issuing for EC, RSA and ML-DSA keys. Every ML-DSA signature in it
// (certificates, CRL, OCSP answers) is checked again by @noble/post-quantum
// over asn1js (interop/mldsa), and OpenSSL parses the certificates.
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
	mlKey, err := pki.GenerateKey(openpca.KeyAlgorithmMlDsa65)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	families := []string{"EC", "RSA", "ML-DSA"}
	csrs := [][]byte{testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec.example"}}).CSRPEM,
		csrPEM(t, rsaKey, "rsa.example"), csrPEM(t, mlKey, "ml-dsa.example")}
	for _, alg := range []types.KeyAlgorithm{types.KeyAlgorithmMlDsa44, types.KeyAlgorithmMlDsa65, types.KeyAlgorithmMlDsa87} {
		h := newHierarchy(t, env, alg, csrs...)
		rootPath, subPath := write(string(alg)+"-root", h.root.Raw), write(string(alg)+"-sub", h.sub.Raw)
		manifest = append(manifest,
			interopObject{Name: string(alg) + " root", Kind: "certificate", DER: rootPath, Issuer: rootPath, SubjectMLDSA: true},
			interopObject{Name: string(alg) + " subordinate", Kind: "certificate", DER: subPath, Issuer: rootPath, SubjectMLDSA: true},
			interopObject{Name: string(alg) + " CRL", Kind: "crl", DER: write(string(alg)+"-crl", h.crl), Issuer: subPath})
		for i, leaf := range h.leaves {
			manifest = append(manifest, interopObject{Name: fmt.Sprintf("%s leaf (%s key)", alg, families[i]), Kind: "certificate",
				DER: write(fmt.Sprintf("%s-leaf-%d", alg, i), leaf.Raw), Issuer: subPath, SubjectMLDSA: families[i] == "ML-DSA"})
		}
		for i, der := range h.ocsp {
			manifest = append(manifest, interopObject{Name: fmt.Sprintf("%s OCSP answer %d", alg, i), Kind: "ocsp",
				DER: write(fmt.Sprintf("%s-ocsp-%d", alg, i), der), Issuer: subPath})
		}
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

// TestSM2: in a China region, a hierarchy whose CAs sign with SM2 and SM3,
// issuing for EC, RSA and SM2 keys. OpenSSL, which knows SM2, checks the
// chain of each leaf, the CRL and the OCSP answers.
func TestSM2(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.Region = "cn-north-1" })
	env.Client = acmpca.New(env.Client.Options(), func(o *acmpca.Options) { o.Region = "cn-north-1" })
	makeLocalBucket(t, env, "crls")
	dir := t.TempDir()
	smKey, err := pki.GenerateKey(openpca.KeyAlgorithmSm2)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	h := newHierarchy(t, env, types.KeyAlgorithmSm2, testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec.example"}}).CSRPEM,
		csrPEM(t, rsaKey, "rsa.example"), csrPEM(t, smKey, "sm2.example"))
	if got := pki.KeyAlgorithmOf(h.leaves[2].PublicKey); got != openpca.KeyAlgorithmSm2 {
		t.Errorf("the SM2 leaf's key is %s", got)
	}
	for _, c := range []*x509.Certificate{h.root, h.sub, h.leaves[0]} {
		if algID, _, _ := pki.SignatureParts(c.Raw); !bytes.Equal(algID, []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75}) {
			t.Errorf("%s is signed with %x, not SM2 with SM3 (1.2.156.10197.1.501)", c.Subject, algID)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl to check SM2 signatures independently")
	}
	// OpenSSL 3.0 checks each signature (with SM3 and the default signer
	// identity) at the level of its SM2 primitive: its chain verifier
	// handles SM2 keys below a trust anchor badly.
	keys := map[*x509.Certificate]string{}
	for name, c := range map[string]*x509.Certificate{"root": h.root, "sub": h.sub} {
		writePEM(t, dir, name+".pem", "CERTIFICATE", c.Raw)
		out, ok := openssl(t, dir, "x509", "-in", name+".pem", "-noout", "-pubkey", "-out", name+".pub")
		if !ok {
			t.Fatalf("openssl x509 -pubkey: %s", out)
		}
		keys[c] = name + ".pub"
	}
	check := func(what string, tbs, sig []byte, issuer *x509.Certificate) {
		t.Helper()
		name := strings.ReplaceAll(what, " ", "-")
		if err := os.WriteFile(filepath.Join(dir, name+".tbs"), tbs, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".sig"), sig, 0o600); err != nil {
			t.Fatal(err)
		}
		out, ok := openssl(t, dir, "pkeyutl", "-verify", "-pubin", "-inkey", keys[issuer], "-rawin", "-digest", "sm3",
			"-pkeyopt", "distid:1234567812345678", "-in", name+".tbs", "-sigfile", name+".sig")
		if !ok || !strings.Contains(out, "Signature Verified Successfully") {
			t.Errorf("OpenSSL does not verify the SM2 signature of %s:\n%s", what, out)
		}
	}
	certs := map[string]*x509.Certificate{"root": h.root, "subordinate": h.sub}
	for i, leaf := range h.leaves {
		certs[fmt.Sprintf("leaf %d", i)] = leaf
	}
	for what, c := range certs {
		_, sig, err := pki.SignatureParts(c.Raw)
		if err != nil {
			t.Fatal(err)
		}
		issuer := h.sub
		if c == h.root || c == h.sub {
			issuer = h.root
		}
		check(what, c.RawTBSCertificate, sig, issuer)
	}
	crl, err := x509.ParseRevocationList(h.crl)
	if err != nil {
		t.Fatal(err)
	}
	check("the CRL", crl.RawTBSRevocationList, crl.Signature, h.sub)
	for i, der := range h.ocsp {
		resp, err := ocsp.ParseResponse(der, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("OCSP answer %d", i), resp.TBSResponseData, resp.Signature, h.sub)
	}
	// A signature OpenSSL must refuse: the check can fail.
	forged := bytes.Clone(h.leaves[0].RawTBSCertificate)
	forged[len(forged)-1] ^= 1
	_, sig, _ := pki.SignatureParts(h.leaves[0].Raw)
	os.WriteFile(filepath.Join(dir, "forged.tbs"), forged, 0o600)
	os.WriteFile(filepath.Join(dir, "forged.sig"), sig, 0o600)
	if out, ok := openssl(t, dir, "pkeyutl", "-verify", "-pubin", "-inkey", keys[h.sub], "-rawin", "-digest", "sm3",
		"-pkeyopt", "distid:1234567812345678", "-in", "forged.tbs", "-sigfile", "forged.sig"); ok && strings.Contains(out, "Verified Successfully") {
		t.Errorf("OpenSSL verified a forged SM2 signature:\n%s", out)
	}
}

// TestMLDSAKeyUsage: a certificate of an ML-DSA key cannot have a usage
// RFC 9881 forbids (it only signs), asked for through ApiPassthrough
// (InvalidArgsException), by the CSR of a CSR-passthrough template
// (MalformedCSRException), or in a CA's CsrExtensions; an EC key's
// passed-through encipherment is issued, as AWS issues it. No key's
// certificate has a key usage of none of RFC 5280's usages, passed
// through by the CSR or as a custom extension.
func TestMLDSAKeyUsage(t *testing.T) {
	env := testenv.Start(t)
	root := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Root")
	env.ActivateRoot(t, root)
	mlKey, err := pki.GenerateKey(openpca.KeyAlgorithmMlDsa65)
	if err != nil {
		t.Fatal(err)
	}
	csr := func(key crypto.Signer, usage pkix.Extension) []byte {
		der, err := pki.CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}, ExtraExtensions: []pkix.Extension{usage}})
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	usage := func(ku types.KeyUsage) pkix.Extension {
		ext, err := pki.KeyUsageExtension(&openpca.KeyUsage{DigitalSignature: ku.DigitalSignature, KeyEncipherment: ku.KeyEncipherment, KeyAgreement: ku.KeyAgreement, DecipherOnly: ku.DecipherOnly})
		if err != nil {
			t.Fatal(err)
		}
		return ext
	}
	signs := types.KeyUsage{DigitalSignature: true}
	none := pkix.Extension{Id: pki.OIDKeyUsage, Critical: true, Value: []byte{3, 1, 0}}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noneAsCustom := []types.CustomExtension{{ObjectIdentifier: aws.String("2.5.29.15"), Value: aws.String("AwEA"), Critical: aws.Bool(true)}}
	for _, tc := range []struct {
		name     string
		template string
		csr      []byte
		api      *types.KeyUsage
		code     string // "": issued
		custom   []types.CustomExtension
		why      string // what the refusal names, RFC 9881 if ""
	}{
		{"CSR, no usage, ML-DSA key", "BlankEndEntityCertificate_CSRPassthrough/V1", csr(mlKey, none), nil, "MalformedCSRException", nil, "RFC 5280"},
		{"CSR, no usage, EC key", "BlankEndEntityCertificate_CSRPassthrough/V1", csr(ecKey, none), nil, "MalformedCSRException", nil, "RFC 5280"},
		{"custom extension, no usage", "BlankEndEntityCertificate_APIPassthrough/V1", csr(ecKey, usage(signs)), nil, "InvalidArgsException", noneAsCustom, "RFC 5280"},
		{"API, signing", "BlankEndEntityCertificate_APIPassthrough/V1", csr(mlKey, usage(signs)), &signs, "", nil, ""},
		{"API, key encipherment", "BlankEndEntityCertificate_APIPassthrough/V1", csr(mlKey, usage(signs)), &types.KeyUsage{DigitalSignature: true, KeyEncipherment: true}, "InvalidArgsException", nil, ""},
		{"API, decipher only", "BlankEndEntityCertificate_APIPassthrough/V1", csr(mlKey, usage(signs)), &types.KeyUsage{KeyAgreement: true, DecipherOnly: true}, "InvalidArgsException", nil, ""},
		{"API over the CSR's", "BlankEndEntityCertificate_APICSRPassthrough/V1", csr(mlKey, usage(types.KeyUsage{KeyAgreement: true})), &signs, "", nil, ""},
		{"CSR, key agreement", "BlankEndEntityCertificate_CSRPassthrough/V1", csr(mlKey, usage(types.KeyUsage{DigitalSignature: true, KeyAgreement: true})), nil, "MalformedCSRException", nil, ""},
		{"EC key, key encipherment", "BlankEndEntityCertificate_APIPassthrough/V1", testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec.example"}}).CSRPEM,
			&types.KeyUsage{DigitalSignature: true, KeyEncipherment: true}, "", nil, ""},
		{"a template's own", "EndEntityCertificate/V1", csr(mlKey, usage(types.KeyUsage{KeyEncipherment: true})), nil, "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &acmpca.IssueCertificateInput{CertificateAuthorityArn: &root, Csr: tc.csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
				TemplateArn: aws.String("arn:aws:acm-pca:::template/" + tc.template), Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}}
			if tc.api != nil || tc.custom != nil {
				in.ApiPassthrough = &types.ApiPassthrough{Extensions: &types.Extensions{KeyUsage: tc.api, CustomExtensions: tc.custom}}
			}
			out, err := env.Client.IssueCertificate(ctx, in)
			if tc.code != "" {
				testenv.WantError(t, err, tc.code)
				if !strings.Contains(err.Error(), cmp.Or(tc.why, "RFC 9881")) {
					t.Errorf("the refusal does not say why: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := env.Certificate(t, root, *out.CertificateArn)
			pub, err := pki.ParsePublicKey(cert.RawSubjectPublicKeyInfo)
			if err != nil {
				t.Fatal(err)
			}
			if forbidden := x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageDecipherOnly; pki.IsMLDSA(pki.KeyAlgorithmOf(pub)) && cert.KeyUsage&forbidden != 0 {
				t.Errorf("an ML-DSA key's certificate with key usage %b", cert.KeyUsage)
			}
		})
	}

	_, err = env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: &types.CertificateAuthorityConfiguration{KeyAlgorithm: types.KeyAlgorithmMlDsa44, SigningAlgorithm: types.SigningAlgorithmMlDsa44,
			Subject:       &types.ASN1Subject{CommonName: aws.String("ML-DSA root")},
			CsrExtensions: &types.CsrExtensions{KeyUsage: &types.KeyUsage{KeyCertSign: true, CRLSign: true, KeyEncipherment: true}}}})
	testenv.WantError(t, err, "InvalidArgsException")
}
