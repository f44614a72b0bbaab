package authority_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/template"
)

const tmplPrefix = "arn:aws:acm-pca:::template/"

func TestRootActivationAsDocumented(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Documented Root")
	csr := env.CSR(t, arn)
	root := env.ActivateRoot(t, arn)

	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusActive {
		t.Fatalf("status %s after activation", s)
	}
	if !bytes.Equal(root.RawSubject, root.RawIssuer) || root.CheckSignatureFrom(root) != nil {
		t.Error("the root certificate is not self-signed")
	}
	if !root.IsCA || root.MaxPathLen != -1 || !criticalExt(root, "2.5.29.19") {
		t.Errorf("basic constraints: CA %v, path length %d", root.IsCA, root.MaxPathLen)
	}
	if root.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %v", root.KeyUsage)
	}
	if len(root.ExtKeyUsage) != 0 || len(root.AuthorityKeyId) != 0 || len(root.SubjectKeyId) == 0 {
		t.Errorf("EKU %v, AKI %x, SKI %x", root.ExtKeyUsage, root.AuthorityKeyId, root.SubjectKeyId)
	}
	if !bytes.Equal(root.RawSubject, csr.RawSubject) {
		t.Error("the root's subject is not the CSR's")
	}
	d, _ := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if *d.CertificateAuthority.Serial != root.SerialNumber.String() {
		t.Errorf("described serial %s, want %s", *d.CertificateAuthority.Serial, root.SerialNumber)
	}
	// The root's own certificate comes back without a chain.
	certARN := arn + "/certificate/" + fmt.Sprintf("%032x", root.SerialNumber)
	if _, chain := env.Certificate(t, arn, certARN); len(chain) != 0 {
		t.Errorf("the self-signed root has a chain of %d", len(chain))
	}
	// Only root templates work while the root is pending.
	pending := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Pending")
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &pending, Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}}).CSRPEM,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
	})
	testenv.WantError(t, err, "InvalidStateException")
	if !strings.Contains(err.Error(), "The certificate authority is not in a valid state for issuing certificates") {
		t.Errorf("message %q lacks AWS's wording", err)
	}
}

func TestSubordinateActivationOnSameServer(t *testing.T) {
	env := testenv.Start(t)
	rootARN, root := env.NewActiveRoot(t, "Root")
	subARN := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Issuing")
	subCSR, _ := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &subARN})
	subCertARN := env.Issue(t, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &rootARN, Csr: []byte(*subCSR.Csr),
		TemplateArn: aws.String(tmplPrefix + "SubordinateCACertificate_PathLen0/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(5)},
	})
	subCert, chain := env.Certificate(t, rootARN, subCertARN)
	if len(chain) != 1 || !chain[0].Equal(root) {
		t.Fatalf("the subordinate's chain is %d certificates, want the root", len(chain))
	}
	if !subCert.IsCA || subCert.MaxPathLen != 0 || !subCert.MaxPathLenZero {
		t.Errorf("subordinate basic constraints: CA %v pathlen %d", subCert.IsCA, subCert.MaxPathLen)
	}
	if !bytes.Equal(subCert.AuthorityKeyId, root.SubjectKeyId) {
		t.Errorf("AKI %x, want the root's SKI %x", subCert.AuthorityKeyId, root.SubjectKeyId)
	}
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &subARN, Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: subCert.Raw}),
		CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
	}); err != nil {
		t.Fatal(err)
	}
	leafARN := env.Issue(t, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &subARN,
		Csr:                     testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc.example"}, DNSNames: []string{"svc.example"}}).CSRPEM,
	})
	leaf, chain := env.Certificate(t, subARN, leafARN)
	// AWS order: the issuer first, the root last (tools take the last PEM as the root).
	if len(chain) != 2 || !chain[0].Equal(subCert) || !chain[1].Equal(root) {
		t.Fatalf("leaf chain of %d certificates is not [issuing CA, root]", len(chain))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(subCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "svc.example"}); err != nil {
		t.Errorf("the leaf does not verify: %v", err)
	}
	// The PathLen0 subordinate cannot issue CA certificates.
	other := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Too deep")
	otherCSR, _ := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &other})
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &subARN, Csr: []byte(*otherCSR.Csr), SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
		TemplateArn: aws.String(tmplPrefix + "SubordinateCACertificate_PathLen0/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(1)},
	})
	testenv.WantError(t, err, "InvalidArgsException")
}

func criticalExt(c *x509.Certificate, oid string) bool {
	for _, e := range c.Extensions {
		if e.Id.String() == oid {
			return e.Critical
		}
	}
	return false
}

func ext(c *x509.Certificate, oid string) *pkix.Extension {
	for i, e := range c.Extensions {
		if e.Id.String() == oid {
			return &c.Extensions[i]
		}
	}
	return nil
}

// TestEveryTemplate issues a certificate with each of AWS's templates and
// checks the extensions it must produce, and which of the CSR's and the
// API passthrough's values it takes.
func TestEveryTemplate(t *testing.T) {
	env := testenv.Start(t)
	rootARN, root := env.NewActiveRoot(t, "Template Root")
	rootCSR, _ := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &rootARN})
	csrExt := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: []byte{0x05, 0x00}}
	// The superseded forms of basic constraints (cA TRUE) and of the
	// subject alternative names, which Windows still reads, are dropped.
	superseded := []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 10}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}},
		{Id: asn1.ObjectIdentifier{2, 5, 29, 7}, Value: []byte{0x30, 0x0a, 0x82, 0x08, 'e', 'v', 'i', 'l', '.', 'c', 'o', 'm'}}}
	leafCSR := testenv.NewLeaf(t, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "from-csr", Organization: []string{"CSR Org"}}, DNSNames: []string{"csr.example"},
		ExtraExtensions: append([]pkix.Extension{csrExt}, superseded...),
	}).CSRPEM
	api := &types.ApiPassthrough{
		Subject: &types.ASN1Subject{CommonName: aws.String("from-api")},
		Extensions: &types.Extensions{
			SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("api.example")}},
			KeyUsage:                &types.KeyUsage{DigitalSignature: true, NonRepudiation: true},
			ExtendedKeyUsage:        []types.ExtendedKeyUsage{{ExtendedKeyUsageType: types.ExtendedKeyUsageTypeEmailProtection}},
			CustomExtensions: []types.CustomExtension{{ObjectIdentifier: aws.String("1.3.6.1.4.1.99999.2"), Value: aws.String("BQA="), Critical: aws.Bool(false)},
				{ObjectIdentifier: aws.String("2.5.29.10"), Value: aws.String("MAMBAf8="), Critical: aws.Bool(true)}},
			CertificatePolicies: []types.PolicyInformation{{CertPolicyId: aws.String("2.23.140.1.2.1")}},
		},
	}
	arns := template.ARNs()
	if len(arns) != 61 {
		t.Errorf("%d templates, want the 61 AWS documents", len(arns))
	}
	for _, arn := range arns {
		tmpl, _ := template.Lookup(arn)
		t.Run(tmpl.Name, func(t *testing.T) {
			csr := leafCSR
			if tmpl.Root {
				csr = []byte(*rootCSR.Csr)
			}
			validity := &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}
			certARN := env.Issue(t, &acmpca.IssueCertificateInput{
				CertificateAuthorityArn: &rootARN, Csr: csr, TemplateArn: aws.String(arn), Validity: validity, ApiPassthrough: api,
			})
			c, _ := env.Certificate(t, rootARN, certARN)

			for _, e := range superseded {
				if ext(c, e.Id.String()) != nil {
					t.Errorf("the superseded extension %s was passed through", e.Id)
				}
			}
			if c.IsCA != tmpl.CA || !c.BasicConstraintsValid || criticalExt(c, "2.5.29.19") != tmpl.BCCritical {
				t.Errorf("basic constraints: CA %v critical %v", c.IsCA, criticalExt(c, "2.5.29.19"))
			}
			if tmpl.CA && tmpl.PathLen >= 0 && (c.MaxPathLen != tmpl.PathLen || (tmpl.PathLen == 0 && !c.MaxPathLenZero)) {
				t.Errorf("path length %d, want %d", c.MaxPathLen, tmpl.PathLen)
			}
			if tmpl.PathLen < 0 && c.MaxPathLen != -1 {
				t.Errorf("path length %d, want none", c.MaxPathLen)
			}
			usesAPI, usesCSR := tmpl.UsesAPI(), tmpl.UsesCSR()
			wantKU := tmpl.KeyUsage &^ x509.KeyUsageKeyEncipherment // the leaf's key is EC (RFC 8813)
			if tmpl.Blank {
				wantKU = 0
				if usesAPI {
					wantKU = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
				}
			}
			if c.KeyUsage != wantKU || (wantKU != 0 && !criticalExt(c, "2.5.29.15")) {
				t.Errorf("key usage %v, want %v (critical)", c.KeyUsage, wantKU)
			}
			var wantEKU []asn1.ObjectIdentifier
			switch {
			case !tmpl.Blank:
				wantEKU = tmpl.ExtKeyUsage
			case usesAPI:
				wantEKU = []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 4}}
			}
			if e := ext(c, "2.5.29.37"); len(wantEKU) == 0 && e != nil || len(wantEKU) > 0 && (e == nil || e.Critical != tmpl.EKUCritical) {
				t.Errorf("EKU extension %+v, want %v critical %v", e, wantEKU, tmpl.EKUCritical)
			} else if e != nil {
				var oids []asn1.ObjectIdentifier
				asn1.Unmarshal(e.Value, &oids)
				if fmt.Sprint(oids) != fmt.Sprint(wantEKU) {
					t.Errorf("EKU %v, want %v", oids, wantEKU)
				}
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no subject key identifier")
			}
			if tmpl.Root != (len(c.AuthorityKeyId) == 0) || (!tmpl.Root && !bytes.Equal(c.AuthorityKeyId, root.SubjectKeyId)) {
				t.Errorf("AKI %x (root template %v)", c.AuthorityKeyId, tmpl.Root)
			}
			// Subject and SAN: the API's for API templates, else the CSR's.
			wantCN, wantDNS := "from-csr", "csr.example"
			if tmpl.Root {
				wantCN, wantDNS = "Template Root", ""
			}
			if usesAPI {
				wantCN, wantDNS = "from-api", "api.example"
			}
			if c.Subject.CommonName != wantCN || strings.Join(c.DNSNames, ",") != wantDNS {
				t.Errorf("subject CN %q SAN %v, want %q %q", c.Subject.CommonName, c.DNSNames, wantCN, wantDNS)
			}
			if got := ext(c, csrExt.Id.String()) != nil; got != (usesCSR && !tmpl.Root) {
				t.Errorf("CSR extension copied: %v", got)
			}
			if got := ext(c, "1.3.6.1.4.1.99999.2") != nil; got != usesAPI {
				t.Errorf("API custom extension copied: %v", got)
			}
			if got := len(c.PolicyIdentifiers) == 1; got != usesAPI {
				t.Errorf("API certificate policies copied: %v", got)
			}
			if tmpl.Root && !bytes.Equal(c.RawIssuer, c.RawSubject) {
				t.Error("a root template's certificate is not self-signed")
			}
		})
	}
}

