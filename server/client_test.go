package server_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/server"
)

// TestAuditLogClientEscapes: what a server says in its errors, and a
// public key that is none, reach the auditor's terminal escaped (the
// server may be the party audited, and its escape sequences would rewrite
// the screen); a verifier key is returned as it is.
func TestAuditLogClientEscapes(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "openpca-audit")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // in the error, or the key returned if no error
	}{
		{"an error", http.StatusBadRequest, `{"__type":"Bad\u001b[2J","message":"\u202egnp.exe \u009b31m \u0007"}`, `Bad\x1b[2J: \u202egnp.exe \u009b31m \a`},
		{"not a key", http.StatusOK, "\x1b]0;owned\x07 not+a+key\n", `\x1b]0;owned\a not+a+key is not a verifier key`},
		{"a key", http.StatusOK, vkey + "\n", vkey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			c, err := server.NewAuditLogClient(ts.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			key, err := c.PublicKey(t.Context())
			got := key
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) || strings.ContainsAny(got, "\x1b\x07\u202e\u009b") {
				t.Errorf("got %q (error %v), want %q, escaped", key, err, tc.want)
			}
		})
	}
}
