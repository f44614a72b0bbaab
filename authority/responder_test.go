package authority_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// responderOf asks e's responder about serial and returns the answer, as
// a relying party checks it against the CA's certificate, and the
// certificate of the responder that signed it (nil if the CA did).
func (e *ocspEnv) responderOf(t *testing.T, serial *big.Int) (*ocsp.Response, *x509.Certificate) {
	t.Helper()
	resp, err := ocsp.ParseResponse(e.ask(t, serial), e.root)
	if err != nil {
		t.Fatalf("the answer about %x does not verify: %v", serial, err)
	}
	return resp, resp.Certificate
}

// TestOCSPResponder: a CA's OCSP answers are signed by a delegated
// responder whose certificate the CA issues, logs and keeps as any other,
// marked for OCSP signing only and not to be checked; a server issues its
// next at half its life, while the one before still serves, and the CA
// signs itself when its own certificate ends too soon. OpenSSL takes the
// answers.
func TestOCSPResponder(t *testing.T) {
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPUnknownRate = 1e6 })
	before := logKinds(t, e.env, e.caARN)
	resp, first := e.responderOf(t, e.cert.SerialNumber)
	if resp.Status != ocsp.Good || first == nil {
		t.Fatalf("the answer: status %d, responder %v", resp.Status, first)
	}
	noCheck := slices.ContainsFunc(first.Extensions, func(x pkix.Extension) bool { return x.Id.String() == "1.3.6.1.5.5.7.48.1.5" && !x.Critical })
	issued := e.env.Clock.Now().Truncate(time.Second)
	switch {
	case first.IsCA || !first.BasicConstraintsValid:
		t.Error("the responder's certificate is a CA's, or says not")
	case first.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(first.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) || len(first.UnknownExtKeyUsage) > 0:
		t.Errorf("the responder may do more than sign OCSP answers: %v, %v, %v", first.KeyUsage, first.ExtKeyUsage, first.UnknownExtKeyUsage)
	case !noCheck:
		t.Error("the responder's certificate lacks id-pkix-ocsp-nocheck")
	case len(first.OCSPServer)+len(first.CRLDistributionPoints) > 0:
		t.Errorf("the responder's certificate says where to check it: %v, %v", first.OCSPServer, first.CRLDistributionPoints)
	case !first.NotBefore.Equal(issued.Add(-time.Hour)) || !first.NotAfter.Equal(issued.Add(72*time.Hour)):
		t.Errorf("the responder is valid from %v to %v, issued at %v", first.NotBefore, first.NotAfter, issued)
	case pki.KeyAlgorithmOf(first.PublicKey) != openpca.KeyAlgorithmEcPrime256v1 || bytes.Equal(first.RawSubjectPublicKeyInfo, e.root.RawSubjectPublicKeyInfo):
		t.Error("the responder's key is not a key of its own of the CA's algorithm")
	case bytes.Equal(first.RawSubject, e.root.RawSubject):
		t.Error("the responder is named as the CA")
	}
	// The certificate is the CA's issuance, logged and kept: its one key
	// use, however many answers.
	got, err := e.env.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &e.caARN,
		CertificateArn: aws.String(openpca.CertificateARN(e.caARN, pki.SerialHex(first.SerialNumber)))})
	if err != nil {
		t.Fatalf("GetCertificate of the responder's certificate: %v", err)
	}
	if block, _ := pem.Decode([]byte(*got.Certificate)); block == nil || !bytes.Equal(block.Bytes, first.Raw) {
		t.Errorf("GetCertificate of the responder's certificate: %s", *got.Certificate)
	}
	for i := range 5 {
		if resp, r := e.responderOf(t, big.NewInt(int64(0xbad0+i))); resp.Status != ocsp.Unknown || !r.Equal(first) {
			t.Errorf("a made-up serial: status %d, signed by another responder", resp.Status)
		}
	}
	if kinds := logKinds(t, e.env, e.caARN); !slices.Equal(kinds, append(before, openpca.KeyUseIssue)) {
		t.Errorf("the log after six answers: %v, want %v and the responder's issuance", kinds, before)
	}

	dir := t.TempDir()
	writePEM(t, dir, "root.pem", "CERTIFICATE", e.root.Raw)
	writePEM(t, dir, "leaf.pem", "CERTIFICATE", e.cert.Raw)
	if out, _ := openssl(t, dir, "ocsp", "-issuer", "root.pem", "-cert", "leaf.pem", "-url", e.env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce"); !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "leaf.pem: good") {
		t.Errorf("openssl ocsp does not take the responder's answer:\n%s", out)
	}

	// Past half its life the next is issued, and the first serves while
	// it is.
	e.env.Clock.Advance(36*time.Hour + time.Minute)
	next := first
	for i := int64(0); next.Equal(first) && i < 500; i++ {
		time.Sleep(20 * time.Millisecond)
		_, next = e.responderOf(t, big.NewInt(0xbad100+i)) // a serial no answer is kept for
	}
	if next.Equal(first) {
		t.Fatal("no next responder 36 hours on")
	}
	if kinds := logKinds(t, e.env, e.caARN); count(kinds, openpca.KeyUseIssue) != count(before, openpca.KeyUseIssue)+2 || count(kinds, openpca.KeyUseOCSP) != 0 {
		t.Errorf("the log after the next responder: %v", kinds)
	}
	a, err := app.OpenAdmin(ctx, e.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := a.Store.FindCertificate(ctx, e.caARN[strings.LastIndex(e.caARN, "/")+1:], pki.SerialHex(next.SerialNumber))
	if err != nil || c.RequestedBy != authority.ResponderPrincipal {
		t.Errorf("the next responder's certificate as kept: %+v, %v", c, err)
	}

	// A day before the CA's certificate ends, its responder ends with it;
	// within a day, the CA signs its answers itself, and logs them.
	e.env.Clock.Advance(e.root.NotAfter.Add(-36 * time.Hour).Sub(e.env.Clock.Now()))
	if _, r := e.responderOf(t, big.NewInt(0xbad1)); r == nil || !r.NotAfter.Equal(e.root.NotAfter) {
		t.Errorf("a responder 36 hours before the CA ends: %v", r)
	}
	e.env.Clock.Advance(24 * time.Hour)
	if _, r := e.responderOf(t, big.NewInt(0xbad2)); r != nil {
		t.Error("a responder signed an answer that outlives the CA's certificate")
	}
	if kinds := logKinds(t, e.env, e.caARN); kinds[len(kinds)-1] != openpca.KeyUseOCSP {
		t.Errorf("the CA's own answer is not logged: %v", kinds)
	}
}

// TestOCSPResponderUnderNameConstraints: a CA whose chain constrains
// names signs its OCSP answers itself, and logs them: its responder's name
// would have to satisfy the constraints.
func TestOCSPResponderUnderNameConstraints(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"corp.example"} })
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	cert := constraining.Sign(t, "Sub", env.CSR(t, sub).PublicKey, constraining.Cert.NotAfter.Add(-time.Hour))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: cert.PEM, CertificateChain: append(append([]byte{}, constraining.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &sub,
		RevocationConfiguration: &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}}}); err != nil {
		t.Fatal(err)
	}
	e := &ocspEnv{env: env, caARN: sub, root: cert.Cert}
	if resp, r := e.responderOf(t, big.NewInt(0xbad)); resp.Status != ocsp.Unknown || r != nil {
		t.Errorf("status %d, signed by a responder %v", resp.Status, r)
	}
	if kinds := logKinds(t, env, sub); kinds[len(kinds)-1] != openpca.KeyUseOCSP {
		t.Errorf("the CA's own answer is not logged: %v", kinds)
	}
}