func TestValidity(t *testing.T) {
	env := testenv.Start(t)
	rootARN, root := env.NewActiveRoot(t, "Validity Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "v"}}).CSRPEM
	now := env.Clock.Now().Truncate(time.Second)
	abs := now.AddDate(1, 2, 3).Add(4 * time.Hour)
	// Calendar months: a day the month lacks, which AddDate carries into
	// the next, is the month's last.
	calendar := func(years, months int) time.Time {
		end := now.AddDate(years, months, 0)
		if end.Day() != now.Day() {
			end = end.AddDate(0, 0, -end.Day())
		}
		return end
	}
	tests := []struct {
		name      string
		validity  types.Validity
		notBefore *types.Validity
		wantEnd   time.Time
		wantStart time.Time
	}{
		{"days", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(90)}, nil, now.AddDate(0, 0, 90), now.Add(-time.Hour)},
		{"months", types.Validity{Type: types.ValidityPeriodTypeMonths, Value: aws.Int64(13)}, nil, calendar(0, 13), now.Add(-time.Hour)},
		{"years", types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(2)}, nil, calendar(2, 0), now.Add(-time.Hour)},
		{"absolute", types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(abs.Unix())}, nil, abs, now.Add(-time.Hour)},
		{"end date UTCTime", types.Validity{Type: types.ValidityPeriodTypeEndDate, Value: aws.Int64(endDate(abs, "060102150405"))}, nil, abs, now.Add(-time.Hour)},
		{"end date GeneralizedTime", types.Validity{Type: types.ValidityPeriodTypeEndDate, Value: aws.Int64(endDate(abs, "20060102150405"))}, nil, abs, now.Add(-time.Hour)},
		{"not before", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(10)},
			&types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(now.Add(48 * time.Hour).Unix())}, now.AddDate(0, 0, 10), now.Add(48 * time.Hour)},
		{"not before, as the CA", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(10)},
			&types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(root.NotBefore.Unix())}, now.AddDate(0, 0, 10), root.NotBefore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr, Validity: &tt.validity, ValidityNotBefore: tt.notBefore})
			c, _ := env.Certificate(t, rootARN, arn)
			if c.NotAfter.Sub(tt.wantEnd).Abs() > time.Second || c.NotBefore.Sub(tt.wantStart).Abs() > time.Second {
				t.Errorf("valid %v to %v, want %v to %v", c.NotBefore, c.NotAfter, tt.wantStart, tt.wantEnd)
			}
		})
	}
	refused := []struct {
		name      string
		validity  types.Validity
		notBefore *types.Validity
		code      string
	}{
		{"beyond the CA", types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(root.NotAfter.Add(time.Hour).Unix())}, nil, "ValidationException"},
		{"in the past", types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(now.Add(-time.Hour).Unix())}, nil, "InvalidArgsException"},
		{"bad end date", types.Validity{Type: types.ValidityPeriodTypeEndDate, Value: aws.Int64(20261399000000)}, nil, "InvalidArgsException"},
		{"end date of the wrong length", types.Validity{Type: types.ValidityPeriodTypeEndDate, Value: aws.Int64(2026123)}, nil, "InvalidArgsException"},
		{"after the year 9999", types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(1 << 40)}, nil, "InvalidArgsException"},
		{"relative not before", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}, &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}, "InvalidArgsException"},
		{"not before after the end", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
			&types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(now.AddDate(0, 0, 2).Unix())}, "InvalidArgsException"},
		{"not before the CA", types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
			&types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(root.NotBefore.Add(-time.Second).Unix())}, "ValidationException"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr,
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &tt.validity, ValidityNotBefore: tt.notBefore})
			testenv.WantError(t, err, tt.code)
		})
	}
}

// newShortLivedRoot creates and activates a root CA in
// SHORT_LIVED_CERTIFICATE mode (its own certificate is not held to the
// mode), and returns its ARN.
func newShortLivedRoot(t *testing.T, env *testenv.Env) string {
	t.Helper()
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Short-Lived Root"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot, UsageMode: types.CertificateAuthorityUsageModeShortLivedCertificate})
	if err != nil {
		t.Fatal(err)
	}
	ca := *out.CertificateAuthorityArn
	env.ActivateRoot(t, ca)
	return ca
}

