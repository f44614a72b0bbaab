package authority_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/net/idna"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/template"
)

// signCSR makes a CSR of the CertificationRequestInfo tbs, signed with
// key: whatever tbs holds, the signature is over it, so that the fuzzer's
// CSRs get past the signature check as a client's would.
func signCSR(t testing.TB, tbs []byte, key *ecdsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: signTBS(t, tbs, key)})
}

// signTBS wraps tbs, a CSR's or a certificate's to-be-signed part, with
// its ECDSA signature by key, as both are signed.
func signTBS(t testing.TB, tbs []byte, key crypto.Signer) []byte {
	t.Helper()
	digest := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}) // ecdsa-with-SHA256
		})
		b.AddASN1BitString(sig)
	})
	return b.BytesOrPanic()
}

// FuzzIssueCSR issues certificates, with every template, for CSRs whose
// content the fuzzer makes and the test signs, with what the fuzzer puts
// in ApiPassthrough (as JSON), from three CAs: a root, a subordinate under
// a chain that constrains names, and a root that publishes CRLs and
// answers OCSP. The server answers each with a certificate or an AWS
// error, never an internal failure; every certificate it issues parses,
// is signed by the CA, certifies the CSR's key, and keeps within the
// names its chain permits.
func FuzzIssueCSR(f *testing.F) {
	env := testenv.Start(f)
	root, rootCert := env.NewActiveRoot(f, "Fuzz Root")
	external := testenv.NewExternalRoot(f, "Fuzz External Root")
	constraining := external.NewIntermediate(f, "Constraining", func(c *x509.Certificate) {
		c.PermittedDNSDomains, c.PermittedEmailAddresses, c.PermittedURIDomains = []string{"corp.example"}, []string{"corp.example"}, []string{"corp.example"}
		c.ExcludedIPRanges = []*net.IPNet{{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)}}
	})
	sub := env.CreateCA(f, types.CertificateAuthorityTypeSubordinate, "Constrained")
	subCert := constraining.Sign(f, "Constrained", env.CSR(f, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(f.Context(), &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: subCert.PEM, CertificateChain: append(append([]byte{}, constraining.PEM...), external.PEM...)}); err != nil {
		f.Fatal(err)
	}
	makeLocalBucket(f, env, "fuzz-crls")
	published, err := env.Client.CreateCertificateAuthority(f.Context(), &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType: types.CertificateAuthorityTypeRoot, CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Published"),
		RevocationConfiguration: &types.RevocationConfiguration{
			CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("fuzz-crls"), ExpirationInDays: aws.Int32(7)},
			OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true), OcspCustomCname: aws.String("ocsp.corp.example")}}})
	if err != nil {
		f.Fatal(err)
	}
	publishedCert := env.ActivateRoot(f, *published.CertificateAuthorityArn)
	type issuer struct {
		arn   string
		cert  *x509.Certificate
		roots *x509.CertPool // the chain's root, where names are constrained
		chain *x509.CertPool
	}
	issuers := []issuer{{arn: root, cert: rootCert}, {arn: sub, cert: subCert.Cert, roots: x509.NewCertPool(), chain: x509.NewCertPool()},
		{arn: *published.CertificateAuthorityArn, cert: publishedCert}}
	issuers[1].roots.AddCert(external.Cert)
	issuers[1].chain.AddCert(constraining.Cert)
	issuers[1].chain.AddCert(subCert.Cert)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	templates := template.ARNs()
	apis := []string{
		``,
		`{"Extensions":{"SubjectAlternativeNames":[]}}`,
		`{"Extensions":{"SubjectAlternativeNames":[{"DnsName":"app.corp.example"},{"Rfc822Name":"a@corp.example"},{"UniformResourceIdentifier":"spiffe://corp.example/svc"},{"IpAddress":"10.1.2.3"}]}}`,
		`{"Subject":{"CommonName":"api.corp.example","CustomAttributes":[{"ObjectIdentifier":"1.2.840.113549.1.9.1","Value":"a@corp.example"},{"ObjectIdentifier":"0.9.2342.19200300.100.1.25","Value":"corp"}]}}`,
		`{"Extensions":{"KeyUsage":{"DigitalSignature":true},"ExtendedKeyUsage":[{"ExtendedKeyUsageType":"SERVER_AUTH"},{"ExtendedKeyUsageObjectIdentifier":"1.3.6.1.5.5.7.3.9"}],` +
			`"CertificatePolicies":[{"CertPolicyId":"2.5.29.32.0","PolicyQualifiers":[{"PolicyQualifierId":"CPS","Qualifier":{"CpsUri":"https://corp.example/cps"}}]}],` +
			`"CustomExtensions":[{"ObjectIdentifier":"1.3.6.1.4.1.99999.1","Value":"BQA=","Critical":true}]}}`,
		`{"Subject":{"Country":"US","Organization":"Corp","CommonName":"x"},"Extensions":{"SubjectAlternativeNames":[{"DirectoryName":{"CommonName":"dir"}},` +
			`{"OtherName":{"TypeId":"1.3.6.1.4.1.311.20.2.3","Value":"upn@corp.example"}},{"EdiPartyName":{"PartyName":"p","NameAssigner":"n"}},{"RegisteredId":"1.2.3.4"}]}}`,
		`{"Extensions":{"SubjectAlternativeNames":[{"OtherName":{"TypeId":"1.3.6.1.5.5.7.8.9","Value":"jörg@corp.example"}},{"IpAddress":"::ffff:192.0.2.1"}]}}`,
	}
	for i, tmpl := range []*x509.CertificateRequest{
		{Subject: pkix.Name{CommonName: "seed.example", Organization: []string{"Example"}}, DNSNames: []string{"seed.example"}},
		{IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}, EmailAddresses: []string{"a@example.com"}},
		{Subject: pkix.Name{CommonName: "uri"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc"}},
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{3, 2, 5, 160}}}},
		{Subject: pkix.Name{CommonName: "app.corp.example"}, DNSNames: []string{"app.corp.example"}},
		{},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		for j, t := range []int{i, i + 17, i + 40} {
			f.Add(csr.RawTBSCertificateRequest, uint8(t%len(templates)), uint8(i+j), apis[(i+j)%len(apis)])
		}
	}
	f.Fuzz(func(t *testing.T, tbs []byte, which, by uint8, api string) {
		tmpl, ca := templates[int(which)%len(templates)], issuers[int(by)%len(issuers)]
		in := &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca.arn, Csr: signCSR(t, tbs, key), TemplateArn: &tmpl,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}}
		var passthrough types.ApiPassthrough
		if json.Unmarshal([]byte(api), &passthrough) == nil {
			in.ApiPassthrough = &passthrough
		}
		if tt, _ := template.Lookup(tmpl); tt.UsesAPI() && (in.ApiPassthrough == nil || in.ApiPassthrough.Subject == nil) {
			if in.ApiPassthrough == nil {
				in.ApiPassthrough = &types.ApiPassthrough{}
			}
			in.ApiPassthrough.Subject = &types.ASN1Subject{CommonName: aws.String("api.corp.example")}
		}
		out, err := env.Client.IssueCertificate(t.Context(), in)
		if _, invalid := errors.AsType[smithy.InvalidParamsError](err); invalid {
			return // the client refused it, as it would refuse to send it to AWS
		}
		if err != nil {
			if code, status := testenv.ErrorCode(err); code == "" || code == "InternalFailure" || status >= 500 {
				t.Fatalf("%s for %s: %v", code, tmpl, err)
			}
			return
		}
		cert, _ := env.Certificate(t, ca.arn, *out.CertificateArn)
		if tmpl == "arn:aws:acm-pca:::template/RootCACertificate/V1" {
			return // signed by the CSR's key, as a root's own certificate is
		}
		if err := cert.CheckSignatureFrom(ca.cert); err != nil {
			t.Fatalf("the certificate is not signed by its CA: %v", err)
		}
		csr, err := x509.ParseCertificateRequest(pemBytes(t, in.Csr))
		if err != nil {
			t.Fatalf("a certificate for a CSR that does not parse: %v", err)
		}
		if !csr.PublicKey.(*ecdsa.PublicKey).Equal(cert.PublicKey) {
			t.Fatal("the certificate does not certify the CSR's key")
		}
		if ca.roots != nil {
			_, err := cert.Verify(x509.VerifyOptions{Roots: ca.roots, Intermediates: ca.chain, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok && e.Reason == x509.CANotAuthorizedForThisName {
				t.Fatalf("a certificate for names its chain does not permit: %v", err)
			}
			// What Go's verifier does not check as clients read it: an
			// IPv4-mapped address in the IPv4 range excluded, and an
			// internationalized email address's host.
			for _, ip := range cert.IPAddresses {
				if v4 := ip.To4(); v4 != nil && v4[0] == 10 {
					t.Fatalf("a certificate for %s, which its chain excludes", ip)
				}
			}
			for _, e := range cert.Extensions {
				if !e.Id.Equal(pki.OIDSubjectAltName) {
					continue
				}
				boxes, _ := pki.SmtpUTF8Mailboxes(e.Value)
				for _, box := range boxes {
					if host, err := idna.Lookup.ToASCII(box[strings.LastIndexByte(box, '@')+1:]); err != nil || !strings.EqualFold(host, "corp.example") {
						t.Fatalf("a certificate for the mailbox %q, which its chain does not permit", box)
					}
				}
			}
		}
	})
}

func pemBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("not PEM")
	}
	return block.Bytes
}
