package authority_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
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
	if err != nil || c.RequestedBy != openpca.ResponderPrincipal {
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

// importedOCSPCA is a subordinate CA named cn, answering OCSP, whose
// certificate an external CA issued as change makes it.
func importedOCSPCA(t *testing.T, env *testenv.Env, parent *testenv.ExternalCA, chain []byte, cn string, change ...func(*x509.Certificate)) *ocspEnv {
	t.Helper()
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, cn)
	cert := parent.Sign(t, cn, env.CSR(t, sub).PublicKey, parent.Cert.NotAfter.Add(-time.Hour), change...)
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &sub, Certificate: cert.PEM, CertificateChain: chain}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &sub,
		RevocationConfiguration: &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}}}); err != nil {
		t.Fatal(err)
	}
	return &ocspEnv{env: env, caARN: sub, root: cert.Cert}
}

// TestOCSPResponderWithheld: where a responder is not to be relied on,
// or its CA may not issue, the CA signs its answers itself, and logs
// them, however often it is asked: a CA whose chain constrains names, one
// whose certificate's key identifier is not its key's own (a renewal
// could change it under the responders' authority key identifier), one
// whose certificate has not begun on the server's clock, and a disabled
// CA without a responder. A CA named as a responder would be gets a
// responder named apart, which names its issuer's key.
func TestOCSPResponderWithheld(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.OCSPUnknownRate = 1e6 })
	root := testenv.NewExternalRoot(t, "Root")
	constraining := root.NewIntermediate(t, "Constraining", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"corp.example"} })
	ownKey := importedOCSPCA(t, env, root, root.PEM, "Own key id", func(c *x509.Certificate) { c.SubjectKeyId = []byte{1, 1, 1, 1} })
	early := importedOCSPCA(t, env, root, root.PEM, "Early", func(c *x509.Certificate) { c.NotBefore = env.Clock.Now().Truncate(time.Second) })
	disabled := importedOCSPCA(t, env, root, root.PEM, "Disabled")
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &disabled.caARN,
		Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		e    *ocspEnv
	}{
		{"constrained", importedOCSPCA(t, env, constraining, append(append([]byte{}, constraining.PEM...), root.PEM...), "Sub")},
		{"own key id", ownKey},
		{"disabled", disabled},
		{"not yet begun", early}, // last: the clock steps back for it
	} {
		name, e := c.name, c.e
		if e == early {
			env.Clock.Advance(-30 * time.Second)
		}
		t.Run(name, func(t *testing.T) {
			for i := range 3 {
				if resp, r := e.responderOf(t, big.NewInt(int64(0xbad+i))); resp.Status != ocsp.Unknown || r != nil {
					t.Errorf("status %d, signed by a responder %v", resp.Status, r)
				}
			}
			if kinds := logKinds(t, env, e.caARN); count(kinds, openpca.KeyUseOCSP) != 3 || count(kinds, openpca.KeyUseIssue) != 0 {
				t.Errorf("the CA's log: %v, want its three answers and no issuance", kinds)
			}
		})
	}

	// Names OpenSSL takes for "OCSP responder" (RFC 5280, 7.1).
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", "CERTIFICATE", root.Cert.Raw)
	for i, cn := range []string{"OCSP responder", "OCSP  responder", "ocsp RESPONDER"} {
		named := importedOCSPCA(t, env, root, root.PEM, cn)
		for j := range 3 {
			_, r := named.responderOf(t, big.NewInt(int64(0xbad+j)))
			if r == nil || r.Subject.CommonName != "Delegated OCSP responder" || !bytes.Equal(r.AuthorityKeyId, named.root.SubjectKeyId) {
				t.Fatalf("the responder of a CA named %q: %v", cn, r)
			}
		}
		if kinds := logKinds(t, env, named.caARN); count(kinds, openpca.KeyUseIssue) != 1 || count(kinds, openpca.KeyUseOCSP) != 0 {
			t.Errorf("the log of a CA named %q: %v, want one issuance", cn, kinds)
		}
		sub := fmt.Sprintf("sub%d.pem", i)
		writePEM(t, dir, sub, "CERTIFICATE", named.root.Raw)
		if out, _ := openssl(t, dir, "ocsp", "-issuer", sub, "-serial", "0xbad", "-url", env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce"); !strings.Contains(out, "Response verify OK") {
			t.Errorf("openssl ocsp of the CA named %q:\n%s", cn, out)
		}
	}
}

