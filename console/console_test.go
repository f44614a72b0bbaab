package console_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/console"
	"github.com/openpca/openpca/internal/logsample"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// browser is an HTTP client with cookies, as a browser without JavaScript
// is; it follows no redirect, so that tests see each.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

func newBrowser(t *testing.T, env *testenv.Env) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: env.URL, client: &http.Client{Jar: jar, Transport: env.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values, header ...string) (int, string, *http.Response) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	if m := csrfField.FindSubmatch(page); m != nil {
		b.csrf = string(m[1])
	}
	return res.StatusCode, string(page), res
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	status, page, _ := b.do(http.MethodGet, path, nil)
	return status, page
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	status, page, _ := b.do(http.MethodPost, path, form)
	return status, page
}

// signIn signs in with the key of client.
func (b *browser) signIn(client *acmpca.Client) {
	b.t.Helper()
	creds, err := client.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	status, _, res := b.do(http.MethodPost, "/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}})
	if status != http.StatusSeeOther || res.Header.Get("Location") != "/console/cas" {
		b.t.Fatalf("signing in: %d %s", status, res.Header.Get("Location"))
	}
	if status, _ := b.get("/console/cas"); status != http.StatusOK {
		b.t.Fatalf("the CAs page: %d", status)
	}
}

// caWithLeaf makes an active root CA that has issued a certificate for
// commonName, and returns the CA's ARN and the certificate's serial.
func caWithLeaf(t testing.TB, env *testenv.Env, name, commonName string) (caARN, serial string) {
	t.Helper()
	caARN, _ = env.NewActiveRoot(t, name)
	leafARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}).CSRPEM})
	return caARN, leafARN[strings.LastIndex(leafARN, "/")+1:]
}

func caPage(arn string) string { return "/console/ca?" + url.Values{"arn": {arn}}.Encode() }