// TestShortLivedValidity: a CA in SHORT_LIVED_CERTIFICATE mode issues
// certificates valid for at most 7 days from issuance, and starting at
// most the default hour before it.
func TestShortLivedValidity(t *testing.T) {
	env := testenv.Start(t)
	ca := newShortLivedRoot(t, env)
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "short"}}).CSRPEM
	now := env.Clock.Now().Truncate(time.Second)
	at := func(d time.Duration) *types.Validity {
		return &types.Validity{Type: types.ValidityPeriodTypeAbsolute, Value: aws.Int64(now.Add(d).Unix())}
	}
	for _, tc := range []struct {
		name            string
		notAfter, start *types.Validity
		code            string
	}{
		{"7 days", &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(7)}, nil, ""},
		{"8 days", &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(8)}, nil, "ValidationException"},
		{"from half an hour back", at(24 * time.Hour), at(-30 * time.Minute), ""},
		{"from two hours back", at(24 * time.Hour), at(-2 * time.Hour), "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr,
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: tc.notAfter, ValidityNotBefore: tc.start})
			if tc.code == "" && err != nil {
				t.Fatal(err)
			}
			if tc.code != "" {
				testenv.WantError(t, err, tc.code)
			}
		})
	}
}

func endDate(t time.Time, layout string) int64 {
	var n int64
	fmt.Sscan(t.UTC().Format(layout), &n)
	return n
}

func TestIssueCertificateErrors(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Errors Root")
	good := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok"}}).CSRPEM
	mid, tamper := good[len(good)/2:len(good)/2+4], []byte("AAAA")
	if bytes.Equal(mid, tamper) { // the key's bits can be so
		tamper = []byte("BBBB")
	}
	tampered := bytes.Replace(good, mid, tamper, 1)
	block, _ := pem.Decode(good)
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	subCSR, _ := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &sub})
	days := &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}
	apiTemplate := aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1")
	custom := func(exts ...types.CustomExtension) *types.ApiPassthrough {
		return &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: exts}}
	}
	tests := []struct {
		name string
		in   acmpca.IssueCertificateInput
		code string
	}{
		{"unknown template", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "NoSuchTemplate/V1")}, "InvalidArgsException"},
		{"unknown template version", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate/V2")}, "InvalidArgsException"},
		{"RSA signing for an EC key", acmpca.IssueCertificateInput{Csr: good, SigningAlgorithm: types.SigningAlgorithmSha256withrsa}, "InvalidArgsException"},
		{"not PEM", acmpca.IssueCertificateInput{Csr: []byte("hello")}, "MalformedCSRException"},
		{"DER", acmpca.IssueCertificateInput{Csr: block.Bytes}, "MalformedCSRException"},
		{"tampered", acmpca.IssueCertificateInput{Csr: tampered}, "MalformedCSRException"},
		{"a certificate", acmpca.IssueCertificateInput{Csr: []byte(strings.ReplaceAll(string(good), "CERTIFICATE REQUEST", "CERTIFICATE"))}, "MalformedCSRException"},
		{"no name at all", acmpca.IssueCertificateInput{Csr: testenv.NewLeaf(t, &x509.CertificateRequest{}).CSRPEM}, "MalformedCSRException"},
		{"root template for another key", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "RootCACertificate/V1")}, "InvalidArgsException"},
		{"API passthrough with two names in one GeneralName", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"),
			ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("a"), IpAddress: aws.String("10.0.0.1")}}}}}, "InvalidArgsException"},
		{"an RSA-1024 key", acmpca.IssueCertificateInput{Csr: csrOf(t, rsaKey(t, 1024), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "weak"}})}, "MalformedCSRException"},
		{"a P-224 key", acmpca.IssueCertificateInput{Csr: csrOf(t, ecKey(t, elliptic.P224()), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "weak"}})}, "MalformedCSRException"},
		{"an Ed25519 key", acmpca.IssueCertificateInput{Csr: csrOf(t, ed25519Key(t), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "unsupported"}})}, "MalformedCSRException"},
		{"signed with SHA-1", acmpca.IssueCertificateInput{Csr: sha1CSR(t)}, "MalformedCSRException"},
		{"a DNS name with a NUL", acmpca.IssueCertificateInput{Csr: testenv.NewLeaf(t, &x509.CertificateRequest{DNSNames: []string{"bank.example\x00.evil.example"}}).CSRPEM}, "MalformedCSRException"},
		{"a blank DNS name", acmpca.IssueCertificateInput{Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok"}, DNSNames: []string{" "}}).CSRPEM}, "MalformedCSRException"},
		{"an empty SAN and no subject", acmpca.IssueCertificateInput{Csr: testenv.NewLeaf(t, &x509.CertificateRequest{
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0x30, 0}}}}).CSRPEM}, "MalformedCSRException"},
		{"API passthrough DNS name with a line break", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"),
			ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("a\nb.example")}}}}}, "MalformedCSRException"},
		{"CSR passthrough of a key usage that is none", acmpca.IssueCertificateInput{TemplateArn: aws.String(tmplPrefix + "BlankEndEntityCertificate_CSRPassthrough/V1"),
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ku"},
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{0xff}}}}).CSRPEM}, "MalformedCSRException"},
		{"API passthrough of alternative names that do not parse", acmpca.IssueCertificateInput{Csr: good, TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"),
			ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: []types.CustomExtension{{ObjectIdentifier: aws.String("2.5.29.17"), Value: aws.String("AAAA")}}}}}, "MalformedCSRException"}, // "A ... SAN extension ... that can't be parsed" (Certificate request validation)
		{"a common name with a NUL", acmpca.IssueCertificateInput{Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bank.example\x00.evil.example"}}).CSRPEM}, "MalformedCSRException"},
		{"API passthrough of a common name with a NUL", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: &types.ApiPassthrough{Subject: &types.ASN1Subject{CommonName: aws.String("bank.example\x00.evil.example")}}}, "InvalidArgsException"},
		{"a custom extension's DNS name with a NUL", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: custom(types.CustomExtension{ObjectIdentifier: aws.String("2.5.29.17"), Value: der(t, []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("bank.example\x00.evil.example")}})})}, "MalformedCSRException"},
		{"a custom extension given twice", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: custom(types.CustomExtension{ObjectIdentifier: aws.String("1.2.3.4"), Value: der(t, asn1.NullRawValue)},
				types.CustomExtension{ObjectIdentifier: aws.String("1.2.3.4"), Value: der(t, []byte("x")), Critical: aws.Bool(true)})}, "InvalidArgsException"},
		{"a custom extension a typed member gives too", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{KeyUsage: &types.KeyUsage{DigitalSignature: true},
				CustomExtensions: []types.CustomExtension{{ObjectIdentifier: aws.String("2.5.29.15"), Value: der(t, asn1.BitString{Bytes: []byte{0x04}, BitLength: 6})}}}}}, "InvalidArgsException"},
		{"a custom extension that is not one DER value", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: custom(types.CustomExtension{ObjectIdentifier: aws.String("1.2.3.4"), Value: aws.String(base64.StdEncoding.EncodeToString([]byte{0x05, 0x00, 0x05}))})}, "InvalidArgsException"},
		{"name constraints in an end-entity certificate, from the CSR", acmpca.IssueCertificateInput{TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_CSRPassthrough/V1"),
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "nc"}, ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 30}, Critical: true,
				Value: []byte("\x30\x12\xa0\x10\x30\x0e\x82\x0ccorp.example")}}}).CSRPEM}, "MalformedCSRException"},
		{"name constraints in an end-entity certificate", acmpca.IssueCertificateInput{Csr: good, TemplateArn: apiTemplate,
			ApiPassthrough: custom(types.CustomExtension{ObjectIdentifier: aws.String("2.5.29.30"), Critical: aws.Bool(true), Value: aws.String("MBKgEDAOggxjb3JwLmV4YW1wbGU=")})}, "InvalidArgsException"}, // permits corp.example
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.CertificateAuthorityArn = &rootARN
			if in.SigningAlgorithm == "" {
				in.SigningAlgorithm = types.SigningAlgorithmSha256withecdsa
			}
			in.Validity = days
			_, err := env.Client.IssueCertificate(ctx, &in)
			testenv.WantError(t, err, tt.code)
		})
	}
	// A root template on a subordinate CA.
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub, Csr: []byte(*subCSR.Csr),
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: days, TemplateArn: aws.String(tmplPrefix + "RootCACertificate/V1")})
	testenv.WantError(t, err, "InvalidArgsException")
	// DISABLED, EXPIRED and DELETED CAs do not issue.
	issue := func() error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: good, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: days})
		return err
	}
	env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &rootARN, Status: types.CertificateAuthorityStatusDisabled})
	testenv.WantError(t, issue(), "InvalidStateException")
	env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &rootARN})
	testenv.WantError(t, issue(), "InvalidStateException")
	env.Client.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &rootARN})
	env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &rootARN, Status: types.CertificateAuthorityStatusActive})
	if err := issue(); err != nil {
		t.Fatalf("the restored and reactivated CA does not issue: %v", err)
	}
	env.Clock.Advance(11 * 365 * 24 * time.Hour)
	err = issue()
	testenv.WantError(t, err, "InvalidStateException")
	if !strings.Contains(err.Error(), "EXPIRED") {
		t.Errorf("message %q does not say the CA expired", err)
	}
}

