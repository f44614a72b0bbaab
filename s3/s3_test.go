package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/s3"
)

func open(t *testing.T, srv *testenv.S3, secret string) *s3.Store {
	t.Helper()
	srv.Use(t, srv.AccessKey, secret)
	st, err := s3.Open(t.Context(), srv.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPutSizes(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "objects")
	st := open(t, srv, srv.SecretKey)
	for _, size := range []int{0, 1000, s3.PartSize, s3.PartSize + 1, 2*s3.PartSize + 12345} {
		data := make([]byte, size)
		rand.Read(data)
		key := "dir/obj"
		if err := st.Put(t.Context(), openpca.Object{Bucket: "objects", Key: key, ContentType: "application/octet-stream"}, bytes.NewReader(data)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got := srv.Get(t, "objects", key); !bytes.Equal(got, data) {
			t.Errorf("size %d: read back %d bytes that differ", size, len(got))
		}
		r, err := st.Get(t.Context(), "objects", key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: Get read back %d bytes that differ: %v", size, len(got), err)
		}
	}
	if _, err := st.Get(t.Context(), "objects", "no/such/key"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("Get of a missing object: %v", err)
	}
}

// failingReader fails after n bytes, as a report whose rows cannot be
// read would.
type failingReader struct{ n int }

var errRows = errors.New("rows unavailable")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errRows
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestPutFailureLeavesNothing(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "objects")
	st := open(t, srv, srv.SecretKey)
	err := st.Put(t.Context(), openpca.Object{Bucket: "objects", Key: "partial", ContentType: "text/csv"}, &failingReader{n: 2*s3.PartSize + 10})
	if !errors.Is(err, errRows) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	c := srv.Client()
	if _, err := c.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("objects"), Key: aws.String("partial")}); err == nil {
		t.Error("a failed upload left an object")
	}
	ups, err := c.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("objects")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("a failed upload was not aborted: %d uploads open", len(ups.Uploads))
	}
}

func TestCheckBucket(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "present")
	st := open(t, srv, srv.SecretKey)
	if err := st.CheckBucket(t.Context(), "present", ""); err != nil {
		t.Errorf("existing bucket: %v", err)
	}
	if got := srv.Get(t, "present", s3.ProbeKey); len(got) != 0 {
		t.Errorf("probe object holds %d bytes", len(got))
	}
	if err := st.CheckBucket(t.Context(), "absent", ""); !errors.Is(err, openpca.ErrBucketNotFound) {
		t.Errorf("missing bucket: %v", err)
	}
	wrong := open(t, srv, "wrong-secret")
	if err := wrong.CheckBucket(t.Context(), "present", ""); !errors.Is(err, openpca.ErrBucketAccess) {
		t.Errorf("bad credentials: %v", err)
	}
	srv.Stop(t)
	if err := st.CheckBucket(t.Context(), "present", ""); err == nil || errors.Is(err, openpca.ErrBucketNotFound) || errors.Is(err, openpca.ErrBucketAccess) {
		t.Errorf("server down: %v, want a plain error", err)
	}
}

// TestCheckBucketACL: the probe carries the ACL of the objects to come. A
// bucket that refuses public objects (S3's Block Public Access, here a
// proxy that answers them as S3 does) fails the check of a CRL
// configuration that would write public CRLs, and passes one that would
// write private ones.
func TestCheckBucketACL(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "present")
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Header.Get("X-Amz-Acl"), "public-") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer blocking.Close()
	srv.Use(t, srv.AccessKey, srv.SecretKey)
	st, err := s3.Open(t.Context(), blocking.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CheckBucket(t.Context(), "present", openpca.S3ObjectAclPublicRead); !errors.Is(err, openpca.ErrBucketAccess) {
		t.Errorf("public objects in a bucket that blocks them: %v, want ErrBucketAccess", err)
	}
	if err := st.CheckBucket(t.Context(), "present", openpca.S3ObjectAclBucketOwnerFullControl); err != nil {
		t.Errorf("private objects: %v", err)
	}
}

// TestGetForbidden: an object the server's credentials may not read is
// ErrBucketAccess, with S3's error: the CRLs' read-back gives up at once,
// and says what is missing.
func TestGetForbidden(t *testing.T) {
	for _, tt := range []struct {
		code   string
		denied bool
	}{
		{"AccessDenied", true},
		{"AllAccessDisabled", true},
		{"SignatureDoesNotMatch", false},
	} {
		t.Run(tt.code, func(t *testing.T) {
			forbidding := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+tt.code+`</Code><Message>Forbidden</Message></Error>`)
			}))
			defer forbidding.Close()
			srv := testenv.StartS3(t)
			srv.Use(t, srv.AccessKey, srv.SecretKey)
			st, err := s3.Open(t.Context(), forbidding.URL, "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Get(t.Context(), "crls", "crl/x.crl")
			if err == nil || !strings.Contains(err.Error(), tt.code) || errors.Is(err, openpca.ErrBucketAccess) != tt.denied {
				t.Errorf("a read refused: %v, want ErrBucketAccess: %v", err, tt.denied)
			}
		})
	}
}

// TestDiscardPartial aborts the multipart upload a dead server left open
// for a key, and not another key's.
func TestDiscardPartial(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "objects")
	st := open(t, srv, srv.SecretKey)
	c := srv.Client()
	for _, key := range []string{"report.json", "report.json.proof.jsonl"} {
		if _, err := c.CreateMultipartUpload(t.Context(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("objects"), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DiscardPartial(t.Context(), "objects", "report.json"); err != nil {
		t.Fatal(err)
	}
	ups, err := c.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("objects")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].Key) != "report.json.proof.jsonl" {
		t.Errorf("uploads left open: %d (%v)", len(ups.Uploads), ups.Uploads)
	}
}

