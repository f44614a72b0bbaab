package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswersBounded: an answer the SDK reads whole (a page of
// ListMultipartUploads) fails past maxAnswer, while GetObject's body,
// which its caller bounds, is read whole however large.
func TestAnswersBounded(t *testing.T) {
	const object = 3 * maxAnswer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	r, err := st.Get(ctx, "bucket", "key")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := io.Copy(io.Discard, r); n != object || err != nil {
		t.Errorf("an object of %d bytes: read %d, %v", object, n, err)
	}
}