func rsaKey(t *testing.T, bits int) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T, curve elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ed25519Key(t *testing.T) crypto.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustDER is v in DER.
func mustDER(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smtpUTF8Name is an alternative name of box, an internationalized email
// address (SmtpUTF8Mailbox, RFC 9598).
func smtpUTF8Name(t *testing.T, box string) asn1.RawValue {
	value := mustDER(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
		Bytes: mustDER(t, asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(box)})})
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(mustDER(t, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 9}), value...)}
}

// csrOf is a PEM CSR of key.
func csrOf(t *testing.T, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestChainConstraints: a subordinate CA issues within what the chain
// above it allows, as AWS enforces it: the name constraints and the path
// lengths of every certificate above it, not only of its own.
func TestChainConstraints(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) {
		c.MaxPathLen, c.PermittedDNSDomains, c.PermittedEmailAddresses = 1, []string{"corp.example"}, []string{"corp.example", ".mail.corp.example"}
		_, ten, _ := net.ParseCIDR("10.0.0.0/8")
		c.ExcludedIPRanges = []*net.IPNet{ten}
	})
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	cert := constraining.Sign(t, "Sub", env.CSR(t, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: cert.PEM, CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	issue := func(template string, names ...string) error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: names}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
			TemplateArn: aws.String(tmplPrefix + template)})
		return err
	}
	if err := issue("EndEntityCertificate/V1", "app.corp.example"); err != nil {
		t.Errorf("a name the chain permits: %v", err)
	}
	testenv.WantError(t, issue("EndEntityCertificate/V1", "app.corp.example", "bank.example"), "InvalidArgsException")
	// The constraining certificate allows one CA below it: Sub.
	testenv.WantError(t, issue("SubordinateCACertificate_PathLen0/V1", "ca.corp.example"), "InvalidArgsException")
	// A host name in the common name, without DNS names, is checked as
	// OpenSSL checks it; another common name is not a host name.
	named := func(cn string) error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	// So is each of several common names (Go reads the last, OpenSSL
	// every one), a wildcard one (which curl and Python's ssl match), and
	// one with an underscore (which OpenSSL takes for a host name).
	for _, cn := range []string{"bank.example", "bank.example.", "*.bank.example", "*.example", "w*.example", "a_b.bank.example"} {
		testenv.WantError(t, named(cn), "InvalidArgsException")
	}
	for _, cn := range []string{"app.CORP.example", "Payments Service", "*.corp.example", "a_b.corp.example"} {
		if err := named(cn); err != nil {
			t.Errorf("the common name %q: %v", cn, err)
		}
	}
	twice := func(names ...string) error {
		var subject pkix.Name
		for _, n := range names {
			subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: n})
		}
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: subject}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	// issueNamed issues, through the API, a certificate for name from ca.
	issueNamed := func(ca string, name types.GeneralName) error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "named"}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
			TemplateArn:    aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"),
			ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{name}}}})
		return err
	}
	// mailbox is an internationalized email address (SmtpUTF8Mailbox).
	mailbox := func(box string) types.GeneralName {
		return types.GeneralName{OtherName: &types.OtherName{TypeId: aws.String("1.3.6.1.5.5.7.8.9"), Value: aws.String(box)}}
	}
	// A CA certificate's common name is none OpenSSL matches a host name
	// with, and goes unchecked.
	wide := root.NewIntermediate(t, "Wide", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"corp.example"} })
	parent := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Parent")
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &parent,
		Certificate:      wide.Sign(t, "Parent", env.CSR(t, parent).PublicKey, wide.Cert.NotAfter.Add(-time.Hour)).PEM,
		CertificateChain: append(append([]byte{}, wide.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	// Nor, under a chain without email constraints, is an
	// internationalized email address held to any, an empty label and
	// all.
	if err := issueNamed(parent, mailbox("jörg@evil.example.")); err != nil {
		t.Errorf("an internationalized email address under a chain without email constraints: %v", err)
	}
	for template, ok := range map[string]bool{"SubordinateCACertificate_PathLen0/V1": true, "EndEntityCertificate/V1": false} {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &parent,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Issuing_CA.bank.example"}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
			TemplateArn: aws.String(tmplPrefix + template)})
		if (err == nil) != ok {
			t.Errorf("%s with the common name Issuing_CA.bank.example: %v, want allowed %v", template, err, ok)
		}
	}
	testenv.WantError(t, twice("bank.example", "app.corp.example"), "InvalidArgsException")
	testenv.WantError(t, twice("app.corp.example", "bank.example"), "InvalidArgsException")
	if err := twice("app.corp.example", "Payments Service"); err != nil {
		t.Errorf("two common names, one a host name the chain permits: %v", err)
	}
	// A CA whose subject has an email address the chain does not permit
	// is not imported.
	mailed := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Mailed")
	mailedCert := constraining.Sign(t, "Mailed", env.CSR(t, mailed).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour), func(c *x509.Certificate) {
		c.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "ca@evil.example"}}
	})
	_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &mailed, Certificate: mailedCert.PEM, CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)})
	testenv.WantError(t, err, "CertificateMismatchException")
	// Nor one whose alternative names the chain does not permit, as
	// clients read them: an internationalized email address, an
	// IPv4-mapped address in a range excluded.
	for name, san := range map[string]func(*x509.Certificate){
		"SmtpUTF8Mailbox": func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: mustDER(t, []asn1.RawValue{smtpUTF8Name(t, "ca@evil.example")})}}
		},
		// In 16 bytes: Go's x509 writes such an address in 4.
		"IPv4-mapped": func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: mustDER(t, []asn1.RawValue{
				{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: netip.MustParseAddr("::ffff:10.1.2.3").AsSlice()}})}}
		},
	} {
		named := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Named "+name)
		_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &named,
			Certificate:      constraining.Sign(t, "Named "+name, env.CSR(t, named).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour), san).PEM,
			CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)})
		if code, _ := testenv.ErrorCode(err); code != "CertificateMismatchException" {
			t.Errorf("a CA certificate with an alternative name (%s) the chain does not permit: %v", name, err)
		}
	}
	// An email address in the subject is checked as OpenSSL checks it.
	emailed := func(email string) error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "mail", ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: email}}}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	for email, ok := range map[string]bool{"a@corp.example": true, "a@CORP.example": true, "a@x.mail.corp.example": true,
		"a@mail.corp.example": false, "a@evil.example": false, "a@sub.corp.example": false} {
		if err := emailed(email); (err == nil) != ok {
			t.Errorf("the subject's email address %q: %v, want allowed %v", email, err, ok)
		}
	}
	// Alternative names Go's verifier reads otherwise than clients do, in
	// the CSR and through the API: an internationalized email address
	// (SmtpUTF8Mailbox, RFC 9598), whose host the email constraints hold
	// to in ASCII, and an IPv4-mapped IPv6 address, which Go's clients
	// match with the IPv4 address, and the IPv4 constraints hold to.
	smtpUTF8 := func(box string) asn1.RawValue { return smtpUTF8Name(t, box) }
	ipName := func(ip string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: netip.MustParseAddr(ip).AsSlice()}
	}
	for _, tc := range []struct {
		name asn1.RawValue
		api  types.GeneralName
		ok   bool
	}{
		{smtpUTF8("jörg@corp.example"), mailbox("jörg@corp.example"), true},
		{smtpUTF8("jörg@CORP.example"), mailbox("jörg@CORP.example"), true},
		{smtpUTF8("boss@evil.example"), mailbox("boss@evil.example"), false},
		{smtpUTF8("jörg@bücher.example"), mailbox("jörg@bücher.example"), false},
		{smtpUTF8("jörg@mail.corp.example"), mailbox("jörg@mail.corp.example"), false},
		{smtpUTF8("no mailbox"), mailbox("no mailbox"), false},
		{ipName("192.0.2.1"), types.GeneralName{IpAddress: aws.String("192.0.2.1")}, true},
		{ipName("::ffff:192.0.2.1"), types.GeneralName{IpAddress: aws.String("::ffff:192.0.2.1")}, true},
		{ipName("10.1.2.3"), types.GeneralName{IpAddress: aws.String("10.1.2.3")}, false},
		{ipName("::ffff:10.1.2.3"), types.GeneralName{IpAddress: aws.String("::ffff:10.1.2.3")}, false},
	} {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "named"},
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: mustDER(t, []asn1.RawValue{tc.name})}}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		what := aws.ToString(tc.api.IpAddress)
		if tc.api.OtherName != nil {
			what = aws.ToString(tc.api.OtherName.Value)
		}
		if (err == nil) != tc.ok {
			t.Errorf("the CSR's alternative name %q: %v, want allowed %v", what, err, tc.ok)
		}
		if err := issueNamed(sub, tc.api); (err == nil) != tc.ok {
			t.Errorf("the alternative name %q through the API: %v, want allowed %v", what, err, tc.ok)
		}
	}

	// A host with an empty label is another host than a constraint's,
	// and escapes an excluded one.
	excluding := root.NewIntermediate(t, "Excluding", func(c *x509.Certificate) { c.ExcludedEmailAddresses = []string{"evil.example"} })
	underExcluding := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Under Excluding")
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &underExcluding,
		Certificate:      excluding.Sign(t, "Under Excluding", env.CSR(t, underExcluding).PublicKey, excluding.Cert.NotAfter.Add(-time.Hour)).PEM,
		CertificateChain: append(append([]byte{}, excluding.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	for box, ok := range map[string]bool{"jörg@good.example": true, "jörg@evil.example": false, "jörg@evil.example.": false, "jörg@evil..example": false} {
		if err := issueNamed(underExcluding, mailbox(box)); (err == nil) != ok {
			t.Errorf("the SmtpUTF8Mailbox %q under a chain that excludes evil.example: %v, want allowed %v", box, err, ok)
		}
	}

	// An ML-DSA CA under the same chain issues within it too: Go's
	// verifier cannot check its signatures, so its names are checked on
	// copies of the path signed with throwaway P-256 keys.
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmMlDsa65, "ML-DSA Sub"), CertificateAuthorityType: types.CertificateAuthorityTypeSubordinate})
	if err != nil {
		t.Fatal(err)
	}
	mldsa := *out.CertificateAuthorityArn
	pub, err := pki.ParsePublicKey(env.CSR(t, mldsa).RawSubjectPublicKeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	ski, _ := pki.SubjectKeyID(pub)
	der, err := pki.CreateCertificate(&x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ML-DSA Sub"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: constraining.Cert.NotAfter.Add(-time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: ski, SignatureAlgorithm: x509.ECDSAWithSHA256}, constraining.Cert, pub, constraining.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &mldsa,
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &mldsa, SigningAlgorithm: types.SigningAlgorithmMlDsa65,
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{"app.corp.example"}}).CSRPEM})
	for _, req := range []*x509.CertificateRequest{
		{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{"app.corp.example", "bank.example"}},
		{Subject: pkix.Name{CommonName: "*.bank.example"}},
		{Subject: pkix.Name{CommonName: "leaf"}, EmailAddresses: []string{"a@evil.example"}},
	} {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &mldsa, SigningAlgorithm: types.SigningAlgorithmMlDsa65,
			Csr: testenv.NewLeaf(t, req).CSRPEM, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		testenv.WantError(t, err, "InvalidArgsException")
	}
}