// TestConsoleSecurity: without a session only the sign-in page is served;
// a session's cookie is HttpOnly and SameSite=Strict; an action without
// the session's CSRF token, or from another origin, is refused; another
// account's CA is not found; a read-only key changes nothing; signing out
// and revoking the key end the session; a flood of sign-ins is cut short.
func TestConsoleSecurity(t *testing.T) {
	env := testenv.Start(t)
	caARN, serial := caWithLeaf(t, env, "Console Root", "leaf.example")
	revoke := url.Values{"arn": {caARN}, "serial": {serial}, "reason": {"KEY_COMPROMISE"}}

	anon := newBrowser(t, env)
	if status, page := anon.get("/console/"); status != http.StatusOK || !strings.Contains(page, `action="/console/sign-in"`) {
		t.Errorf("the sign-in page: %d", status)
	}
	for _, path := range []string{"/console/cas", caPage(caARN), "/console/ca/certificates?arn=" + url.QueryEscape(caARN), "/console/verify",
		"/console/static/verify.js", "/console/static/verify.wasm", "/console/ca/report?arn=x&id=y"} {
		if status, _, res := anon.do(http.MethodGet, path, nil); status != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
			t.Errorf("GET %s without a session: %d, want a redirect to the sign-in page", path, status)
		}
	}
	if status, _ := anon.post("/console/ca/revoke", revoke); status != http.StatusUnauthorized {
		t.Errorf("an action without a session: %d", status)
	}
	if status, page := anon.post("/console/sign-in", url.Values{"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {"wrong"}}); status != http.StatusUnauthorized ||
		!strings.Contains(page, "The access key or its secret is wrong") {
		t.Errorf("a wrong secret: %d", status)
	}

	b := newBrowser(t, env)
	creds, _ := env.Client.Options().Credentials.Retrieve(context.Background())
	_, _, res := b.do(http.MethodPost, "/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}})
	cookie := res.Cookies()
	if len(cookie) != 1 || !cookie[0].HttpOnly || cookie[0].SameSite != http.SameSiteStrictMode || cookie[0].Path != "/console/" {
		t.Fatalf("the session cookie: %+v", cookie)
	}
	if status, page := b.get(caPage(caARN)); status != http.StatusOK || !strings.Contains(page, "Console Root") || !strings.Contains(page, "<th>Key store</th><td>software") {
		t.Fatalf("the CA page: %d\n%s", status, page)
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no CSRF token", revoke, nil},
		{"a wrong CSRF token", withCSRF(revoke, "forged"), nil},
		{"another origin", withCSRF(revoke, b.csrf), []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}},
	} {
		if status, _, _ := b.do(http.MethodPost, "/console/ca/revoke", tc.form, tc.header...); status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, status)
		}
	}
	if c, err := env.Client.GetCertificate(t.Context(), &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: aws.String(caARN + "/certificate/" + serial)}); err != nil || c == nil {
		t.Fatal(err)
	}

	// Another account's CA is not found, for reading and for acting.
	other, _ := env.NewAccount(t, "444455556666")
	otherARN, _ := env.NewActiveRoot(t, "Default Account Root")
	o := newBrowser(t, env)
	o.signIn(other)
	if status, _ := o.get(caPage(otherARN)); status != http.StatusNotFound {
		t.Errorf("another account's CA: %d, want 404", status)
	}
	if status, _ := o.post("/console/ca/revoke", withCSRF(revoke, o.csrf)); status != http.StatusNotFound {
		t.Errorf("revoking in another account's CA: %d, want 404", status)
	}

	// A read-only key sees, and changes nothing.
	reader, _ := env.NewReadOnlyKey(t, app.DefaultAccountID)
	ro := newBrowser(t, env)
	ro.signIn(reader)
	if status, _ := ro.get(caPage(caARN)); status != http.StatusOK {
		t.Errorf("a read-only key's view of the CA: %d", status)
	}
	if status, page := ro.post("/console/ca/revoke", withCSRF(revoke, ro.csrf)); status != http.StatusForbidden || !strings.Contains(page, "AccessDeniedException") {
		t.Errorf("a read-only key's revocation: %d", status)
	}
	if status, _ := ro.post("/console/ca/status", withCSRF(url.Values{"arn": {caARN}, "status": {"DISABLED"}}, ro.csrf)); status != http.StatusForbidden {
		t.Errorf("a read-only key disabling the CA: %d", status)
	}

	// Certificates are found by their subject alternative names too.
	sanARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "by-cn"}, DNSNames: []string{"only-in-the-san.example"}}).CSRPEM})
	if status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}, "q": {"ONLY-in-the-san"}}.Encode()); status != http.StatusOK ||
		!strings.Contains(page, sanARN[strings.LastIndex(sanARN, "/")+1:]) || strings.Contains(page, serial) {
		t.Errorf("the search by alternative name: %d\n%s", status, page)
	}

	// The right token revokes.
	if status, _ := b.post("/console/ca/revoke", withCSRF(revoke, b.csrf)); status != http.StatusSeeOther {
		t.Fatalf("a revocation: %d", status)
	}
	if status, page := b.get("/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {serial}}.Encode()); status != http.StatusOK || !strings.Contains(page, "KEY_COMPROMISE") {
		t.Errorf("the revoked certificate's page: %d", status)
	}
	// A value the model does not allow is refused as the API refuses it.
	if status, page := b.post("/console/ca/status", withCSRF(url.Values{"arn": {caARN}, "status": {"BOGUS"}}, b.csrf)); status != http.StatusBadRequest || !strings.Contains(page, "ValidationException") {
		t.Errorf("a status the model does not have: %d", status)
	}

	// Signing out ends the session, even for a copy of its cookie.
	if status, _ := b.post("/console/sign-out", url.Values{"csrf": {b.csrf}}); status != http.StatusSeeOther {
		t.Errorf("signing out: %d", status)
	}
	replay := newBrowser(t, env)
	replay.client.Jar.SetCookies(mustURL(env.URL+"/console/"), cookie)
	if status, _ := replay.get("/console/cas"); status != http.StatusSeeOther {
		t.Errorf("the cookie of an ended session: %d", status)
	}

	// Revoking the key ends its sessions.
	k := newBrowser(t, env)
	k.signIn(reader)
	readerKey, _ := reader.Options().Credentials.Retrieve(context.Background())
	a, err := app.OpenAdmin(context.Background(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.RevokeAccessKey(context.Background(), readerKey.AccessKeyID, env.Clock.Now())
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := k.get("/console/cas"); status != http.StatusSeeOther {
		t.Errorf("a revoked key's session: %d", status)
	}

	// A flood of sign-ins is cut short: past a burst, 429 without a look
	// at the store.
	limited := 0
	for range 60 {
		if status, _ := anon.post("/console/sign-in", url.Values{"access_key_id": {"OPCAGUESS"}, "secret_access_key": {"guess"}}); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("60 sign-ins at once were all let through")
	}
	// They were one address's: another signs in all the same.
	elsewhere := newBrowser(t, env)
	tr := env.Transport().Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext
	elsewhere.client.Transport = tr
	elsewhere.signIn(env.Client)
}

// TestConsoleCertificateLists: a CA's list of certificates, its charts
// and who requested a certificate are shown only to a key that may
// acm-pca:ListCertificates on the CA: never to another account the CA is
// shared with, nor to a key of its own account that may only describe it
// or get a certificate, whatever else the console shows those.
func TestConsoleCertificateLists(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	caARN, serial := caWithLeaf(t, env, "Listed Root", "secret-host.example")
	const sharee = "444455556666"
	other, _ := env.NewAccount(t, sharee)
	share := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + sharee + `"},"Resource":"` + caARN + `",
		"Action":["acm-pca:DescribeCertificateAuthority","acm-pca:GetCertificate"]}]}`
	if _, err := env.Client.PutPolicy(t.Context(), &acmpca.PutPolicyInput{ResourceArn: &caARN, Policy: &share}); err != nil {
		t.Fatal(err)
	}
	allow := func(actions string) openpca.KeyPolicy {
		return openpca.KeyPolicy{Name: "p", Document: `{"Statement":{"Effect":"Allow","Action":[` + actions + `],"Resource":"*"}}`}
	}
	reader, _ := env.NewReadOnlyKey(t, app.DefaultAccountID)
	describer, _ := env.NewKey(t, app.DefaultAccountID, allow(`"acm-pca:ListCertificateAuthorities","acm-pca:DescribeCertificateAuthority","acm-pca:GetCertificate"`))
	lister, _ := env.NewKey(t, app.DefaultAccountID, allow(`"acm-pca:ListCertificateAuthorities","acm-pca:DescribeCertificateAuthority","acm-pca:GetCertificate","acm-pca:ListCertificates"`))
	for _, tc := range []struct {
		name    string
		client  *acmpca.Client
		lists   bool
		reports bool // may list the CA's audit reports
	}{
		{"the CA's account", env.Client, true, true},
		{"a read-only key", reader, true, true},
		{"a key allowed ListCertificates", lister, true, false},
		{"a key that may only describe the CA and get certificates", describer, false, false},
		{"another account the CA is shared with", other, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, env)
			b.signIn(tc.client)
			want := http.StatusForbidden
			if tc.lists {
				want = http.StatusOK
			}
			arn := url.Values{"arn": {caARN}}.Encode()
			for _, path := range []string{"/console/ca/certificates?" + arn, "/console/ca/certificates?q=secret&" + arn, "/console/ca/charts?" + arn} {
				status, page := b.get(path)
				if status != want {
					t.Errorf("GET %s: %d, want %d", path, status, want)
				}
				if !tc.lists && (strings.Contains(page, "secret-host") || !strings.Contains(page, "acm-pca:ListCertificates")) {
					t.Errorf("GET %s showed what it must not, or not why:\n%s", path, page)
				}
			}
			// Who requested the certificate, and the CA's reports and
			// checkpoint, are shown beside what was asked for: left out
			// where refused, and the refusals not logged.
			denials := strings.Count(logs.String(), "access denied")
			status, page := b.get("/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {serial}}.Encode())
			if status != http.StatusOK || !strings.Contains(page, "secret-host.example") {
				t.Fatalf("the certificate's page: %d", status)
			}
			if got := strings.Contains(page, "Requested by"); got != tc.lists {
				t.Errorf("the certificate's page shows who requested it: %v, want %v", got, tc.lists)
			}
			if _, page := b.get(caPage(caARN)); strings.Contains(page, openpca.CodeAccessDenied) || strings.Contains(page, "No report yet") != tc.reports {
				t.Errorf("the CA's page shows a refusal of what it shows beside the CA, or no reports to a key that may not list them:\n%s", page)
			}
			if n := strings.Count(logs.String(), "access denied") - denials; n != 0 {
				t.Errorf("%d refusals logged for the pages of a certificate and of its CA", n)
			}
			// Another account's CA is marked as such, and its key store,
			// which the API tells no other account, is not shown.
			foreign := tc.client == other
			certPage := "/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {serial}}.Encode()
			for _, path := range []string{"/console/cas", caPage(caARN), certPage} {
				_, page := b.get(path)
				marked := strings.Contains(page, "shared by account "+app.DefaultAccountID) || strings.Contains(page, "account "+app.DefaultAccountID+", which shared it")
				keyStore := strings.Contains(page, "software")
				if marked != foreign || keyStore != (!foreign && path != certPage) {
					t.Errorf("GET %s as %s: marked as shared %v, key store shown %v", path, tc.name, marked, keyStore)
				}
			}
		})
	}
}

