package smallbody_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/smallbody"
)

// TestRead: bodies up to the limit are read whole, with or without a
// length; one past it is ErrTooLarge.
func TestRead(t *testing.T) {
	const limit = 1 << 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := smallbody.Read(w, r, limit)
		switch {
		case errors.Is(err, smallbody.ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.Write(body)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		body    io.Reader
		status  int
		echoLen int
	}{
		{"empty", http.NoBody, http.StatusOK, 0},
		{"at the limit", bytes.NewReader(make([]byte, limit)), http.StatusOK, limit},
		{"at the limit, chunked", io.MultiReader(strings.NewReader(strings.Repeat("a", limit))), http.StatusOK, limit},
		{"past the limit", bytes.NewReader(make([]byte, limit+1)), http.StatusRequestEntityTooLarge, -1},
		{"past the limit, chunked", io.MultiReader(strings.NewReader(strings.Repeat("a", 4*limit))), http.StatusRequestEntityTooLarge, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(srv.URL, "application/octet-stream", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || tc.echoLen >= 0 && len(b) != tc.echoLen {
				t.Errorf("%d, %d bytes back; want %d, %d", res.StatusCode, len(b), tc.status, tc.echoLen)
			}
		})
	}
}