// TestDirectoryNameConstraints: a chain that constrains directory names,
// which Go's verifier does not read, takes a CA that complies with it and
// no other, and the CA issues within it, as OpenSSL checks it.
func TestDirectoryNameConstraints(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	dn := func(name pkix.Name) asn1.RawValue {
		der, err := asn1.Marshal(name.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: der}
	}
	type subtree struct{ Base asn1.RawValue }
	nc, err := asn1.Marshal(struct {
		Permitted []subtree `asn1:"optional,tag:0"`
		Excluded  []subtree `asn1:"optional,tag:1"`
	}{
		Permitted: []subtree{{dn(pkix.Name{Country: []string{"US"}, Organization: []string{"Example Corp"}})},
			{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("corp.example")}}},
		Excluded: []subtree{{dn(pkix.Name{Country: []string{"US"}, Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"Blocked"}})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: pki.OIDNameConstraints, Critical: true, Value: nc}}
	})
	chain := append(append([]byte{}, constraining.PEM...), root.PEM...)
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	signSub := func(name pkix.Name) []byte {
		return constraining.Sign(t, "", env.CSR(t, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour), func(c *x509.Certificate) { c.Subject = name }).PEM
	}
	outside := signSub(pkix.Name{Country: []string{"US"}, Organization: []string{"Other"}, CommonName: "Sub"})
	_, err = env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: outside, CertificateChain: chain})
	testenv.WantError(t, err, "CertificateMismatchException")
	subPEM := signSub(pkix.Name{Country: []string{"US"}, Organization: []string{"Example Corp"}, CommonName: "Sub"})
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: subPEM, CertificateChain: chain}); err != nil {
		t.Fatalf("a CA within the chain's directory names: %v", err)
	}

	issue := func(subject pkix.Name, alt *types.GeneralName) (*acmpca.IssueCertificateOutput, error) {
		in := &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: subject, DNSNames: []string{"app.corp.example"}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}}
		if alt != nil {
			in.TemplateArn = aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1")
			in.ApiPassthrough = &types.ApiPassthrough{Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("app.corp.example")}, *alt}}}
		}
		return env.Client.IssueCertificate(ctx, in)
	}
	out, err := issue(pkix.Name{Country: []string{"us"}, Organization: []string{"example  corp"}, CommonName: "app"}, nil)
	if err != nil {
		t.Fatalf("a leaf within the directory names, in other case and spacing: %v", err)
	}
	for _, tc := range []struct {
		name    string
		subject pkix.Name
		alt     *types.GeneralName
	}{
		{"outside", pkix.Name{Country: []string{"US"}, Organization: []string{"Other"}, CommonName: "app"}, nil},
		{"excluded", pkix.Name{Country: []string{"US"}, Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"Blocked"}, CommonName: "app"}, nil},
		{"a directory name outside in the SAN", pkix.Name{Country: []string{"US"}, Organization: []string{"Example Corp"}, CommonName: "app"},
			&types.GeneralName{DirectoryName: &types.ASN1Subject{Country: aws.String("US"), Organization: aws.String("Other")}}},
	} {
		_, err := issue(tc.subject, tc.alt)
		if code, _ := testenv.ErrorCode(err); code != "InvalidArgsException" {
			t.Errorf("%s: %v, want InvalidArgsException", tc.name, err)
		}
	}

	// OpenSSL, which checks directory-name constraints, takes the leaf.
	got, err := env.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &sub, CertificateArn: out.CertificateArn})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"root.pem": root.PEM, "untrusted.pem": append(append([]byte{}, subPEM...), constraining.PEM...), "leaf.pem": []byte(*got.Certificate)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("openssl", "verify", "-CAfile", "root.pem", "-untrusted", "untrusted.pem", "leaf.pem")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("openssl verify: %v: %s", err, b)
	}
}

