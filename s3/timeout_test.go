package s3

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestClientTimeoutUnreachable: a server that does not answer within the
// client's own timeout is ServiceUnavailable, though the error is a
// deadline's, when the caller set none.
func TestClientTimeoutUnreachable(t *testing.T) {
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hanging.Close()
	st := openAt(t, hanging.URL, 200*time.Millisecond)
	err := st.CheckBucket(context.Background(), "bucket", openpca.S3ObjectAclBucketOwnerFullControl)
	if openpca.ErrorCode(err) != openpca.CodeServiceUnavailable {
		t.Errorf("%v, want ServiceUnavailable", err)
	}
}

// openAt opens a store at a test's server, with credentials of no one,
// and timeout for a request.
func openAt(t *testing.T, endpoint string, timeout time.Duration) *Store {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	st, err := open(t.Context(), endpoint, "us-east-1", timeout)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
