package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestAnswersBounded: an answer the SDK reads whole (a page of
// ListMultipartUploads, an error of GetObject) fails past maxAnswer,
// while GetObject's body, which its caller bounds, is read whole however
// large.
func TestAnswersBounded(t *testing.T) {
	const object = 3 * maxAnswer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			// S3's answer for no such key, padded past the bound.
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>`)
			io.WriteString(w, strings.Repeat(" ", maxAnswer))
			io.WriteString(w, `</Error>`)
			return
		}
		if _, ok := r.URL.Query()["uploads"]; ok {
			// A page as S3 writes it, of no upload, padded past the bound.
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>bucket</Bucket><IsTruncated>false</IsTruncated>`)
			io.WriteString(w, strings.Repeat(" ", maxAnswer))
			io.WriteString(w, `</ListMultipartUploadsResult>`)
			return
		}
		w.Write(bytes.Repeat([]byte{'x'}, object))
	}))
	defer srv.Close()
	st := openAt(t, srv.URL, 10*time.Second)
	ctx := context.Background()
	if err := st.DiscardPartial(ctx, "bucket", "key"); err == nil || !strings.Contains(err.Error(), "bytes taken") {
		t.Errorf("a page of ListMultipartUploads longer than %d bytes: %v", maxAnswer, err)
	}
	// An error's body is bounded even there: unread, it is no NoSuchKey.
	if _, err := st.Get(ctx, "bucket", "missing"); err == nil || errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("GetObject answered with an error longer than %d bytes: %v", maxAnswer, err)
	}
	r, err := st.Get(ctx, "bucket", "key")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := io.Copy(io.Discard, r); n != object || err != nil {
		t.Errorf("an object of %d bytes: read %d, %v", object, n, err)
	}
}