// TestNameConstraintsBudget: an issuance whose names would take more
// comparisons with its path's constraints than pki.MaxNameComparisons is
// refused, rather than cost the server seconds of CPU (a chain of 67,500
// excluded directory names and a CSR of 1,240 took 30 s).
func TestNameConstraintsBudget(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	dn := func(o string) asn1.RawValue {
		der, err := asn1.Marshal(pkix.Name{Country: []string{"US"}, Organization: []string{o}}.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: der}
	}
	type subtree struct{ Base asn1.RawValue }
	var excluded []subtree
	for i := range 600 {
		excluded = append(excluded, subtree{dn(fmt.Sprintf("Blocked %d", i))})
	}
	nc, err := asn1.Marshal(struct {
		Excluded []subtree `asn1:"optional,tag:1"`
	}{excluded})
	if err != nil {
		t.Fatal(err)
	}
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: pki.OIDNameConstraints, Critical: true, Value: nc}}
	})
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	subPEM := constraining.Sign(t, "Sub", env.CSR(t, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour)).PEM
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: subPEM, CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	issue := func(names int) error {
		var b []byte
		for i := range names {
			der, _ := asn1.Marshal(dn(fmt.Sprintf("Name %d", i)))
			b = append(b, der...)
		}
		san, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, ExtraExtensions: []pkix.Extension{{Id: pki.OIDSubjectAltName, Value: san}}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	if err := issue(20); err != nil {
		t.Fatalf("20 directory names, 600 subtrees: %v", err)
	}
	err = issue(300) // 300 names × 600 subtrees × 2 readings, 3 comparisons each
	testenv.WantError(t, err, "InvalidArgsException")
	if !strings.Contains(err.Error(), "comparisons") {
		t.Errorf("message %q", err)
	}
}

// sha1CSR is a PEM CSR signed with SHA-1, which Go no longer makes:
// OpenSSL does.
func sha1CSR(t *testing.T) []byte {
	out, err := exec.Command("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(t.TempDir(), "key.pem"),
		"-sha1", "-subj", "/CN=sha1.example").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return out
}

func TestIssueIdempotencyAndWaiter(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Idem Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "idem"}}).CSRPEM
	issue := func(token string) string {
		return env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr, IdempotencyToken: aws.String(token)})
	}
	first := issue("t1")
	env.Clock.Advance(4 * time.Minute)
	if again := issue("t1"); again != first {
		t.Errorf("same token within 5 minutes: %s, want %s", again, first)
	}
	if other := issue("t2"); other == first {
		t.Error("another token returned the same certificate")
	}
	env.Clock.Advance(2 * time.Minute)
	if later := issue("t1"); later == first {
		t.Error("the token still held after 5 minutes")
	}
	w := acmpca.NewCertificateIssuedWaiter(env.Client)
	if err := w.Wait(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &rootARN, CertificateArn: &first}, 10*time.Second); err != nil {
		t.Errorf("CertificateIssued waiter: %v", err)
	}
}

func TestConcurrentIssuance(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Busy Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "busy"}}).CSRPEM
	const n = 64
	arns := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			arns[i] = env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr})
		})
	}
	wg.Wait()
	slices.Sort(arns)
	if len(slices.Compact(arns)) != n {
		t.Errorf("%d concurrent issuances gave duplicate ARNs", n)
	}
	for _, a := range arns {
		c, _ := env.Certificate(t, rootARN, a)
		if !strings.HasSuffix(a, "/certificate/"+fmt.Sprintf("%032x", c.SerialNumber)) || c.SerialNumber.Sign() <= 0 {
			t.Errorf("ARN %s does not end with the serial %x", a, c.SerialNumber)
		}
	}
}

func TestRevokeCertificate(t *testing.T) {
	env := testenv.Start(t)
	rootARN, root := env.NewActiveRoot(t, "Revoking Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "revoked"}}).CSRPEM
	revoke := func(serial string, reason types.RevocationReason) error {
		_, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &rootARN, CertificateSerial: &serial, RevocationReason: reason})
		return err
	}
	colons := func(hex string) string {
		var parts []string
		for i := 0; i < len(hex); i += 2 {
			parts = append(parts, hex[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	forms := []func(string) string{colons, strings.ToUpper, func(s string) string { return strings.ToUpper(colons(s)) }, func(s string) string { return s }}
	for i, reason := range types.RevocationReason("").Values() {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr})
		serial := arn[strings.LastIndex(arn, "/")+1:]
		if err := revoke(forms[i%len(forms)](serial), reason); err != nil {
			t.Fatalf("revoking with %s: %v", reason, err)
		}
		testenv.WantError(t, revoke(serial, reason), "RequestAlreadyProcessedException")
		// A revoked certificate stays retrievable.
		env.Certificate(t, rootARN, arn)
	}
	testenv.WantError(t, revoke("0123456789abcdef", types.RevocationReasonUnspecified), "ResourceNotFoundException")
	testenv.WantError(t, revoke("not-hex", types.RevocationReasonUnspecified), "InvalidRequestException")
	testenv.WantError(t, revoke(root.SerialNumber.Text(16), types.RevocationReasonKeyCompromise), "InvalidRequestException")

	// A DISABLED CA still revokes; a DELETED one does not.
	arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr})
	serial := arn[strings.LastIndex(arn, "/")+1:]
	env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &rootARN, Status: types.CertificateAuthorityStatusDisabled})
	if err := revoke(serial, types.RevocationReasonSuperseded); err != nil {
		t.Errorf("a DISABLED CA did not revoke: %v", err)
	}
	env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &rootARN})
	testenv.WantError(t, revoke(serial, types.RevocationReasonSuperseded), "InvalidStateException")
	_, err := env.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &rootARN, CertificateArn: &arn})
	testenv.WantError(t, err, "InvalidStateException")
}

func TestGetCertificateErrors(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Root A")
	otherARN, _ := env.NewActiveRoot(t, "Root B")
	arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}).CSRPEM})
	tests := []struct{ ca, cert, code string }{
		{otherARN, arn, "ResourceNotFoundException"},
		{rootARN, rootARN + "/certificate/0123abcd", "ResourceNotFoundException"},
		{rootARN, rootARN + "/certificate/XYZ", "InvalidArnException"},
		{rootARN, rootARN, "InvalidArnException"},
	}
	for _, tt := range tests {
		_, err := env.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &tt.ca, CertificateArn: &tt.cert})
		testenv.WantError(t, err, tt.code)
	}
}

