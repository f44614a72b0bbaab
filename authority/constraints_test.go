package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// underChain returns a subordinate CA of env, named cn, whose certificate
// an intermediate of root that constrain shapes signed.
func underChain(t *testing.T, env *testenv.Env, root *testenv.ExternalCA, cn string, constrain func(*x509.Certificate)) string {
	t.Helper()
	issuer := root.NewIntermediate(t, "Constraining "+cn, constrain)
	ca := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, cn)
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &ca,
		Certificate:      issuer.Sign(t, cn, env.CSR(t, ca).PublicKey, issuer.Cert.NotAfter.Add(-time.Hour)).PEM,
		CertificateChain: append(append([]byte{}, issuer.PEM...), root.PEM...)}); err != nil {
		t.Fatal(err)
	}
	return ca
}

// wantAllowed issues from ca, a CA under a chain that under describes,
// a certificate for each name of allowed, named in the CSR as as makes
// it, and reports each issued or refused otherwise than allowed says.
func wantAllowed(t *testing.T, env *testenv.Env, ca, under string, as func(*testing.T, string) *x509.CertificateRequest, allowed map[string]bool) {
	t.Helper()
	for name, ok := range allowed {
		req := as(t, name)
		if err := issueWith(env, ca, "EndEntityCertificate", testenv.NewLeaf(t, req).CSRPEM, nil); (err == nil) != ok {
			t.Errorf("%q under a chain %s (common name %q, DNS names %q, email addresses %q, URIs %v): %v, want allowed %v",
				name, under, req.Subject.CommonName, req.DNSNames, req.EmailAddresses, req.URIs, err, ok)
		}
	}
}

func asDNSName(_ *testing.T, name string) *x509.CertificateRequest {
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{name}}
}

// TestWildcardDNSNameConstraints: a DNS name with a "*" in its first
// label, which OpenSSL's host check (curl's, Python's) matches as a
// wildcard ("s*.corp.example" with secret.corp.example) and Go's verifier
// compares as it is, is issued only if every name it may stand for is
// permitted and none excluded, as a wildcard common name is.
func TestWildcardDNSNameConstraints(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	excluding := underChain(t, env, root, "Excluding", func(c *x509.Certificate) {
		c.PermittedDNSDomains, c.ExcludedDNSDomains = []string{"corp.example"}, []string{"secret.corp.example"}
	})
	narrow := underChain(t, env, root, "Narrow", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"app.corp.example"} })
	wantAllowed(t, env, excluding, "excluding secret.corp.example", asDNSName, map[string]bool{
		"app.corp.example": true, "s*.corp.example": false, "secre*.corp.example": false, "*et.corp.example": false,
		"SECRE*.Corp.Example": false, "*.corp.example": false, "s*.other.corp.example": true,
		// Any name a first label with a "*" stands for is taken in: "a*"
		// stands for no "secret", but is held as "*" is.
		"a*.corp.example": false,
		// A "*" after the first label is no wildcard to any client.
		"a.s*.corp.example": true,
	})
	wantAllowed(t, env, narrow, "permitting app.corp.example", asDNSName, map[string]bool{
		"app.corp.example": true, "a*.corp.example": false, "*.app.corp.example": true, "x*.app.corp.example": true,
	})
}
