package console_test

import (
	"net/http"
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