// TestAuditRecord checks what an issuance and a revocation leave behind
// for the audit report: the certificate row, and the key-use log.
func TestAuditRecord(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Audit Root")
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{
		CommonName: "www.example.com", OrganizationalUnit: []string{"Sales"}, Organization: []string{"Example, Inc."}, Country: []string{"US"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: "1234"}},
	}})
	out, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: leaf.CSRPEM,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(7)}})
	if err != nil {
		t.Fatal(err)
	}
	requestID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	serial := (*out.CertificateArn)[strings.LastIndex(*out.CertificateArn, "/")+1:]
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &rootARN, CertificateSerial: &serial,
		RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	env.Stop(t)
	db := env.DB(t)
	var subject, template, requestedBy, reqID, reason string
	var revokedAt *int64
	if err := db.QueryRow(`SELECT subject, template_arn, requested_by, request_id, revoked_at, revocation_reason FROM certificates WHERE serial = ?`, serial).
		Scan(&subject, &template, &requestedBy, &reqID, &revokedAt, &reason); err != nil {
		t.Fatal(err)
	}
	// AWS prints subjects most specific first, with types RFC 2253 does
	// not name as OID=#hex.
	if want := `2.5.4.5=#130431323334,CN=www.example.com,OU=Sales,O=Example\, Inc.,C=US`; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	if template != tmplPrefix+"EndEntityCertificate/V1" || requestedBy == "" || reqID != requestID || revokedAt == nil || reason != "KEY_COMPROMISE" {
		t.Errorf("row: template %s, requested by %q, request %q (response %q), revoked %v %s", template, requestedBy, reqID, requestID, revokedAt, reason)
	}
	rows, err := db.Query(`SELECT seq, kind, serial FROM key_uses WHERE ca_id = ? ORDER BY seq`, rootARN[strings.LastIndex(rootARN, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for rows.Next() {
		var seq int
		var kind, s string
		rows.Scan(&seq, &kind, &s)
		log = append(log, fmt.Sprintf("%d:%s", seq, kind))
	}
	if got := strings.Join(log, " "); got != "0:CSR 1:ISSUE 2:IMPORT 3:ISSUE 4:REVOKE" {
		t.Errorf("key-use log %s", got)
	}
	// The import names the certificate, and chain, that the CA hands out,
	// and who imported them.
	var record []byte
	if err := db.QueryRow(`SELECT record FROM key_uses WHERE ca_id = ? AND seq = 2`, rootARN[strings.LastIndex(rootARN, "/")+1:]).Scan(&record); err != nil {
		t.Fatal(err)
	}
	var imported openpca.KeyUseRecord
	if err := json.Unmarshal(record, &imported); err != nil {
		t.Fatal(err)
	}
	var cert []byte
	if err := db.QueryRow(`SELECT certificate FROM certificate_authorities WHERE arn = ?`, rootARN).Scan(&cert); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(cert); imported.CertificateSHA256 != hex.EncodeToString(sum[:]) || imported.ChainSHA256 != "" || imported.RequestedBy != requestedBy || imported.RequestID == "" {
		t.Errorf("the import's record %s, of a certificate of SHA-256 %x imported by %s", record, sum, requestedBy)
	}
}

// TestFailClosed makes the key-use log refuse writes, and checks that no
// certificate is then returned or kept.
func TestFailClosed(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Closed Root")
	db := env.DB(t)
	count := func() (certs, uses int) {
		db.QueryRow(`SELECT COUNT(*) FROM certificates`).Scan(&certs)
		db.QueryRow(`SELECT COUNT(*) FROM key_uses`).Scan(&uses)
		return
	}
	certs, uses := count()
	if _, err := db.Exec(`CREATE TRIGGER refuse_key_uses BEFORE INSERT ON key_uses BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	out, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN,
		Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "never"}}).CSRPEM,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	if code, status := testenv.ErrorCode(err); code != "InternalFailure" || status != 500 {
		t.Fatalf("issuing with the audit log down: %v (%v), want InternalFailure", err, out)
	}
	if c, u := count(); c != certs || u != uses {
		t.Errorf("certificates %d→%d, key uses %d→%d: a certificate was kept without its record", certs, c, uses, u)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse_key_uses`); err != nil {
		t.Fatal(err)
	}
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "later"}}).CSRPEM})
}

// der is the base64 of v's DER, as a CustomExtension's value.
func der(t *testing.T, v any) *string {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return aws.String(base64.StdEncoding.EncodeToString(b))
}

// TestAuthorityKeyIDOfSameName: a certificate names the key that signed
// it by the issuing CA's key identifier (RFC 5280, 4.2.1.1: in all but
// self-signed certificates), also when its subject is the CA's own, as in
// a key rollover's certificate of a root's new key by its old one, which
// only the key identifiers tell apart from the roots' own. Go leaves it
// out when subject and issuer are the same.
func TestAuthorityKeyIDOfSameName(t *testing.T) {
	env := testenv.Start(t)
	oldARN, oldRoot := env.NewActiveRoot(t, "Example Root")
	newARN := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Example Root")
	out, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &newARN})
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{"SubordinateCACertificate_PathLen0/V1", "EndEntityCertificate/V1"} {
		certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &oldARN, Csr: []byte(*out.Csr),
			TemplateArn: aws.String(tmplPrefix + tmpl), Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
		c, _ := env.Certificate(t, oldARN, certARN)
		if !bytes.Equal(c.RawSubject, oldRoot.RawSubject) || !bytes.Equal(c.AuthorityKeyId, oldRoot.SubjectKeyId) {
			t.Errorf("%s: subject %s, authority key identifier %x, want the issuing CA's %x", tmpl, c.Subject, c.AuthorityKeyId, oldRoot.SubjectKeyId)
		}
	}
}

// TestEmailAndDomainComponentAttributes: emailAddress and domainComponent
// in ApiPassthrough.Subject's CustomAttributes are IA5Strings (RFC 5280,
// Appendix A.1), which OpenSSL requires of an emailAddress under a chain
// with name constraints: as UTF8Strings it refused the certificate.
func TestEmailAndDomainComponentAttributes(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"corp.example"} })
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	subCert := constraining.Sign(t, "Sub", env.CSR(t, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: subCert.PEM, CertificateChain: append(slices.Clone(constraining.PEM), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
		Csr:         testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr"}}).CSRPEM,
		TemplateArn: aws.String(tmplPrefix + "EndEntityClientAuthCertificate_APIPassthrough/V1"),
		ApiPassthrough: &types.ApiPassthrough{
			Subject: &types.ASN1Subject{CustomAttributes: []types.CustomAttribute{
				{ObjectIdentifier: aws.String("0.9.2342.19200300.100.1.25"), Value: aws.String("example")},
				{ObjectIdentifier: aws.String("2.5.4.3"), Value: aws.String("alice")},
				{ObjectIdentifier: aws.String("1.2.840.113549.1.9.1"), Value: aws.String("alice@corp.example")},
			}},
			Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("alice.corp.example")}}},
		}})
	leaf, chain := env.Certificate(t, sub, certARN)
	type attribute struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type rdnSET []attribute // encoding/asn1 reads a type named ...SET as a SET OF
	var rdns []rdnSET
	if _, err := asn1.Unmarshal(leaf.RawSubject, &rdns); err != nil {
		t.Fatal(err)
	}
	var raw []attribute
	for _, set := range rdns {
		raw = append(raw, set...)
	}
	for _, a := range raw {
		if s := a.Type.String(); (s == "1.2.840.113549.1.9.1" || s == "0.9.2342.19200300.100.1.25") && a.Value.Tag != asn1.TagIA5String {
			t.Errorf("attribute %s has tag %d, want IA5String", s, a.Value.Tag)
		}
	}
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", "CERTIFICATE", root.Cert.Raw)
	var untrusted [][]byte
	for _, c := range chain[:len(chain)-1] {
		untrusted = append(untrusted, c.Raw)
	}
	writePEM(t, dir, "chain.pem", "CERTIFICATE", untrusted...)
	writePEM(t, dir, "leaf.pem", "CERTIFICATE", leaf.Raw)
	if out, ok := openssl(t, dir, "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"); !ok {
		t.Errorf("openssl verify:\n%s", out)
	}
	// An emailAddress that is no IA5String is refused.
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub,
		Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr"}}).CSRPEM,
		TemplateArn:      aws.String(tmplPrefix + "EndEntityClientAuthCertificate_APIPassthrough/V1"),
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
		ApiPassthrough: &types.ApiPassthrough{Subject: &types.ASN1Subject{CustomAttributes: []types.CustomAttribute{
			{ObjectIdentifier: aws.String("1.2.840.113549.1.9.1"), Value: aws.String("älice@corp.example")}}}}})
	testenv.WantError(t, err, "InvalidArgsException")
}

// TestNamelessRequests: a CSR must name its subject, or give alternative
// names (AWS, IssueCertificate), and a subject of one empty RDN, which
// RFC 5280 does not allow, names nobody as the empty one does. An empty
// alternative names extension given through the API is the API's fault,
// not the CSR's.
func TestNamelessRequests(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Nameless Root")
	validity := &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}
	for name, raw := range map[string][]byte{"empty": {0x30, 0x00}, "one empty RDN": {0x30, 0x02, 0x31, 0x00}} {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
			Csr:              testenv.NewLeaf(t, &x509.CertificateRequest{RawSubject: raw}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: validity})
		if code, _ := testenv.ErrorCode(err); code != "MalformedCSRException" {
			t.Errorf("a subject %s: %v, want MalformedCSRException", name, err)
		}
	}
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
		Csr:         testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, DNSNames: []string{"a.example"}}).CSRPEM,
		TemplateArn: aws.String(tmplPrefix + "BlankEndEntityCertificate_APIPassthrough/V1"),
		ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: []types.CustomExtension{
			{ObjectIdentifier: aws.String("2.5.29.17"), Value: aws.String("MAA=")}}}}, // SEQUENCE {}
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: validity})
	testenv.WantError(t, err, "InvalidArgsException")
}

