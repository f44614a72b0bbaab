package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
)

// FuzzConsole sends the console what anyone on the network could, without
// a session: any method, path, form and cookie. It answers each with the
// sign-in page, a redirect to it, or a refusal, never a failure of its own
// and never another page.
func FuzzConsole(f *testing.F) {
	env := testenv.Start(f)
	client := &http.Client{Transport: env.Transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, seed := range []struct{ method, path, body, cookie string }{
		{"GET", "", "", ""},
		{"POST", "sign-in", "access_key_id=AKIDEXAMPLE&secret_access_key=x", ""},
		{"GET", "ca?arn=arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x", "", "openpca_console=abc"},
		{"POST", "ca/revoke", "csrf=x&arn=y&serial=01&reason=KEY_COMPROMISE", "openpca_console=" + strings.Repeat("A", 43)},
		{"GET", "static/verify.wasm", "", ""},
		{"PUT", "cas", "", ""},
	} {
		f.Add(seed.method, seed.path, seed.body, seed.cookie)
	}
	f.Fuzz(func(t *testing.T, method, path, body, cookie string) {
		req, err := http.NewRequest(method, env.URL+"/console/"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookie)
		res, err := client.Do(req)
		if err != nil {
			// The client refuses what no client can send (a cookie with a
			// control character, a method with a space); the server must
			// still be there.
			res, err := client.Get(env.URL + "/healthz")
			if err != nil {
				t.Fatalf("the server is gone after %s /console/%s: %v", method, path, err)
			}
			res.Body.Close()
			return
		}
		defer res.Body.Close()
		page := make([]byte, 4096)
		n, _ := res.Body.Read(page)
		switch res.StatusCode {
		case http.StatusOK:
			if !strings.Contains(string(page[:n]), `action="/console/sign-in"`) {
				t.Fatalf("%s /console/%s served a page without a session:\n%s", method, path, page[:n])
			}
		case http.StatusSeeOther, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusBadRequest, http.StatusUnauthorized,
			http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		default:
			t.Fatalf("%s /console/%s: status %d", method, path, res.StatusCode)
		}
	})
}

// FuzzConsoleSignedIn sends the console what a signed-in user could: any
// path, query and form, with the session's CSRF token wherever the input
// says CSRF. Whatever it asks, the console answers without failing.
func FuzzConsoleSignedIn(f *testing.F) {
	env := testenv.Start(f)
	caARN, serial := caWithLeaf(f, env, "Fuzzed Root", "fuzz.example")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: env.Transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.PostForm(env.URL+"/console/sign-in", url.Values{"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {testenv.SecretAccessKey}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		f.Fatalf("signing in: %v", err)
	}
	res.Body.Close()
	res, err = client.Get(env.URL + "/console/verify")
	if err != nil {
		f.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		f.Fatal("no CSRF token on the verify page")
	}
	csrf := string(m[1])
	arn := url.QueryEscape(caARN)
	for _, seed := range []struct {
		post        bool
		path, input string
	}{
		{false, "ca", "arn=" + arn},
		{false, "ca/certificates", "arn=" + arn + "&q=fuzz&status=issued&before=99"},
		{false, "ca/certificate", "arn=" + arn + "&serial=" + serial},
		{false, "ca/charts", "arn=" + arn},
		{false, "ca/report", "arn=" + arn + "&id=00000000-0000-0000-0000-000000000000&proof=1"},
		{true, "ca/revoke", "csrf=CSRF&arn=" + arn + "&serial=" + serial + "&reason=SUPERSEDED"},
		{true, "ca/report", "csrf=CSRF&arn=" + arn + "&bucket=nope&format=CSV"},
		{true, "ca/status", "csrf=CSRF&arn=" + arn + "&status=DISABLED"},
	} {
		f.Add(seed.post, seed.path, seed.input)
	}
	f.Fuzz(func(t *testing.T, post bool, path, input string) {
		input = strings.ReplaceAll(input, "CSRF", csrf)
		var req *http.Request
		var err error
		if post {
			req, err = http.NewRequest(http.MethodPost, env.URL+"/console/"+path, strings.NewReader(input))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequest(http.MethodGet, env.URL+"/console/"+path+"?"+input, nil)
		}
		if err != nil || strings.Contains(path, "sign-out") {
			return // not a request a client could send, or one that would end the session
		}
		res, err := client.Do(req)
		if err != nil {
			res, err := client.Get(env.URL + "/healthz")
			if err != nil {
				t.Fatalf("the server is gone after %s: %v", req.URL, err)
			}
			res.Body.Close()
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: status %d", req.Method, req.URL, input, res.StatusCode)
		}
	})
}
