package authority_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/smithy-go"

	"github.com/openpca/openpca/internal/testenv"
)

// FuzzImportChain imports a subordinate CA's certificate under a chain
// whose intermediate the fuzzer makes (its TBSCertificate, which the test
// signs with the chain's root key), with what the fuzzer puts between the
// chain's PEM blocks. The chain is an account holder's input that every
// issuance of the CA reads again. The server answers each import with
// success or an AWS error, never an internal failure; a chain it takes is
// the one GetCertificateAuthorityCertificate gives back, and the CA then
// issues under it, or refuses to with an AWS error.
func FuzzImportChain(f *testing.F) {
	env := testenv.Start(f)
	root := testenv.NewExternalRoot(f, "Fuzz Chain Root")
	sub := env.CreateCA(f, types.CertificateAuthorityTypeSubordinate, "Fuzz Chain Sub")
	subKey := env.CSR(f, sub).PublicKey
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	plain := root.Sign(f, "Fuzz Intermediate", interKey.Public(), root.Cert.NotAfter.Add(-time.Hour))
	for _, opt := range []func(*x509.Certificate){
		func(*x509.Certificate) {},
		func(c *x509.Certificate) {
			c.PermittedDNSDomains, c.PermittedEmailAddresses, c.PermittedURIDomains = []string{"corp.example"}, []string{"corp.example"}, []string{".corp.example"}
			c.ExcludedDNSDomains = []string{"bad.corp.example"}
			c.PermittedIPRanges = []*net.IPNet{{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)}}
			c.PermittedDNSDomainsCritical = true
		},
		func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true },
		func(c *x509.Certificate) { c.MaxPathLen = 1 },
		func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c.PolicyIdentifiers = []asn1.ObjectIdentifier{{2, 5, 29, 32, 0}}
		},
		func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature },
		func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Minute) },
	} {
		inter := root.Sign(f, "Fuzz Intermediate", interKey.Public(), root.Cert.NotAfter.Add(-time.Hour), opt)
		f.Add(inter.Cert.RawTBSCertificate, []byte("\n"))
	}
	f.Add(plain.Cert.RawTBSCertificate, []byte("text outside the blocks\n"))
	f.Add(plain.Cert.RawTBSCertificate, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	// A certificate between the blocks, the root again: a chain the server
	// takes, and gives back whole.
	f.Add(plain.Cert.RawTBSCertificate, root.PEM)
	leafCSR := testenv.NewLeaf(f, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app.corp.example"}, DNSNames: []string{"app.corp.example"}}).CSRPEM

	f.Fuzz(func(t *testing.T, tbs, sep []byte) {
		interDER := signTBS(t, tbs, root.Key)
		// The CA's certificate is signed by the intermediate's key, under
		// the intermediate if Go makes a certificate under it.
		parent := plain.Cert
		if inter, err := x509.ParseCertificate(interDER); err == nil && interKey.PublicKey.Equal(inter.PublicKey) {
			parent = inter
		}
		now := time.Now()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "Fuzz Chain Sub"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, parent, subKey, interKey)
		if err != nil {
			return // Go signs no certificate under this intermediate
		}
		interPEM, rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER}), root.PEM
		chain := append(append(append([]byte{}, interPEM...), sep...), rootPEM...)
		_, err = env.Client.ImportCertificateAuthorityCertificate(t.Context(), &acmpca.ImportCertificateAuthorityCertificateInput{
			CertificateAuthorityArn: &sub, Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), CertificateChain: chain})
		if _, invalid := errors.AsType[smithy.InvalidParamsError](err); invalid {
			return
		}
		if err != nil {
			if code, status := testenv.ErrorCode(err); code == "" || code == "InternalFailure" || status >= 500 {
				t.Fatalf("%s for the chain %q: %v", code, chain, err)
			}
			return
		}
		got, err := env.Client.GetCertificateAuthorityCertificate(t.Context(), &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &sub})
		if err != nil {
			t.Fatal(err)
		}
		// The chain taken is the CERTIFICATE blocks given, whatever sep
		// held: it may hold one.
		var want []byte
		for rest := chain; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			want = append(want, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
		}
		if want := strings.TrimSpace(string(want)); aws.ToString(got.CertificateChain) != want {
			t.Fatalf("the chain imported is\n%s\nand the CA gives\n%s", want, aws.ToString(got.CertificateChain))
		}
		out, err := env.Client.IssueCertificate(t.Context(), &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub, Csr: leafCSR,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		if err != nil {
			if code, status := testenv.ErrorCode(err); code == "" || code == "InternalFailure" || status >= 500 {
				t.Fatalf("%s issuing under the chain %q: %v", code, chain, err)
			}
			return
		}
		leaf, certChain := env.Certificate(t, sub, *out.CertificateArn)
		if len(certChain) < 2 || !bytes.Equal(certChain[len(certChain)-1].Raw, root.Cert.Raw) ||
			!slices.ContainsFunc(certChain, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, interDER) }) {
			t.Fatal("the issued certificate's chain does not end with the chain imported")
		}
		// A chain the server took, and issued under, is one a relying
		// party takes: the leaf verifies under the root through it.
		roots, inters := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root.Cert)
		for _, c := range certChain[:len(certChain)-1] {
			inters.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("the server took the chain %q and issued under it, and the certificate it issued does not verify: %v", chain, err)
		}
	})
}