// TestShortLivedIssuesNoCA: a CA in SHORT_LIVED_CERTIFICATE mode is the
// last CA of its hierarchy, as AWS documents ("Short-lived certificates
// must be the last CA in the certificate hierarchy"): it issues no CA
// certificate, even one valid for 7 days.
func TestShortLivedIssuesNoCA(t *testing.T) {
	env := testenv.Start(t)
	ca := newShortLivedRoot(t, env)
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Below a short-lived CA")
	csr, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &sub})
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{subCA, tmplPrefix + "BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1"} {
		_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: []byte(*csr.Csr),
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, TemplateArn: aws.String(tmpl),
			Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(7)}})
		testenv.WantError(t, err, "ValidationException")
	}
	// End-entity certificates it issues as before.
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca,
		Csr:      testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "short.example"}}).CSRPEM,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(7)}})
}

// TestRootAPIPassthroughAuthorityKeyID: AWS's definition of
// RootCACertificate_APIPassthrough/V1 gives the authority key identifier
// as "[Passthrough from API]"; it was dropped.
func TestRootAPIPassthroughAuthorityKeyID(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "AKI Root")
	csr, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	keyID := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	aki, err := asn1.Marshal(struct {
		ID []byte `asn1:"optional,tag:0"`
	}{keyID})
	if err != nil {
		t.Fatal(err)
	}
	certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &arn, Csr: []byte(*csr.Csr),
		TemplateArn: aws.String(tmplPrefix + "RootCACertificate_APIPassthrough/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(10)},
		ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: []types.CustomExtension{
			{ObjectIdentifier: aws.String("2.5.29.35"), Value: aws.String(base64.StdEncoding.EncodeToString(aki))}}}},
	})
	root, _ := env.Certificate(t, arn, certARN)
	if !bytes.Equal(root.AuthorityKeyId, keyID) {
		t.Fatalf("authority key identifier %x, want %x from the API passthrough", root.AuthorityKeyId, keyID)
	}
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})}); err != nil {
		t.Fatalf("importing the root certificate: %v", err)
	}
}

// TestCSRAltNameEntries: AWS Private CA refuses, with a
// MalformedCSRException, a request whose certificate would have "a SAN
// entry that's empty, that contains only whitespace, or that contains a
// control character" (user guide, Certificate request validation), and
// RFC 5280 (4.2.1.6) forbids empty GeneralNames. A CSR's DNS names and
// email addresses were checked; its URIs and directory names were not,
// and went into the certificate as they came.
func TestCSRAltNameEntries(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "SAN Entries Root")
	gn := func(tag int, compound bool, b []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: b}
	}
	nulName, err := asn1.Marshal(pkix.Name{CommonName: "bank.example\x00.evil.example"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		entry asn1.RawValue
	}{
		{"an empty URI", gn(6, false, []byte(""))},
		{"a URI of spaces", gn(6, false, []byte("   "))},
		{"an empty directory name", gn(4, true, []byte{0x30, 0x00})},
		{"a directory name with a NUL", gn(4, true, nulName)},
		{"a URI that is not absolute", gn(6, false, []byte("not a uri"))},
		{"an EDI party name empty", gn(5, true, []byte{0xa1, 0x02, 0x0c, 0x00})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			san, err := asn1.Marshal([]asn1.RawValue{gn(2, false, []byte("ok.example")), tt.entry})
			if err != nil {
				t.Fatal(err)
			}
			csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok.example"},
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}}}).CSRPEM
			out, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr,
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			if err == nil {
				t.Fatalf("issued %s, whose subject alternative names have %s", *out.CertificateArn, tt.name)
			}
			testenv.WantError(t, err, "MalformedCSRException")
		})
	}
}

// TestAPIPassthroughAltNameEntries: the same validation applies to
// what the API passthrough gives: "If the value comes from API
// passthrough, correct the API passthrough values" (user guide,
// MalformedCSRException with X.509 certificate condition keys). Such
// entries were refused as InvalidArgsException.
func TestAPIPassthroughAltNameEntries(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "API SAN Entries Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok.example"}}).CSRPEM
	blankDNS, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("  ")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ext  *types.Extensions
	}{
		{"a blank DnsName", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("  ")}}}},
		{"a DnsName with a line break", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("a\nb.example")}}}},
		{"a URI with a tab", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{UniformResourceIdentifier: aws.String("https://a\tb.example/")}}}},
		{"a URI that is not absolute", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{UniformResourceIdentifier: aws.String("not a uri")}}}},
		{"an empty EDI party", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{EdiPartyName: &types.EdiPartyName{PartyName: aws.String("")}}}}},
		{"a blank EDI name assigner", &types.Extensions{SubjectAlternativeNames: []types.GeneralName{{EdiPartyName: &types.EdiPartyName{PartyName: aws.String("p"), NameAssigner: aws.String(" ")}}}}},
		{"a custom extension's blank DNS name", &types.Extensions{CustomExtensions: []types.CustomExtension{
			{ObjectIdentifier: aws.String("2.5.29.17"), Value: aws.String(base64.StdEncoding.EncodeToString(blankDNS))}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr,
				TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"), ApiPassthrough: &types.ApiPassthrough{Extensions: tt.ext},
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			testenv.WantError(t, err, "MalformedCSRException")
		})
	}
}

// TestAPIPassthroughLongOIDs: object identifiers with numbers of 2^31 and
// more (2.25.<a UUID>), which Go's x509 reads in certificate policies and
// skips in other names and registered ids, are issued there, as AWS
// issues them; elsewhere, where the certificate would not read back, they
// are InvalidArgsException saying so. A policy named twice is refused
// before the certificate is signed, naming both.
func TestAPIPassthroughLongOIDs(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Long OIDs Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok.example"}}).CSRPEM
	const uuidOID = "2.25.329800735698586629295641978511506172918"
	issue := func(ext *types.Extensions) (*acmpca.IssueCertificateOutput, error) {
		return env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr,
			TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"), ApiPassthrough: &types.ApiPassthrough{Extensions: ext},
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	}
	out, err := issue(&types.Extensions{
		CertificatePolicies: []types.PolicyInformation{{CertPolicyId: aws.String(uuidOID)}, {CertPolicyId: aws.String("1.2.3")}},
		SubjectAlternativeNames: []types.GeneralName{{DnsName: aws.String("ok.example")}, {RegisteredId: aws.String("1.2.2147483648")},
			{OtherName: &types.OtherName{TypeId: aws.String("1.3.6.1.4.1.4294967296"), Value: aws.String("v")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := env.Certificate(t, rootARN, *out.CertificateArn)
	want, _ := x509.ParseOID(uuidOID)
	if len(cert.Policies) != 2 || !cert.Policies[0].Equal(want) || cert.Policies[1].String() != "1.2.3" {
		t.Errorf("policies %v, want %s and 1.2.3", cert.Policies, uuidOID)
	}
	for _, tt := range []struct {
		name string
		ext  *types.Extensions
		want string // in the message
	}{
		{"an extended key usage", &types.Extensions{ExtendedKeyUsage: []types.ExtendedKeyUsage{{ExtendedKeyUsageObjectIdentifier: aws.String(uuidOID)}}}, "above 2147483647"},
		{"a custom extension", &types.Extensions{CustomExtensions: []types.CustomExtension{{ObjectIdentifier: aws.String(uuidOID), Value: aws.String("BQA=")}}}, "above 2147483647"},
		{"a policy named twice", &types.Extensions{CertificatePolicies: []types.PolicyInformation{{CertPolicyId: aws.String("1.2.3")}, {CertPolicyId: aws.String("1.2.03")}}}, "policy 1's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := issue(tt.ext)
			testenv.WantError(t, err, "InvalidArgsException")
			if err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v, want it to say %q", err, tt.want)
			}
		})
	}
}