func withCSRF(form url.Values, token string) url.Values {
	out := url.Values{"csrf": {token}}
	for k, v := range form {
		out[k] = v
	}
	return out
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

// TestConsoleReportAndCRL: a CA's page gives the date of its latest CRL,
// as the publisher recorded it; and an audit report, which lists every
// certificate the CA issued, downloads only for a key that may list them
// (acm-pca:ListCertificates), whatever else it may read of the report.
func TestConsoleReportAndCRL(t *testing.T) {
	env := testenv.Start(t)
	for _, bucket := range []string{"crls", "reports"} {
		if err := os.MkdirAll(filepath.Join(env.Config.DataDir, "s3", bucket), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	caARN, _ := caWithLeaf(t, env, "Reported Root", "secret-host.example")
	if _, err := env.Client.UpdateCertificateAuthority(t.Context(), &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")}}}); err != nil {
		t.Fatal(err)
	}
	report := newReport(t, env, caARN, "reports")

	owner := newBrowser(t, env)
	owner.signIn(env.Client)
	crlFile := filepath.Join(env.Config.DataDir, "s3", "crls", "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl")
	// The page gives the CRL's date once its publication is recorded,
	// after its file is written.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		date := "none"
		if der, err := os.ReadFile(crlFile); err == nil {
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			date = crl.ThisUpdate.UTC().Format("2006-01-02 15:04 UTC")
			if _, page := owner.get(caPage(caARN)); strings.Contains(page, "latest CRL "+date) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CA's page does not give its CRL's date (the CRL's: %s)", date)
		}
	}

	auditor, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "auditor", Document: `{"Statement":{"Effect":"Allow","Action":[
		"acm-pca:ListCertificateAuthorities","acm-pca:DescribeCertificateAuthority","acm-pca:DescribeCertificateAuthorityAuditReport"],"Resource":"*"}}`})
	for _, tc := range []struct {
		name   string
		client *acmpca.Client
		want   int
	}{
		{"the CA's account", env.Client, http.StatusOK},
		{"a key that may describe reports but not list certificates", auditor, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, env)
			b.signIn(tc.client)
			for _, proof := range []string{"", "1"} {
				status, body := b.get("/console/ca/report?" + url.Values{"arn": {caARN}, "id": {report}, "proof": {proof}}.Encode())
				if status != tc.want {
					t.Errorf("download (proof %q): %d, want %d", proof, status, tc.want)
				}
				if tc.want != http.StatusOK && (strings.Contains(body, "secret-host") || !strings.Contains(body, "acm-pca:ListCertificates")) {
					t.Errorf("a refused download showed what it must not, or not why: %.300q", body)
				}
			}
		})
	}
}

// newReport asks for a JSON audit report of caARN in bucket, and returns
// its id once it is written.
func newReport(t *testing.T, env *testenv.Env, caARN, bucket string) string {
	t.Helper()
	report, err := env.Client.CreateCertificateAuthorityAuditReport(t.Context(), &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &caARN, S3BucketName: &bucket, AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	if err != nil {
		t.Fatal(err)
	}
	if err := acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	}).Wait(t.Context(), &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: report.AuditReportId}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return *report.AuditReportId
}

// TestSecureCookieBehindProxy: a server that clients reach over HTTPS
// (its public URL says so, or a trusted proxy that ends TLS), through a
// proxy that ends TLS, still marks the session cookie Secure, and asks
// browsers to keep to HTTPS. Over HTTPS the cookie is a __Host- one,
// which a sibling host cannot set: a cookie of the name over HTTP, as one
// could, signs no one in. A public URL of http (OCSP's, as certificates
// name it) does not take that from a console behind such a proxy: its
// cookie was sent in the clear to any page on the host's plain HTTP.
func TestSecureCookieBehindProxy(t *testing.T) {
	trusted, err := clientaddr.Parse("127.0.0.1/32,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		publicURL  string
		proto      string // X-Forwarded-Proto, from a trusted proxy
		secure     bool
		name, path string
		tossed     string // a cookie name that must not sign in
	}{
		{"https://ca.example", "", true, "__Host-openpca_console", "/", "openpca_console"},
		{"http://ca.example", "https", true, "__Host-openpca_console", "/", "openpca_console"},
		{"http://ca.example", "http", false, "openpca_console", "/console/", "__Host-openpca_console"},
		{"", "", false, "openpca_console", "/console/", "__Host-openpca_console"},
	} {
		env := testenv.Start(t, func(c *app.Config) { c.PublicURL, c.TrustedProxies = tc.publicURL, trusted })
		creds, err := env.Client.Options().Credentials.Retrieve(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t, env)
		var proto []string
		if tc.proto != "" {
			proto = []string{"X-Forwarded-Proto", tc.proto}
		}
		status, _, res := b.do(http.MethodPost, "/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}}, proto...)
		cookies := res.Cookies()
		if status != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Secure != tc.secure || cookies[0].Name != tc.name || cookies[0].Path != tc.path {
			t.Fatalf("public URL %q: sign-in %d, cookies %v, want Secure %v, %s, path %s", tc.publicURL, status, cookies, tc.secure, tc.name, tc.path)
		}
		if hsts := res.Header.Get("Strict-Transport-Security"); (hsts != "") != tc.secure {
			t.Errorf("public URL %q: Strict-Transport-Security %q", tc.publicURL, hsts)
		}
		if referrer := res.Header.Get("Referrer-Policy"); referrer != "same-origin" {
			t.Errorf("Referrer-Policy %q: browsers would send forms' Origin as null", referrer)
		}
		for name, want := range map[string]int{tc.name: http.StatusOK, tc.tossed: http.StatusSeeOther} {
			status, _, _ := newBrowser(t, env).do(http.MethodGet, "/console/cas", nil, append([]string{"Cookie", name + "=" + cookies[0].Value}, proto...)...)
			if status != want {
				t.Errorf("public URL %q: the session's token in a cookie %s: %d, want %d", tc.publicURL, name, status, want)
			}
		}
	}
}

// TestConsoleHeaders: every answer of the console, signed in or not, a
// redirect, a refusal or a script, carries the headers that keep other
// sites from framing it, opening it, loading it or running script in it.
func TestConsoleHeaders(t *testing.T) {
	env := testenv.Start(t)
	signedIn := newBrowser(t, env)
	signedIn.signIn(env.Client)
	want := map[string]string{
		"Cache-Control":                "no-store",
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "same-origin",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Content-Security-Policy":      "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	}
	for _, tc := range []struct {
		name   string
		b      *browser
		method string
		path   string
	}{
		{"the sign-in page", newBrowser(t, env), http.MethodGet, "/console/"},
		{"a page, signed out", newBrowser(t, env), http.MethodGet, "/console/cas"},
		{"a sign-in from another site", newBrowser(t, env), http.MethodPost, "/console/sign-in"},
		{"a page", signedIn, http.MethodGet, "/console/cas"},
		{"a page that is not", signedIn, http.MethodGet, "/console/none"},
		{"a script", signedIn, http.MethodGet, "/console/static/verify.js"},
	} {
		var header []string
		if tc.method == http.MethodPost {
			header = []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}
		}
		_, _, res := tc.b.do(tc.method, tc.path, nil, header...)
		for name, value := range want {
			if got := res.Header.Get(name); got != value && !(name == "Cache-Control" && strings.HasPrefix(tc.path, "/console/static/")) {
				t.Errorf("%s (%d): %s %q, want %q", tc.name, res.StatusCode, name, got, value)
			}
		}
	}
}

