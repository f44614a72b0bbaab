// Package s3 keeps objects in an S3-compatible store through the AWS SDK
// for Go's S3 client.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/awsconfig"
)

// PartSize is the least size of the parts of a multipart upload, the
// least S3 allows. Put holds two parts at once.
const PartSize = 5 << 20

// maxParts is how many parts S3 takes in a multipart upload.
const maxParts = 10000

// partSize is the size of every part but the last of an upload of about
// hint bytes: PartSize, or as much more, in MiB, as lets hint fill four
// fifths of the parts. At PartSize alone an object ended at 48.8 GiB (an
// audit report of a CA of some hundred million certificates). The parts
// are of one size, as some S3-compatible stores (Cloudflare R2) require.
func (s *Store) partSize(hint int64) int {
	per := (hint/int64(s.maxParts-s.maxParts/5) + 1<<20 - 1) &^ (1<<20 - 1)
	return int(max(PartSize, min(per, 5<<30)))
}

// maxAnswer bounds the body of an S3 answer the SDK reads whole (an error,
// a page of ListMultipartUploads, CompleteMultipartUpload's): S3's take
// some hundreds of KB at most, and a store that sent gigabytes (broken,
// hostile, or reached through a path another can change) would take the
// server's memory.
const maxAnswer = 4 << 20

// ProbeKey is the object CheckBucket writes to prove it may write to a
// bucket; AWS Private CA writes an object of the same name.
const ProbeKey = "acm-pca-permission-test-key"

// Store is an openpca.ObjectStore on S3.
type Store struct {
	client *awss3.Client
	// streaming is the client's HTTP client whose answers' bodies are
	// bounded only when they are errors: GetObject's body goes, unread,
	// to the caller, which bounds what it reads.
	streaming aws.HTTPClient
	endpoint  string // "" for AWS's S3
	region    string
	// maxParts is the constant, but in tests.
	maxParts int32
}

var _ openpca.ObjectStore = (*Store)(nil)

// Open returns a Store configured from the standard AWS configuration
// (environment, shared files, instance roles), in region unless the
// configuration names one, and at endpoint if it is set, with path-style
// addressing as S3-compatible servers expect.
func Open(ctx context.Context, endpoint, region string) (*Store, error) {
	return open(ctx, endpoint, region, 5*time.Minute)
}

// open is Open with the client's timeout of a request.
func open(ctx context.Context, endpoint, region string, timeout time.Duration) (*Store, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = region
	}
	httpClient := awsconfig.HTTPClient(cfg, timeout)
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		o.RetryMaxAttempts = 3
		// Checksums only where S3 requires them: not every S3-compatible
		// server accepts the newer ones.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.HTTPClient = awsconfig.BoundBodies(httpClient, maxAnswer)
	})
	return &Store{client: client, streaming: awsconfig.BoundErrorBodies(httpClient, maxAnswer), endpoint: strings.TrimSuffix(endpoint, "/"), region: cfg.Region, maxParts: maxParts}, nil
}

// URL implements openpca.ObjectStore: on AWS, the virtual-hosted address
// over http, as AWS Private CA writes CRL distribution points; elsewhere
// the path-style address at the endpoint.
func (s *Store) URL(bucket, key string) string {
	if s.endpoint == "" {
		return "http://" + bucket + ".s3." + s.region + ".amazonaws.com/" + key
	}
	return s.endpoint + "/" + bucket + "/" + key
}

// CheckBucket implements openpca.ObjectStore: the bucket must answer
// HeadBucket and accept a small probe object with the ACL.
func (s *Store) CheckBucket(ctx context.Context, bucket string, acl openpca.S3ObjectAcl) error {
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return classify(ctx, err)
	}
	_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(ProbeKey), Body: bytes.NewReader(nil), ContentLength: aws.Int64(0), ACL: cannedACLs[acl],
	})
	return classify(ctx, err)
}

// classify maps S3's answers about a bucket to the domain's errors, of a
// call made with ctx.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	if errors.As(err, &nf) || errors.As(err, &nsb) {
		return openpca.ErrBucketNotFound
	}
	if errorCode(err) == "NoSuchUpload" {
		// An upload aborted under the server (a lifecycle rule's), or
		// completed by a request whose answer was lost, which completed
		// could not tell: writing it again may succeed.
		return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The object store lost an upload of the server's; retry later.", Cause: fmt.Errorf("s3: %w", err)}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return openpca.ErrBucketNotFound
		case http.StatusForbidden:
			return openpca.ErrBucketAccess
		}
	}
	err = fmt.Errorf("s3: %w", err)
	if unreachable(ctx, err) {
		return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The server cannot reach its object store now; retry later.", Cause: err}
	}
	return err
}