// TestUnreachable: an S3 server that refuses connections, cuts them,
// throttles (429) or fails (500) past the client's retries, is
// ServiceUnavailable, which
// callers may try again; the caller's own deadline is not, nor an answer
// no retry changes (501), nor a certificate not trusted.
func TestUnreachable(t *testing.T) {
	// A socket bound and not listening holds its port, to which the
	// system refuses connections: a port merely found free could be taken
	// by another test's server before the client connects.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	refused := fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	answering := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cutting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer cutting.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hanging.Close()
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer untrusted.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	for _, c := range []struct {
		name, endpoint string
		timeout        time.Duration // the caller's
		unavailable    bool
	}{
		{"refused", refused, time.Minute, true},
		{"cut", cutting.URL, time.Minute, true},
		{"failing", answering(http.StatusInternalServerError), time.Minute, true},
		{"throttling", answering(http.StatusTooManyRequests), time.Minute, true},
		{"past the caller's deadline", hanging.URL, 200 * time.Millisecond, false},
		{"not implemented", answering(http.StatusNotImplemented), time.Minute, false},
		{"a certificate not trusted", untrusted.URL, time.Minute, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := s3.Open(t.Context(), c.endpoint, "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
			defer cancel()
			err = st.CheckBucket(ctx, "bucket", openpca.S3ObjectAclBucketOwnerFullControl)
			if got := openpca.ErrorCode(err) == openpca.CodeServiceUnavailable; err == nil || got != c.unavailable {
				t.Errorf("%v: unavailable %v, want %v", err, got, c.unavailable)
			}
		})
	}
}

// TestPutPartsForHint: an upload's parts are of one size, PartSize or as
// large as lets the object's size hint fill four fifths of them; an
// object past them is refused before S3 would, and leaves nothing. Here
// uploads take 5 parts at most.
func TestPutPartsForHint(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "objects")
	st := open(t, srv, srv.SecretKey)
	s3.SetMaxParts(st, 5)
	for _, tc := range []struct {
		hint int64
		most int // 5 parts of 5 MiB, or of 10 MiB for 40 MiB hinted
	}{{0, 25 << 20}, {40 << 20, 50 << 20}} {
		put := func(size int) ([]byte, error) {
			data := make([]byte, size)
			rand.Read(data)
			return data, st.Put(t.Context(), openpca.Object{Bucket: "objects", Key: "big", ContentType: "application/octet-stream", SizeHint: tc.hint}, bytes.NewReader(data))
		}
		for _, size := range []int{tc.most - 1, tc.most} {
			data, err := put(size)
			if err != nil {
				t.Fatalf("hint %d, %d bytes: %v", tc.hint, size, err)
			}
			if got := srv.Get(t, "objects", "big"); !bytes.Equal(got, data) {
				t.Errorf("hint %d, %d bytes: read back %d bytes that differ", tc.hint, size, len(got))
			}
		}
		if _, err := put(tc.most + 1); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("larger than the 5 parts of %d MiB", tc.most/5>>20)) {
			t.Errorf("hint %d, an object past the parts: %v", tc.hint, err)
		}
	}
	ups, err := srv.Client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("objects")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("the refused uploads were not aborted: %v, %v", ups, err)
	}
}

// TestCompleteAnswerLost: a CompleteMultipartUpload whose answer was lost
// is sent again by the client, which S3 answers NoSuchUpload, the upload
// completed by the first (here a proxy before versitygw answers as S3
// does). The object in place, of the upload's size and parts, is the
// upload's: the Put succeeds. One that S3 lost (aborted, by a lifecycle
// rule say) fails to be written again, not as a bucket that is missing.
func TestCompleteAnswerLost(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.CreateBucket(t, "objects")
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	for _, forwarded := range []bool{true, false} {
		var completes atomic.Int32
		losing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, complete := r.URL.Query()["uploadId"]; !complete || r.Method != http.MethodPost {
				proxy.ServeHTTP(w, r)
				return
			}
			if completes.Add(1) > 1 || !forwarded {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`)
				return
			}
			proxy.ServeHTTP(httptest.NewRecorder(), r) // completed, its answer lost
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		srv.Use(t, srv.AccessKey, srv.SecretKey)
		st, err := s3.Open(t.Context(), losing.URL, "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 2*s3.PartSize+12345)
		rand.Read(data)
		key := fmt.Sprintf("lost-%v", forwarded)
		if !forwarded {
			// An object of the key's before is not the upload's.
			if err := st.Put(t.Context(), openpca.Object{Bucket: "objects", Key: key}, bytes.NewReader(data[:1000])); err != nil {
				t.Fatal(err)
			}
		}
		err = st.Put(t.Context(), openpca.Object{Bucket: "objects", Key: key, ContentType: "application/octet-stream"}, bytes.NewReader(data))
		losing.Close()
		switch {
		case forwarded && err != nil:
			t.Errorf("an upload completed, the answer lost: %v", err)
		case forwarded && !bytes.Equal(srv.Get(t, "objects", key), data):
			t.Error("an upload completed, the answer lost: the object differs")
		case !forwarded && openpca.ErrorCode(err) != openpca.CodeServiceUnavailable:
			t.Errorf("an upload S3 lost: %v, want ServiceUnavailable", err)
		}
		if completes.Load() < 2 && forwarded {
			t.Errorf("the client sent CompleteMultipartUpload %d times", completes.Load())
		}
	}
}