// TestConsoleSessionEnds: a session left without a request ends after
// SessionIdle; one in use lasts SessionLife from sign-in, and no longer.
func TestConsoleSessionEnds(t *testing.T) {
	env := testenv.Start(t)
	signedIn := func(b *browser) bool {
		status, _ := b.get("/console/cas")
		return status == http.StatusOK
	}
	idle := newBrowser(t, env)
	idle.signIn(env.Client)
	busy := newBrowser(t, env)
	busy.signIn(env.Client)
	step := console.SessionIdle * 2 / 3
	for elapsed := step; elapsed <= console.SessionLife+step; elapsed += step {
		env.Clock.Advance(step)
		status, _, res := busy.do(http.MethodGet, "/console/cas", nil)
		if got, want := status == http.StatusOK, elapsed < console.SessionLife; got != want {
			t.Fatalf("a session in use, %s after sign-in: signed in %v, want %v", elapsed, got, want)
		}
		// The browser is told the session's new end, or it would drop
		// the cookie at the first.
		if status == http.StatusOK {
			want := env.Clock.Now().Add(min(console.SessionIdle, console.SessionLife-elapsed))
			var expires time.Time
			for _, c := range res.Cookies() {
				expires = c.Expires
			}
			if want.Sub(expires).Abs() > time.Second {
				t.Fatalf("a session in use, %s after sign-in: its cookie expires %v, want %v", elapsed, expires, want)
			}
		}
		if elapsed == step {
			continue // the idle session's first request after sign-in: within SessionIdle
		}
		if signedIn(idle) {
			t.Fatalf("a session %s without a request is still signed in", elapsed-step)
		}
	}
}

// TestConsoleSearchTime: a search by text or status, or the charts'
// counts, that read longer than the console's search time are given up with a
// message, not left to read all of a large CA's certificates on the
// readers the API shares.
func TestConsoleSearchTime(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.ConsoleSearchTime = time.Nanosecond })
	caARN, serial := caWithLeaf(t, env, "Searched Root", "searched.example")
	b := newBrowser(t, env)
	b.signIn(env.Client)
	if status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}, "q": {"searched"}}.Encode()); status != http.StatusServiceUnavailable || !strings.Contains(page, "certificates match it") {
		t.Errorf("a search past its time: %d", status)
	}
	if status, page := b.get("/console/ca/charts?" + url.Values{"arn": {caARN}}.Encode()); status != http.StatusServiceUnavailable || !strings.Contains(page, "could not be counted within 1ns") {
		t.Errorf("the charts past their time: %d", status)
	}
	if status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}, "status": {"revoked"}}.Encode()); status != http.StatusServiceUnavailable || !strings.Contains(page, "certificates match it") {
		t.Errorf("a filter by status past its time: %d", status)
	}
	if status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}}.Encode()); status != http.StatusOK || !strings.Contains(page, "searched.example") {
		t.Errorf("the list, which is no search: %d", status)
	}
	if status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}, "serial": {serial}, "status": {"issued"}, "q": {"searched"}}.Encode()); status != http.StatusOK || !strings.Contains(page, "searched.example") {
		t.Errorf("a serial's look-up, which is no search: %d", status)
	}
}

// TestSignInLimitThroughProxy: behind a proxy the server trusts, each
// client has its own sign-in limit (one client's flood leaves another's
// sign-in through the same proxy alone), and its own aws:SourceIp.
func TestSignInLimitThroughProxy(t *testing.T) {
	proxies, err := clientaddr.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, func(c *app.Config) { c.TrustedProxies = proxies })
	from := func(addr string) *browser {
		b := newBrowser(t, env)
		b.client.Transport = testenv.ForwardedFor(env.Transport(), addr)
		return b
	}
	flood, limited := from("203.0.113.7"), 0
	for range 30 {
		if status, _ := flood.post("/console/sign-in", url.Values{"access_key_id": {"OPCAGUESS"}, "secret_access_key": {"guess"}}); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("30 sign-ins at once from one client were all let through")
	}
	from("198.51.100.9").signIn(env.Client)

	// The console takes aws:SourceIp as the API does: the client's.
	office, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "from-the-office", Document: `{"Statement":{"Effect":"Allow",
		"Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}`})
	from("203.0.113.9").signIn(office) // which shows the CAs
	away := from("198.51.100.10")
	creds, err := office.Options().Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	away.post("/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}})
	if status, _ := away.get("/console/cas"); status != http.StatusForbidden {
		t.Errorf("the CAs, from outside the office: %d", status)
	}
}