// unreachable reports whether err, of a call made with ctx, is of an S3
// server that could not be reached, or failed, for now, so that a try
// later may succeed: one the client retried to no avail (throttling, 5xx,
// S3's RequestTimeout, connections refused or cut), an answer of 429,
// 500, 502, 503 or 504, or a request that got no answer (a connection
// refused, cut or timed out by the client, a proxy that failed). Not a
// name that does not exist, nor a certificate not trusted, which no retry
// changes, nor the caller's own end.
func unreachable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if dns, ok := errors.AsType[*net.DNSError](err); ok && dns.IsNotFound {
		return false
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return false
	}
	if _, ok := errors.AsType[*retry.MaxAttemptsError](err); ok {
		return true
	}
	// A request that got no answer is a response error too, of status 0.
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok && re.HTTPStatusCode() != 0 {
		switch re.HTTPStatusCode() {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if _, ok := errors.AsType[*smithyhttp.RequestSendError](err); ok {
		return true
	}
	if t, ok := errors.AsType[net.Error](err); ok && t.Timeout() {
		return true
	}
	_, op := errors.AsType[*net.OpError](err)
	return op || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// cannedACLs maps the API's ACLs to S3's.
var cannedACLs = map[openpca.S3ObjectAcl]types.ObjectCannedACL{
	openpca.S3ObjectAclPublicRead:             types.ObjectCannedACLPublicRead,
	openpca.S3ObjectAclBucketOwnerFullControl: types.ObjectCannedACLBucketOwnerFullControl,
}

// Get implements openpca.ObjectStore.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, func(o *awss3.Options) {
		o.HTTPClient = s.streaming
	})
	if _, ok := errors.AsType[*types.NoSuchKey](err); ok {
		return nil, openpca.ErrNotFound
	}
	// S3 answers 403 for more than a policy's refusal (a clock too far
	// off, a signature that does not match, a KMS key that will not
	// decrypt): those are not for good.
	if code := errorCode(err); code == "AccessDenied" || code == "AllAccessDisabled" {
		return nil, fmt.Errorf("%w: s3: %w", openpca.ErrBucketAccess, err)
	}
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok && re.HTTPStatusCode() == http.StatusForbidden {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	return out.Body, nil
}

// Put implements openpca.ObjectStore. An object that fits in one part is
// one PutObject; a larger one is a multipart upload, which S3 shows only
// once it is complete, and which is aborted if anything fails.
func (s *Store) Put(ctx context.Context, o openpca.Object, r io.Reader) error {
	bucket, key, contentType, acl := o.Bucket, o.Key, o.ContentType, cannedACLs[o.ACL]
	size := s.partSize(o.SizeHint)
	first := make([]byte, size)
	n, err := io.ReadFull(r, first)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String(contentType), ACL: acl,
			Body: bytes.NewReader(first[:n]), ContentLength: aws.Int64(int64(n)),
		})
		return classify(ctx, err)
	}
	if err != nil {
		return err
	}
	up, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String(contentType), ACL: acl,
	})
	if err != nil {
		return classify(ctx, err)
	}
	parts, written, err := s.uploadParts(ctx, bucket, key, up.UploadId, first, r)
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		// The client sent it again, the first's answer lost: S3 completed
		// the upload with the first, and answers the second that there is
		// no such upload. The object is then in place, whole.
		if errorCode(err) == "NoSuchUpload" && s.completed(ctx, bucket, key, written, len(parts)) {
			err = nil
		}
	}
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		return classify(ctx, err)
	}
	return nil
}

// Delete implements openpca.ObjectStore.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return classify(ctx, err)
	}
	return nil
}

// DiscardPartial implements openpca.ObjectStore: it aborts the multipart
// uploads of the key that were never completed.
func (s *Store) DiscardPartial(ctx context.Context, bucket, key string) error {
	p := awss3.NewListMultipartUploadsPaginator(s.client, &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return classify(ctx, err)
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) != key {
				continue
			}
			// Another server's clean-up may abort it first.
			if _, err := s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && errorCode(err) != "NoSuchUpload" {
				return classify(ctx, err)
			}
		}
	}
	return nil
}

// uploadParts uploads first and then the rest of r, part by part. While
// one part uploads, the next is read, so that the producer keeps going.
// If an upload fails it returns at once; the reading goroutine stops when
// the caller closes r.
func (s *Store) uploadParts(ctx context.Context, bucket, key string, uploadID *string, first []byte, r io.Reader) ([]types.CompletedPart, int64, error) {
	type part struct {
		n   int32
		buf []byte
	}
	free := make(chan []byte, 2) // room for both buffers, first included
	free <- make([]byte, len(first))
	full := make(chan part, 1)
	readErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(full)
		full <- part{1, first}
		for n := int32(2); ; n++ {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
			if n > s.maxParts {
				// Unless the last part ended the object.
				_, err := io.ReadFull(r, buf[:1])
				if err == nil {
					err = fmt.Errorf("the object is larger than the %d parts of %d MiB an upload of it takes", s.maxParts, len(buf)>>20)
				} else if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				return
			}
			m, err := io.ReadFull(r, buf)
			if m > 0 {
				select {
				case full <- part{n, buf[:m]}:
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	var parts []types.CompletedPart
	var written int64
	for p := range full {
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: uploadID, PartNumber: aws.Int32(p.n),
			Body: bytes.NewReader(p.buf), ContentLength: aws.Int64(int64(len(p.buf))),
		})
		if err != nil {
			// The reader stops at its next part; the caller closes r.
			return nil, 0, err
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(p.n)})
		written += int64(len(p.buf))
		free <- p.buf[:cap(p.buf)]
	}
	return parts, written, <-readErr
}

// completed reports whether the object in key's place is one a multipart
// upload of parts parts completed, of size bytes: S3 gives such an object
// an ETag that ends in "-" and the number of its parts.
func (s *Store) completed(ctx context.Context, bucket, key string, size int64, parts int) bool {
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil && aws.ToInt64(out.ContentLength) == size && strings.HasSuffix(strings.Trim(aws.ToString(out.ETag), `"`), fmt.Sprintf("-%d", parts))
}

// errorCode is the code of S3's error err, "" for none.
func errorCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}
