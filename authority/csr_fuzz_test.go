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
	"encoding/pem"
	"net"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/template"
)

// signCSR makes a CSR of the CertificationRequestInfo tbs, signed with
// key: whatever tbs holds, the signature is over it, so that the fuzzer's
// CSRs get past the signature check as a client's would.
func signCSR(t testing.TB, tbs []byte, key *ecdsa.PrivateKey) []byte {
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
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: b.BytesOrPanic()})
}

// FuzzIssueCSR issues certificates, with every template, for CSRs whose
// content the fuzzer makes and the test signs. The server answers each
// with a certificate or an AWS error, never an internal failure; every
// certificate it issues parses, is signed by the CA, and certifies the
// CSR's key.
func FuzzIssueCSR(f *testing.F) {
	env := testenv.Start(f)
	caARN, root := env.NewActiveRoot(f, "Fuzz Root")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	templates := template.ARNs()
	for i, tmpl := range []*x509.CertificateRequest{
		{Subject: pkix.Name{CommonName: "seed.example", Organization: []string{"Example"}}, DNSNames: []string{"seed.example"}},
		{IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}, EmailAddresses: []string{"a@example.com"}},
		{Subject: pkix.Name{CommonName: "uri"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc"}},
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{3, 2, 5, 160}}}},
		{},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		for _, t := range []int{i, i + 17, i + 40} {
			f.Add(csr.RawTBSCertificateRequest, uint8(t%len(templates)))
		}
	}
	f.Fuzz(func(t *testing.T, tbs []byte, which uint8) {
		tmpl := templates[int(which)%len(templates)]
		in := &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: signCSR(t, tbs, key), TemplateArn: &tmpl,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}}
		if tt, _ := template.Lookup(tmpl); tt.UsesAPI() {
			in.ApiPassthrough = &types.ApiPassthrough{Subject: &types.ASN1Subject{CommonName: aws.String("api.example")}}
		}
		out, err := env.Client.IssueCertificate(t.Context(), in)
		if err != nil {
			if code, status := testenv.ErrorCode(err); code == "" || code == "InternalFailure" || status >= 500 {
				t.Fatalf("%s for %s: %v", code, tmpl, err)
			}
			return
		}
		cert, _ := env.Certificate(t, caARN, *out.CertificateArn)
		if tmpl != "arn:aws:acm-pca:::template/RootCACertificate/V1" && cert.CheckSignatureFrom(root) != nil {
			t.Fatalf("the certificate is not signed by its CA: %v", cert.CheckSignatureFrom(root))
		}
		csr, err := x509.ParseCertificateRequest(pemBytes(t, in.Csr))
		if err != nil {
			t.Fatalf("a certificate for a CSR that does not parse: %v", err)
		}
		if !csr.PublicKey.(*ecdsa.PublicKey).Equal(cert.PublicKey) {
			t.Fatal("the certificate does not certify the CSR's key")
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
