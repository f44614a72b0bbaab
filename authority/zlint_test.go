package authority_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/race"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/template"
)

// lintSources are the zlint sources that bind a private CA: RFC 5280 and
// the RFCs that refine it for the keys and names we write (3279, 5480,
// 5891, 8813), RFC 6960 for OCSP answers, and the community's lints. The
// others are the rules of publicly trusted PKI (the CA/Browser Forum's,
// the root programs of Mozilla, Apple and Chrome, ETSI) and Certificate
// Transparency (RFC 6962), which a private CA is not part of.
var lintSources = lint.SourceList{lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC6960, lint.RFC8813, lint.Community}

// awsDemands are the findings AWS's own templates make unavoidable, by
// lint and then template name (without its variety), listed in the README:
// EndEntityClientAuthCertificate/V1 fixes key encipherment beside digital
// signature, which zlint finds inconsistent with clientAuth alone for an
// RSA key (for an EC key OpenPCA leaves key encipherment out).
var awsDemands = map[string][]string{
	"e_key_usage_and_extended_key_usage_inconsistent": {"EndEntityClientAuthCertificate"},
}

// lintFindings returns the lints of results that end in an error or
// worse, "name: details", but those AWS demands of template.
func lintFindings(t *testing.T, template string, results *zlint.ResultSet) []string {
	t.Helper()
	var out []string
	for name, r := range results.Results {
		demanded := slices.ContainsFunc(awsDemands[name], func(prefix string) bool {
			return template == prefix || strings.HasPrefix(template, prefix+"_")
		})
		if (r.Status == lint.Error || r.Status == lint.Fatal) && !demanded {
			out = append(out, fmt.Sprintf("%s (%s): %s", name, r.Status, r.Details))
		}
	}
	sort.Strings(out)
	return out
}

