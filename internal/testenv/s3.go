package testenv

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/openpca/openpca/app"
)

// S3 is a real S3-compatible server (versitygw) on 127.0.0.1, its objects
// plain files in a temporary folder. It can be stopped and started again
// on the same folder, at the same URL.
type S3 struct {
	URL       string
	AccessKey string
	SecretKey string
	*process
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
	s := &S3{AccessKey: "openpcatest", SecretKey: "openpca-test-secret"}
	binary, dir := versitygw(t), t.TempDir()
	s.process = newProcess(t, "versitygw", func(addr string) *exec.Cmd {
		cmd := exec.Command(binary, "--port", addr, "posix", dir)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
		return cmd
	}, func(ctx context.Context, addr string) error {
		_, err := s.client("http://"+addr).ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
	s.URL = "http://" + s.relay.Addr()
	s.Start(t)
	return s
}

// Start starts the server, again if it was stopped.
func (s *S3) Start(t testing.TB) {
	t.Helper()
	s.start(t)
}

// Stop stops the server; it is safe to call twice.
func (s *S3) Stop(t testing.TB) { s.stop() }

// Client returns an S3 client for the server.
func (s *S3) Client() *s3.Client { return s.client(s.URL) }

func (s *S3) client(url string) *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
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