// TestConsoleSharesTheAccountRate: the console's pages count against the
// account's request rate, with the API's requests: a bound the console
// did not keep would not bound the account.
func TestConsoleSharesTheAccountRate(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.AccountRequestRate = 0.01 }) // one request, then one each 100 s
	b := newBrowser(t, env)
	b.signIn(env.Client) // its first page takes the account's request
	if status, _, res := b.do(http.MethodGet, "/console/cas", nil); status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "100" {
		t.Errorf("a page past the account's rate: %d, Retry-After %q; want 429, 100", status, res.Header.Get("Retry-After"))
	}
	_, err := env.Client.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{})
	testenv.WantError(t, err, "ThrottlingException")
	// A page's scripts, and signing out, do not count: a page let through
	// gets them whole, and a throttled user can still leave.
	for _, path := range []string{"/console/static/verify.js", "/console/static/verify.wasm"} {
		if status, _ := b.get(path); status != http.StatusOK {
			t.Errorf("%s past the account's rate: %d, want 200", path, status)
		}
	}
	if status, _ := b.post("/console/sign-out", url.Values{"csrf": {b.csrf}}); status != http.StatusSeeOther {
		t.Errorf("signing out past the account's rate: %d, want 303", status)
	}
}

// TestConsoleUnreadablePolicy: a key whose stored policy no longer reads
// (one an earlier version stored, with a policy variable) is told why,
// 403, at sign-in and in a session opened before: not "wrong secret", and
// not an internal failure.
func TestConsoleUnreadablePolicy(t *testing.T) {
	env := testenv.Start(t)
	client, key := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "ReadOnly", Managed: true})
	b := newBrowser(t, env)
	b.signIn(client)
	unreadable := openpca.KeyPolicy{Name: "old", Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:*"}}`}
	a, err := app.OpenAdmin(t.Context(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Store.UpdateKeyPolicies(t.Context(), key, func(*openpca.AccessKey) ([]openpca.KeyPolicy, error) { return []openpca.KeyPolicy{unreadable}, nil })
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	if status, page := b.get("/console/cas"); status != http.StatusForbidden || !strings.Contains(page, "policy variable") {
		t.Errorf("a session's page once its key's policy no longer reads: %d\n%s", status, page)
	}
	if status, _ := b.post("/console/sign-out", url.Values{"csrf": {b.csrf}}); status != http.StatusSeeOther {
		t.Errorf("signing out once the key's policy no longer reads: %d, want 303", status)
	}
	if status, _ := b.get("/console/cas"); status != http.StatusSeeOther {
		t.Errorf("a page after signing out: %d, want 303 to the sign-in page", status)
	}
	creds, _ := client.Options().Credentials.Retrieve(t.Context())
	status, page, _ := newBrowser(t, env).do(http.MethodPost, "/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}})
	if status != http.StatusForbidden || !strings.Contains(page, "policy variable") {
		t.Errorf("signing in with it: %d\n%s", status, page)
	}
	// With a wrong secret, the answer tells nothing of the key or its
	// policy.
	status, page, _ = newBrowser(t, env).do(http.MethodPost, "/console/sign-in", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {"wrong" + creds.SecretAccessKey}})
	if status != http.StatusUnauthorized || strings.Contains(page, "policy") {
		t.Errorf("signing in with a wrong secret: %d\n%s", status, page)
	}
	_, err = client.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{})
	testenv.WantError(t, err, "AccessDeniedException")
}

// TestConsoleSessionRowsChangedByHand: whoever can write the database,
// but not read the master key, gets no session of another account: not
// by moving their key, once signed in, to it; nor their session to its
// key; nor by writing a session for its key.
func TestConsoleSessionRowsChangedByHand(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Victim Root")
	client, key := env.NewAccount(t, "555566667777")
	db := env.DB(t)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	shows := func(b *browser) bool {
		t.Helper()
		status, page := b.get(caPage(caARN))
		return status == http.StatusOK && strings.Contains(page, "Victim Root")
	}
	owner := newBrowser(t, env)
	owner.signIn(env.Client)
	if !shows(owner) {
		t.Fatal("the CA's own account does not see it")
	}

	b := newBrowser(t, env)
	b.signIn(client)
	exec(`UPDATE access_keys SET account_id = ? WHERE id = ?`, app.DefaultAccountID, key)
	if status, _ := b.get(caPage(caARN)); status != http.StatusServiceUnavailable {
		t.Errorf("a session of a key moved to another account: %d, want 503, as its requests get", status)
	}
	exec(`UPDATE access_keys SET account_id = '555566667777' WHERE id = ?`, key)

	b = newBrowser(t, env)
	b.signIn(client)
	exec(`UPDATE console_sessions SET key_id = ? WHERE key_id = ?`, testenv.AccessKeyID, key)
	if shows(b) {
		t.Error("a session given another account's key sees its CA")
	}

	// Given a later start, for a longer life.
	b = newBrowser(t, env)
	b.signIn(client)
	exec(`UPDATE console_sessions SET created_at = created_at + 3600000000 WHERE key_id = ?`, key)
	if status, _ := b.get("/console/cas"); status != http.StatusSeeOther {
		t.Errorf("a session given a later start: %d, want 303 to the sign-in page", status)
	}

	// Written whole, with a CSRF token of its own or with the owner's
	// session's.
	var ownerCSRF string
	if err := db.QueryRow(`SELECT csrf FROM console_sessions WHERE key_id = ?`, testenv.AccessKeyID).Scan(&ownerCSRF); err != nil {
		t.Fatal(err)
	}
	for i, csrf := range []string{"csrf", ownerCSRF} {
		token := fmt.Sprintf("a-session-no-server-made-%d", i)
		id := sha256.Sum256([]byte(token))
		now := time.Now()
		exec(`INSERT INTO console_sessions (id_hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			id[:], testenv.AccessKeyID, csrf, now.UnixMicro(), now.Add(time.Hour).UnixMicro())
		forged := newBrowser(t, env)
		forged.client.Jar.SetCookies(mustURL(env.URL), []*http.Cookie{{Name: "openpca_console", Value: token}})
		if shows(forged) {
			t.Errorf("a session written in the database, CSRF token %q, sees the CA of its key's account", csrf)
		}
	}
	if !shows(owner) {
		t.Error("the CA's own account's session ended")
	}

	// Given a later end, past its life.
	exec(`UPDATE console_sessions SET expires_at = ? WHERE key_id = ?`, env.Clock.Now().AddDate(1, 0, 0).UnixMicro(), testenv.AccessKeyID)
	env.Clock.Advance(console.SessionLife + time.Hour)
	if status, _ := owner.get("/console/cas"); status != http.StatusSeeOther {
		t.Errorf("a session given a later end, past its life: %d, want 303 to the sign-in page", status)
	}
}

// TestConsoleShowsInvisibleCharacters: a name with a right-to-left
// override (or another format character) is shown with it escaped, on
// every page that shows the name, so that moc.knab-ruoy.www does not
// read as www.your-bank.com.
func TestConsoleShowsInvisibleCharacters(t *testing.T) {
	env := testenv.Start(t)
	caARN, serial := caWithLeaf(t, env, "\u202eAC knaB", "\u202emoc.knab-ruoy.www")
	b := newBrowser(t, env)
	b.signIn(env.Client)
	for _, path := range []string{"/console/cas", caPage(caARN), "/console/ca/certificates?arn=" + url.QueryEscape(caARN),
		"/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {serial}}.Encode()} {
		status, page := b.get(path)
		if status != http.StatusOK || strings.ContainsRune(page, '\u202e') || !strings.Contains(page, `\u202E`) {
			t.Errorf("%s: %d, the override shown raw: %v, escaped: %v", path, status, strings.ContainsRune(page, '\u202e'), strings.Contains(page, `\u202E`))
		}
	}

	// Characters drawn as nothing, or as blank, after a name that then
	// looks like another; in a tag too.
	const blanks = "\u3164\u2800\u034f\u2028\uffa0\ue000\ufe0f"
	lookalike, _ := env.NewActiveRoot(t, "bulk-1"+blanks)
	if _, err := env.Client.TagCertificateAuthority(t.Context(), &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &lookalike,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pki\u2028\u00a0")}}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/cas", caPage(lookalike)} {
		status, page := b.get(path)
		if status != http.StatusOK || strings.ContainsAny(page, blanks) || !strings.Contains(page, `bulk-1\u3164\u2800\u034F\u2028\uFFA0\uE000\uFE0F`) {
			t.Errorf("%s: %d, blank characters shown raw: %v", path, status, strings.ContainsAny(page, blanks))
		}
		if path != "/console/cas" && !strings.Contains(page, `team=pki\u2028\u00A0`) {
			t.Errorf("%s: the tag's blank characters not escaped", path)
		}
	}
}

// TestPageBodyNotParsed: a page's request with a multipart body, which
// anyone can send, leaves no temporary file behind (the page's FormValue
// parsed it, to files nothing removed), and its body is left unread.
func TestPageBodyNotParsed(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where package mime/multipart puts its files
	env := testenv.Start(t)
	const boundary = "b0undary"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"ended\"; filename=\"f\"\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	file := make([]byte, 33<<20) // past the 32 MiB a form keeps in memory
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/console/", io.MultiReader(strings.NewReader(head), bytes.NewReader(file), strings.NewReader(tail)))
	req.ContentLength = int64(len(head) + len(file) + len(tail))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	env.Stop(t) // the request is over, and whatever it left is left
	if left, _ := filepath.Glob(filepath.Join(tmp, "multipart-*")); len(left) > 0 || res.StatusCode != http.StatusOK || !res.Close {
		t.Errorf("%d, the connection's end: %v; files left: %v", res.StatusCode, res.Close, left)
	}
}

// TestSignInFloodsLockNoOneOut: sign-ins refused to flooding addresses
// (two, then a whole network's worth) leave a sign-in from elsewhere
// through; their log lines are sampled, and a secret typed as the key id
// is not logged.
func TestSignInFloodsLockNoOneOut(t *testing.T) {
	proxies, err := clientaddr.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) {
		c.TrustedProxies = proxies
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	from := func(addr string) *browser {
		b := newBrowser(t, env)
		b.client.Transport = testenv.ForwardedFor(env.Transport(), addr)
		return b
	}
	var floods []*browser
	for i := range 12 { // two networks' addresses, more than a network's share
		floods = append(floods, from(fmt.Sprintf("203.0.%d.%d", 113+i%2, 10+i)))
	}
	refused, start := 0, time.Now()
	for _, b := range floods { // an address's in a row: its limit is met however slow the machine
		for range 20 {
			if status, _ := b.post("/console/sign-in", url.Values{"access_key_id": {"wJalrXUtnFEMI/K7MDENG"}, "secret_access_key": {"guess"}}); status == http.StatusTooManyRequests {
				refused++
			}
		}
	}
	elapsed := time.Since(start)
	if refused == 0 {
		t.Error("240 sign-ins at once from 12 addresses were all let through")
	}
	from("198.51.100.9").signIn(env.Client)
	// The sampler's bound: its burst, and its rate for the time taken.
	if lines, most := strings.Count(logs.String(), "a sign-in was refused"), logsample.Burst+int(logsample.Rate*elapsed.Seconds())+1; lines > most {
		t.Errorf("%d lines of refused sign-ins in %v, more than %d", lines, elapsed, most)
	}
	if strings.Contains(logs.String(), "wJalrXUtnFEMI") || !strings.Contains(logs.String(), "not a key id") {
		t.Errorf("a secret given as the key id was logged:\n%.2000s", logs.String())
	}
}

// TestConsoleActionLine: an action's log line names the CA as the form
// gave it, cut to an ARN's length, however long the form's value.
func TestConsoleActionLine(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	b := newBrowser(t, env)
	b.signIn(env.Client)
	long := "arn:aws:acm-pca:" + strings.Repeat("x", 3_900) // as long as a form may send
	if status, _ := b.post("/console/ca/status", withCSRF(url.Values{"arn": {long}, "status": {"DISABLED"}}, b.csrf)); status == http.StatusSeeOther {
		t.Fatal("a CA of a 4 KB ARN was disabled")
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "console action") && (len(line) > 1000 || !strings.Contains(line, "arn:aws:acm-pca:xxx")) {
			t.Fatalf("the action's line, of %d bytes: %.300s", len(line), line)
		}
	}
	if !strings.Contains(logs.String(), "console action") {
		t.Error("no action line")
	}
}

// TestSlowForm: a form whose body comes slowly, the sign-in's (which
// needs no session) included, holds its connection for
// smallbody.SmallTime, not smallbody.Time nor the server's minute of read
// timeout.
func TestSlowForm(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	testenv.WantSlowBodyCut(t, env.URL+"/console/sign-in", "application/x-www-form-urlencoded", http.StatusBadRequest)
}

// TestConsoleFormSize: a form is read up to 4 KiB, the budget of small
// bodies' size, and one larger refused before it is: the console's forms
// are of a few hundred bytes, and larger ones, which anyone may post,
// shared a budget that a few networks filled.
func TestConsoleFormSize(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	b := newBrowser(t, env)
	signIn := url.Values{"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {"wrong"}}
	pad := 4<<10 - len(signIn.Encode()+"&pad=")
	for _, tc := range []struct {
		pad  int
		want int
	}{
		{pad, http.StatusUnauthorized},
		{pad + 1, http.StatusRequestEntityTooLarge},
	} {
		form := url.Values{"pad": {strings.Repeat("a", tc.pad)}}
		maps.Copy(form, signIn)
		if status, _ := b.post("/console/sign-in", form); status != tc.want {
			t.Errorf("a sign-in of %d bytes: %d, want %d", len(form.Encode()), status, tc.want)
		}
	}

	// The longest root key the server takes signs in, each character of
	// its secret percent-encoded.
	id, secret := strings.Repeat("A", 128), strings.Repeat("/+=!@#$%", 128)
	long := testenv.Start(t, func(c *app.Config) { c.RootAccessKeyID, c.RootSecretAccessKey = id, secret })
	if status, _ := newBrowser(t, long).post("/console/sign-in", url.Values{"access_key_id": {id}, "secret_access_key": {secret}}); status != http.StatusSeeOther {
		t.Errorf("a sign-in with the longest root key: %d, want 303", status)
	}
}

// TestSignInAgainEndsTheSession: a browser that signs in again ends the
// session its cookie held, which would have stayed valid, unseen, until
// it went idle; a sign-in refused ends nothing.
func TestSignInAgainEndsTheSession(t *testing.T) {
	env := testenv.Start(t)
	b := newBrowser(t, env)
	b.signIn(env.Client)
	consoleURL, _ := url.Parse(env.URL + "/console/")
	held := b.client.Jar.Cookies(consoleURL)
	if len(held) != 1 {
		t.Fatalf("the session's cookies: %v", held)
	}
	replay := func() int { // the session's cookie, from elsewhere
		other := newBrowser(t, env)
		other.client.Jar.SetCookies(consoleURL, held)
		status, _ := other.get("/console/cas")
		return status
	}
	if status, _ := b.post("/console/sign-in", url.Values{"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {"wrong"}}); status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d", status)
	}
	if status := replay(); status != http.StatusOK {
		t.Fatalf("the session, after a sign-in refused: %d", status)
	}
	b.signIn(env.Client)
	if status := replay(); status != http.StatusSeeOther {
		t.Errorf("the session, after its browser signed in again: %d, want a redirect to sign in", status)
	}
}

// TestConsoleSessionsPerKey: a key keeps its newest 16 sessions; the
// browser whose session its key's later sign-ins ended is told so, on its
// next page and on its next action, which is not done.
func TestConsoleSessionsPerKey(t *testing.T) {
	proxies, err := clientaddr.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, func(c *app.Config) { c.TrustedProxies = proxies })
	from := func(i int) *browser { // each from an address of its own, within its sign-in limit
		b := newBrowser(t, env)
		b.client.Transport = testenv.ForwardedFor(env.Transport(), fmt.Sprintf("203.0.%d.7", 113+i))
		return b
	}
	first := from(0)
	first.signIn(env.Client)
	_, page := first.get("/console/cas")
	csrf := csrfField.FindStringSubmatch(page)
	for i := range openpca.ConsoleSessionsPerKey - 1 {
		env.Clock.Advance(time.Second) // sessions are ordered by when they were made
		from(i + 1).signIn(env.Client)
	}
	if status, _ := first.get("/console/cas"); status != http.StatusOK {
		t.Fatalf("the first of 16 sessions: %d", status)
	}
	env.Clock.Advance(time.Second)
	from(openpca.ConsoleSessionsPerKey).signIn(env.Client)
	status, _, res := first.do(http.MethodGet, "/console/cas", nil)
	if status != http.StatusSeeOther || res.Header.Get("Location") != "/console/?ended=1" {
		t.Fatalf("the first session after 16 more sign-ins: %d to %q", status, res.Header.Get("Location"))
	}
	if _, page := first.get("/console/?ended=1"); !strings.Contains(page, "signed in 16 more times") {
		t.Error("the sign-in page does not say why the session ended")
	}
	if csrf == nil {
		t.Fatal("no CSRF token on the CAs page")
	}
	if status, page := first.post("/console/sign-out", url.Values{"csrf": {csrf[1]}}); status != http.StatusUnauthorized || !strings.Contains(page, "was not done") {
		t.Errorf("an action of the ended session: %d", status)
	}
	if status, _, res := newBrowser(t, env).do(http.MethodGet, "/console/cas", nil); status != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
		t.Errorf("a browser that never signed in: %d to %q", status, res.Header.Get("Location"))
	}
}

// TestExpiredCertificateNotRevocable: an expired certificate's page says
// it expired and offers no revocation, which RevokeCertificate refuses.
func TestExpiredCertificateNotRevocable(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Console Root")
	leafARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
		Csr:      testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "short.example"}}).CSRPEM,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	page := "/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {leafARN[strings.LastIndex(leafARN, "/")+1:]}}.Encode()
	for _, tc := range []struct {
		after   time.Duration
		expired bool
	}{{0, false}, {48 * time.Hour, true}} {
		env.Clock.Advance(tc.after)
		b := newBrowser(t, env)
		b.signIn(env.Client)
		status, html := b.get(page)
		if status != http.StatusOK || strings.Contains(html, `id="revoke"`) == tc.expired || strings.Contains(html, `id="expired"`) != tc.expired {
			t.Errorf("%v on, the certificate's page (%d): revocable %v, said expired %v", tc.after, status, strings.Contains(html, `id="revoke"`), strings.Contains(html, `id="expired"`))
		}
	}
}

// TestConsoleCertificateKey: a certificate's page names its key as the
// API does, an ML-DSA key too, which Go's parser leaves unread.
func TestConsoleCertificateKey(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Console Root")
	b := newBrowser(t, env)
	b.signIn(env.Client)
	for _, alg := range []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmMlDsa44, openpca.KeyAlgorithmMlDsa87} {
		key, err := pki.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		der, err := pki.CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "key.example"}})
		if err != nil {
			t.Fatal(err)
		}
		leafARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
			Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
		page := "/console/ca/certificate?" + url.Values{"arn": {caARN}, "serial": {leafARN[strings.LastIndex(leafARN, "/")+1:]}}.Encode()
		if status, html := b.get(page); status != http.StatusOK || !strings.Contains(html, "<tr><th>Key</th><td>"+string(alg)+"</td></tr>") {
			t.Errorf("the page of a certificate of an %s key (%d) does not name it:\n%s", alg, status, html)
		}
	}
}

// TestConsoleExtrasDenialsUnlogged: what a page shows beside what it was
// asked (each CA's certificate on the list of CAs, a CA's tags), which a
// key may not read, is left out without a log line: a page of many CAs
// wrote a denial per CA at each load. What the key asked for itself,
// refused, is logged as the API's refusals are.
func TestConsoleExtrasDenialsUnlogged(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	var caARN string
	for i := range 4 {
		caARN, _ = env.NewActiveRoot(t, fmt.Sprintf("Viewed Root %d", i))
	}
	viewer, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "viewer", Document: `{"Statement":{"Effect":"Allow",
		"Action":["acm-pca:ListCertificateAuthorities","acm-pca:DescribeCertificateAuthority"],"Resource":"*"}}`})
	b := newBrowser(t, env)
	b.signIn(viewer)
	for _, path := range []string{"/console/cas", caPage(caARN)} {
		if status, page := b.get(path); status != http.StatusOK || !strings.Contains(page, "Viewed Root 3") {
			t.Fatalf("%s: %d\n%.300s", path, status, page)
		}
	}
	if n := strings.Count(logs.String(), `msg="access denied"`); n != 0 {
		t.Errorf("%d lines of denials of what the pages show beside what was asked:\n%s", n, logs.String())
	}
	if status, _ := b.post("/console/ca/status", withCSRF(url.Values{"arn": {caARN}, "status": {"DISABLED"}}, b.csrf)); status != http.StatusForbidden {
		t.Errorf("the viewer disabled a CA: %d", status)
	}
	if n := strings.Count(logs.String(), `msg="access denied"`); n != 1 {
		t.Errorf("%d lines of the denial of what the viewer asked, want 1:\n%s", n, logs.String())
	}
}

// TestConsoleStaticFiles: the console's scripts are kept by the browser,
// which asks by their ETag whether they changed (304, no body, if not);
// the WebAssembly comes gzipped to a browser that takes gzip, and whole to
// one that does not; a small script comes whole.
func TestConsoleStaticFiles(t *testing.T) {
	env := testenv.Start(t)
	b := newBrowser(t, env)
	b.signIn(env.Client)
	wasm, err := os.ReadFile("static/verify.wasm")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("static/verify.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, accept string
		want               []byte
		gzipped            bool
	}{
		{"the WebAssembly, to a browser that takes gzip", "/console/static/verify.wasm", "gzip, deflate, br", wasm, true},
		{"the WebAssembly, to one that refuses gzip", "/console/static/verify.wasm", "gzip;q=0, *", wasm, false},
		{"the WebAssembly, to one that takes no coding", "/console/static/verify.wasm", "identity", wasm, false},
		{"a small script", "/console/static/verify.js", "gzip", script, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body, res := b.do(http.MethodGet, c.path, nil, "Accept-Encoding", c.accept)
			if res.Uncompressed {
				t.Fatal("the client's transport took the coding off")
			}
			if status != http.StatusOK || res.Header.Get("Cache-Control") != "private, no-cache" {
				t.Fatalf("%d, Cache-Control %q", status, res.Header.Get("Cache-Control"))
			}
			got := []byte(body)
			if gz := res.Header.Get("Content-Encoding") == "gzip"; gz != c.gzipped {
				t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
			} else if gz {
				zr, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if len(body) > len(c.want)/2 {
					t.Errorf("%d bytes gzipped of %d", len(body), len(c.want))
				}
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("%d bytes, not the file's %d", len(got), len(c.want))
			}
			etag := res.Header.Get("ETag")
			status, body, res = b.do(http.MethodGet, c.path, nil, "Accept-Encoding", c.accept, "If-None-Match", etag)
			if status != http.StatusNotModified || body != "" {
				t.Errorf("asked again with its ETag %s: %d, %d bytes", etag, status, len(body))
			}
		})
	}
	if status, _ := b.get("/console/static/none.js"); status != http.StatusNotFound {
		t.Errorf("a file that is not one of the console's: %d", status)
	}
}

// TestConsoleSearchText: a search's text is cut to 200 bytes on a
// character's boundary, and text that is not UTF-8, or holds NUL, is
// refused (400): PostgreSQL refuses both, which was a 500 and an ERROR
// line, and so was a long search cut inside a character.
func TestConsoleSearchText(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var logs testenv.SyncBuffer
			env := testenv.Start(t, func(c *app.Config) {
				if store == "postgres" {
					c.Database, c.ObjectStore = testenv.NewPostgresDB(t), "local"
				}
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			caARN, _ := caWithLeaf(t, env, "Search Root", "Café Leaf")
			b := newBrowser(t, env)
			b.signIn(env.Client)
			for _, tc := range []struct {
				q     string
				want  int
				found bool
			}{
				{"Café", http.StatusOK, true},
				{"a" + strings.Repeat("é", 100), http.StatusOK, false}, // 201 bytes
				{"\x00", http.StatusBadRequest, false},
				{"Caf\xff", http.StatusBadRequest, false},
				{"Caf\xc3", http.StatusBadRequest, false},
				{strings.Repeat("\x80", 300), http.StatusBadRequest, false}, // cut to nothing, it was every certificate
			} {
				status, page := b.get("/console/ca/certificates?" + url.Values{"arn": {caARN}, "q": {tc.q}}.Encode())
				if found := strings.Contains(page, "Café Leaf"); status != tc.want || found != tc.found {
					t.Errorf("search %q: %d, the certificate found %v; want %d, %v", tc.q, status, found, tc.want, tc.found)
				}
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("searches logged an error:\n%s", logs.String())
			}
		})
	}
}
