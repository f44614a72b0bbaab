package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
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

func asCommonName(_ *testing.T, name string) *x509.CertificateRequest {
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}
}

func asEmail(_ *testing.T, email string) *x509.CertificateRequest {
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, EmailAddresses: []string{email}}
}

func asURI(t *testing.T, uri string) *x509.CertificateRequest {
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, URIs: []*url.URL{u}}
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

// TestEmailAndURIConstraints: an email or URI constraint without a
// leading dot names that host alone, as RFC 5280 (4.2.1.10) says and
// OpenSSL checks it, not the hosts under it, which Go's verifier permits
// as it would for a DNS name; with one, it names the hosts under it.
func TestEmailAndURIConstraints(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	permitting := underChain(t, env, root, "Permitting", func(c *x509.Certificate) {
		c.PermittedEmailAddresses = []string{"corp.example", ".mail.corp.example", "boss@hq.corp.example"}
		c.PermittedURIDomains = []string{"corp.example", ".svc.corp.example"}
	})
	excluding := underChain(t, env, root, "Excluding", func(c *x509.Certificate) {
		c.ExcludedEmailAddresses, c.ExcludedURIDomains = []string{"corp.example"}, []string{".svc.corp.example"}
	})
	wantAllowed(t, env, permitting, "permitting corp.example and others", asEmail, map[string]bool{
		"a@corp.example": true, "a@CORP.example": true, "a@x.mail.corp.example": true, "boss@hq.corp.example": true,
		"a@evil.corp.example": false, "a@mail.corp.example": false, "a@hq.corp.example": false, "a@evil.example": false,
	})
	wantAllowed(t, env, permitting, "permitting corp.example and .svc.corp.example", asURI, map[string]bool{
		"spiffe://corp.example/x": true, "https://CORP.example:8443/x": true, "spiffe://a.svc.corp.example/x": true,
		"spiffe://evil.corp.example/x": false, "https://evil.corp.example:8443/x": false, "spiffe://svc.corp.example/x": false,
	})
	// Go's verifier excludes the hosts under corp.example too: more than
	// RFC 5280 asks, the safe side, kept.
	wantAllowed(t, env, excluding, "excluding corp.example", asEmail, map[string]bool{
		"a@corp.example": false, "a@other.example": true, "a@evil.corp.example": false,
	})
	wantAllowed(t, env, excluding, "excluding .svc.corp.example", asURI, map[string]bool{
		"spiffe://svc.corp.example/x": true, "spiffe://a.svc.corp.example/x": false, "spiffe://A.SVC.corp.example/x": false,
	})
}

// TestIPLiteralHostNames: a DNS name or a host-name common name that is
// an IP address, which OpenSSL's host check matches with a client's host
// written so and Go's verifier holds to the DNS name constraints alone, is
// held to the IP address constraints, as an IP address alternative name
// is: one in an excluded range, or outside the permitted ones, is refused.
func TestIPLiteralHostNames(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	_, ten, _ := net.ParseCIDR("10.0.0.0/8")
	ipExcluding := underChain(t, env, root, "IP Excluding", func(c *x509.Certificate) { c.ExcludedIPRanges = []*net.IPNet{ten} })
	ipPermitting := underChain(t, env, root, "IP Permitting", func(c *x509.Certificate) { c.PermittedIPRanges = []*net.IPNet{ten} })
	mailOnly := underChain(t, env, root, "Mail Only", func(c *x509.Certificate) { c.PermittedEmailAddresses = []string{"corp.example"} })
	for _, as := range []func(*testing.T, string) *x509.CertificateRequest{asDNSName, asCommonName} {
		wantAllowed(t, env, ipExcluding, "excluding 10.0.0.0/8", as, map[string]bool{
			"app.example": true, "10.1.2.3.example": true, "10.1.2.3": false, "10.1.2.3.": false, "::ffff:10.1.2.3": false,
			"192.0.2.1": true, "2001:db8::1": true,
			// As inet_aton and getaddrinfo read them: 10.1.2.3 each.
			"0xa.1.2.3": false, "012.1.2.3": false, "10.1.515": false, "0x0a010203": false,
			"0xa.example": true, "08.1.2.3": true, // no address: 08 is no octal number
		})
		wantAllowed(t, env, ipPermitting, "permitting 10.0.0.0/8", as, map[string]bool{
			"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.1": false, "2001:db8::1": false, "0xa.1.2.3": true, "0xc0.0.2.1": false,
			// No address: a part past a byte, a last part past the bytes left.
			"10.256.1": true, "10.16777216": true,
		})
		wantAllowed(t, env, mailOnly, "without IP address constraints", as, map[string]bool{"app.example": true, "10.1.2.3": true})
	}
	// A number alone is an address in a DNS name, as resolvers read it,
	// and not in a common name, where numbers (an employee's, a device's)
	// are common.
	wantAllowed(t, env, ipPermitting, "permitting 10.0.0.0/8", asDNSName, map[string]bool{"167838211": true, "3221225985": false})
	wantAllowed(t, env, ipExcluding, "excluding 10.0.0.0/8", asDNSName, map[string]bool{"167838211": false})
	wantAllowed(t, env, ipPermitting, "permitting 10.0.0.0/8", asCommonName, map[string]bool{"12345": true, "007": true, "3221225985": true})
}
