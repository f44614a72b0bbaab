package testenv

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/openpca/openpca/app"
)

// S3 is a real S3-compatible server (versitygw) on 127.0.0.1, its objects
// plain files in a temporary folder. It can be stopped and started again
// on the same port and folder.
type S3 struct {
	URL       string
	AccessKey string
	SecretKey string
	binary    string
	addr      string
	dir       string
	cmd       *exec.Cmd
}

// versitygw finds the versitygw binary: $OPENPCA_VERSITYGW, the PATH, or
// $GOPATH/bin where scripts/test installs it.
func versitygw(t testing.TB) string {
	if p := os.Getenv("OPENPCA_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	if p := filepath.Join(gopath, "bin", "versitygw"); fileExists(p) {
		return p
	}
	t.Fatal("versitygw is not installed: scripts/test installs it (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartS3 starts an S3-compatible server for the test and stops it when
// the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &S3{URL: "http://" + addr, AccessKey: "openpcatest", SecretKey: "openpca-test-secret", binary: versitygw(t), addr: addr, dir: t.TempDir()}
	s.Start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Start starts the server (again).
func (s *S3) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.binary, "--port", s.addr, "posix", s.dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			t.Fatalf("versitygw did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server; it is safe to call twice.
func (s *S3) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Client returns an S3 client for the server.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates a bucket.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
}

// Get reads an object.
func (s *S3) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	b, err := s.TryGet(t, bucket, key)
	if err != nil {
		t.Fatalf("getting s3://%s/%s: %v", bucket, key, err)
	}
	return b
}

// TryGet reads an object that may not be there yet.
func (s *S3) TryGet(t testing.TB, bucket, key string) ([]byte, error) {
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Use returns an Option that sends a server's reports to s, with the
// given credentials in the environment as the standard AWS configuration
// would find them.
func (s *S3) Use(t testing.TB, accessKey, secretKey string) Option {
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	return func(c *app.Config) { c.S3Endpoint = s.URL }
}