// TestZlint: every one of the 61 templates, from an EC, an RSA and an
// ML-DSA CA, for EC, RSA and ML-DSA keys, makes certificates in which no
// lint of lintSources finds an error, but those AWS's templates demand
// (awsDemands); so do the CAs' own self-signed certificates, their CRLs,
// their OCSP answers and their OCSP responders' certificates. Key encipherment, which AWS's end-entity templates
// name, is in the certificates of RSA keys alone.
func TestZlint(t *testing.T) {
	race.Skip(t)
	registry, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lintSources})
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	mlKey, err := pki.GenerateKey(openpca.KeyAlgorithmMlDsa65)
	if err != nil {
		t.Fatal(err)
	}
	// CSRs as their users would send them; one for a CA carries a CA's key
	// usage, which blank CA templates with CSR passthrough take from it.
	caUsage, err := pki.KeyUsageBitsExtension(x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature)
	if err != nil {
		t.Fatal(err)
	}
	csrs := map[bool]map[string][]byte{}
	for _, ca := range []bool{false, true} {
		req := func(name string) *x509.CertificateRequest {
			r := &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}
			if ca {
				r.ExtraExtensions = []pkix.Extension{caUsage}
			} else {
				r.DNSNames = []string{name}
			}
			return r
		}
		rsaCSR, _ := x509.CreateCertificateRequest(rand.Reader, req("rsa.example"), rsaKey)
		mlCSR, err := pki.CreateCertificateRequest(mlKey, req("ml-dsa.example"))
		if err != nil {
			t.Fatal(err)
		}
		csrs[ca] = map[string][]byte{
			"EC key":     testenv.NewLeaf(t, req("ec.example")).CSRPEM,
			"RSA key":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: rsaCSR}),
			"ML-DSA key": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: mlCSR}),
		}
	}
	lintCert := func(t *testing.T, template, what string, der []byte) {
		t.Helper()
		c, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("%s: zcrypto does not parse it: %v", what, err)
		}
		if std, err := x509.ParseCertificate(der); err == nil && !c.SelfSigned && bytes.Equal(std.RawIssuer, std.RawSubject) {
			// zcrypto cannot check an ML-DSA signature, so it does not
			// know a root's self-signature holds; pki can.
			c.SelfSigned = pki.CheckSignatureFrom(std, std) == nil
		}
		if f := lintFindings(t, template, zlint.LintCertificateEx(c, registry)); len(f) > 0 {
			t.Errorf("%s:\n  %s", what, strings.Join(f, "\n  "))
		}
	}
	for _, family := range []types.KeyAlgorithm{types.KeyAlgorithmEcPrime256v1, types.KeyAlgorithmRsa2048, types.KeyAlgorithmMlDsa65} {
		t.Run(string(family), func(t *testing.T) {
			out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(family, "Linted Root"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
				RevocationConfiguration: &types.RevocationConfiguration{
					CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")},
					OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
				}})
			if err != nil {
				t.Fatal(err)
			}
			caARN := *out.CertificateAuthorityArn
			root := env.ActivateRoot(t, caARN)
			lintCert(t, "RootCACertificate", "the root's own certificate", root.Raw)
			rootCSR, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &caARN})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
			sigAlg := d.CertificateAuthority.CertificateAuthorityConfiguration.SigningAlgorithm

			var issued []string
			for _, arn := range template.ARNs() {
				tmpl, _ := template.Lookup(arn)
				requests := csrs[tmpl.CA]
				if tmpl.Root {
					requests = map[string][]byte{"the CA's key": []byte(*rootCSR.Csr)}
				}
				for keyName, csr := range requests {
					// What a user of the template gives its API passthrough:
					// a CA's key usage to a CA template, a TLS server's to
					// the others (key encipherment for an RSA key only).
					api := &types.ApiPassthrough{Extensions: &types.Extensions{
						KeyUsage:         &types.KeyUsage{DigitalSignature: true, KeyEncipherment: keyName == "RSA key"},
						ExtendedKeyUsage: []types.ExtendedKeyUsage{{ExtendedKeyUsageType: types.ExtendedKeyUsageTypeServerAuth}},
					}}
					if tmpl.CA {
						api = &types.ApiPassthrough{Extensions: &types.Extensions{KeyUsage: &types.KeyUsage{KeyCertSign: true, CRLSign: true, DigitalSignature: true}}}
					}
					if !tmpl.UsesAPI() {
						api = nil
					}
					certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr, TemplateArn: aws.String(arn),
						SigningAlgorithm: sigAlg, ApiPassthrough: api, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
					c, _ := env.Certificate(t, caARN, certARN)
					lintCert(t, tmpl.Name, fmt.Sprintf("%s (%s)", tmpl.Name, keyName), c.Raw)
					if !tmpl.Blank && tmpl.KeyUsage&x509.KeyUsageKeyEncipherment != 0 && (c.KeyUsage&x509.KeyUsageKeyEncipherment != 0) != (keyName == "RSA key") {
						t.Errorf("%s (%s): key usage %v: key encipherment is for RSA keys alone", tmpl.Name, keyName, c.KeyUsage)
					}
					issued = append(issued, certARN)
				}
			}

			// A revocation, then the CRL that lists it and the OCSP answers.
			first, _ := env.Certificate(t, caARN, issued[0])
			if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
				CertificateSerial: aws.String(first.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
				t.Fatal(err)
			}
			crl, err := zx509.ParseRevocationList(crlListing(t, env, "crls", caARN, first.SerialNumber))
			if err != nil {
				t.Fatalf("zcrypto does not parse the CRL: %v", err)
			}
			if f := lintFindings(t, "", zlint.LintRevocationListEx(crl, registry)); len(f) > 0 {
				t.Errorf("the CRL:\n  %s", strings.Join(f, "\n  "))
			}
			for _, certARN := range issued[:2] {
				c, _ := env.Certificate(t, caARN, certARN)
				der, err := post(env.URL+"/ocsp", ocspRequest(t, root, c.SerialNumber))
				if err != nil {
					t.Fatal(err)
				}
				issuer := root // whose signature ParseResponse checks; it cannot check ML-DSA's (TestMLDSA does)
				if family == types.KeyAlgorithmMlDsa65 {
					issuer = nil
				}
				resp, err := ocsp.ParseResponse(der, issuer)
				if err != nil {
					t.Fatal(err)
				}
				if f := lintFindings(t, "", zlint.LintOcspResponseEx(resp, registry)); len(f) > 0 {
					t.Errorf("the OCSP answer for %s:\n  %s", certARN, strings.Join(f, "\n  "))
				}
				if resp.Certificate != nil {
					lintCert(t, "", "the OCSP responder's certificate", resp.Certificate.Raw)
				}
			}
		})
	}
}
