package testenv

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
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
	exited    chan struct{} // closed once cmd has exited
}

// versitygw finds the versitygw binary: $OPENPCA_VERSITYGW, the PATH, or
// $GOPATH/bin where .ci/run installs it.
func versitygw(t testing.TB) string {
	if p := os.Getenv("OPENPCA_VERSITYGW"); p != "" {
		return p
	}
	return goBinary(t, "versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartS3 starts an S3-compatible server for the test and stops it when
// the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{AccessKey: "openpcatest", SecretKey: "openpca-test-secret", binary: versitygw(t), dir: t.TempDir()}
	t.Cleanup(func() { s.Stop(t) })
	// A port found free is not reserved: another test's server may take it
	// before versitygw binds it, and versitygw then exits. Pick another.
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = l.Addr().String()
		s.URL = "http://" + s.addr
		l.Close()
		out, ok := s.start(t)
		if ok {
			return s
		}
		if attempt == 5 {
			t.Fatalf("versitygw did not start: %s", out)
		}
	}
}

// Start starts the server again, on the same port and folder.
func (s *S3) Start(t testing.TB) {
	t.Helper()
	if out, ok := s.start(t); !ok {
		t.Fatalf("versitygw did not start again on %s: %s", s.addr, out)
	}
}

// start runs versitygw and waits until it answers an S3 request: a TCP
// connection alone could reach another process that took the port. It
// returns versitygw's output if it exited or never answered.
func (s *S3) start(t testing.TB) (string, bool) {
	t.Helper()
	s.cmd = exec.Command(s.binary, "--port", s.addr, "posix", s.dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	out := &SyncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(s.cmd)
	s.exited = exited
	client := s.Client()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			s.cmd = nil
			return out.String(), false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return "", true
		}
	}
	s.Stop(t)
	return out.String(), false
}

// Stop stops the server; it is safe to call twice.
func (s *S3) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
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