// TestOCSPResponderPaced: while a CA's key store is away, a server whose
// responder has ended tries to issue the next once a minute, not at every
// request (each try makes a key), and answers tryLater meanwhile; once the
// store is back, the next is issued.
func TestOCSPResponderPaced(t *testing.T) {
	kms := testenv.StartKMS(t)
	var logs testenv.SyncBuffer
	e := newOCSPEnv(t, kms.Use(t), func(c *app.Config) {
		c.OCSPUnknownRate = 1e6
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	_, first := e.responderOf(t, e.cert.SerialNumber)
	if first == nil {
		t.Fatal("no responder")
	}
	tries := func() int { return strings.Count(logs.String(), "issuing an OCSP responder") }
	kms.Stop(t)
	e.env.Clock.Advance(49 * time.Hour) // the first ends within a day
	for i := range 3 {
		if body := e.ask(t, big.NewInt(int64(0xbad+i))); !bytes.Equal(body, ocsp.TryLaterErrorResponse) {
			t.Errorf("with the key store away: %x, want tryLater", body)
		}
	}
	if n := tries(); n != 1 {
		t.Errorf("%d tries to issue a responder within a minute, want 1", n)
	}
	e.env.Clock.Advance(61 * time.Second)
	e.ask(t, big.NewInt(0xbad3))
	if n := tries(); n != 2 {
		t.Errorf("%d tries a minute on, want 2", n)
	}
	kms.Start(t)
	e.env.Clock.Advance(61 * time.Second)
	if _, next := e.responderOf(t, big.NewInt(0xbad4)); next == nil || next.Equal(first) {
		t.Errorf("once the key store is back: responder %v", next)
	}
}

// TestOCSPResponderIssuedBeforeStop: a server stopping waits for the
// issuance of a responder that a request began, and its store records it:
// the CA's key signed it. (An RSA-4096 key takes long enough to make that
// the stop comes first.)
func TestOCSPResponderIssuedBeforeStop(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.OCSPUnknownRate = 1e6 })
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmRsa4096, "RSA Root"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
		RevocationConfiguration: &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &ocspEnv{env: env, caARN: *out.CertificateAuthorityArn}
	e.root = env.ActivateRoot(t, e.caARN)
	if _, r := e.responderOf(t, big.NewInt(0xbad)); r == nil {
		t.Fatal("no responder")
	}
	env.Clock.Advance(37 * time.Hour)
	if _, r := e.responderOf(t, big.NewInt(0xbad1)); r == nil { // begins the next one's issuance
		t.Fatal("no responder")
	}
	env.Stop(t)
	if kinds := logKinds(t, env, e.caARN); count(kinds, openpca.KeyUseIssue) != 3 { // its own, two responders
		t.Errorf("the log after the stop: %v, want the next responder's issuance", kinds)
	}
}

// TestOCSPKeptAnswersFollowTheCACertificate: an answer a responder signed
// is kept (in memory and in the store) only while the CA's certificate in
// use has the key identifier the responder names as its issuer's. A
// renewal keeps the identifier (one that changes it is refused:
// TestRenewalKeepsStatus), so the answer kept is served after it, and
// OpenSSL takes it with the renewed certificate.
func TestOCSPKeptAnswersFollowTheCACertificate(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	e := importedOCSPCA(t, env, root, root.PEM, "Renewed")
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "issued.example"}})
	e.cert, _ = env.Certificate(t, e.caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &e.caARN, Csr: leaf.CSRPEM}))
	first := e.ask(t, e.cert.SerialNumber)
	if _, r := e.responderOf(t, e.cert.SerialNumber); r == nil {
		t.Fatal("no responder")
	}
	if again := e.ask(t, e.cert.SerialNumber); !bytes.Equal(again, first) {
		t.Fatal("the answer is not kept")
	}

	renewed := root.Sign(t, "Renewed", env.CSR(t, e.caARN).PublicKey, root.Cert.NotAfter.Add(-time.Hour))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &e.caARN, Certificate: renewed.PEM, CertificateChain: root.PEM}); err != nil {
		t.Fatal(err)
	}
	e.root = renewed.Cert
	if again := e.ask(t, e.cert.SerialNumber); !bytes.Equal(again, first) {
		t.Error("after a renewal that keeps the key identifier, the answer kept is not served")
	}
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", "CERTIFICATE", root.Cert.Raw)
	writePEM(t, dir, "ca.pem", "CERTIFICATE", renewed.Cert.Raw)
	writePEM(t, dir, "leaf.pem", "CERTIFICATE", e.cert.Raw)
	if out, _ := openssl(t, dir, "ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-url", env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce"); !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "leaf.pem: good") {
		t.Errorf("openssl ocsp after the renewal:\n%s", out)
	}
}
