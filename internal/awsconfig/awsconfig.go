// Package awsconfig holds what the server's AWS SDK clients (S3, KMS)
// share of their configuration.
package awsconfig

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the HTTP client of cfg, as the standard configuration made
// it (with the roots of AWS_CA_BUNDLE, say), bounded to timeout for each
// attempt of a call: a server that takes connections and never answers
// must not hold a request for good. It follows no redirect: the SDK's
// client follows a 307 or 308 to any host, and an S3-compatible store,
// or whoever sits on the path to it, would have the server fetch what
// it names (instance metadata and its credentials, a listener on the
// loopback), which a report's download in the console then handed to
// the user. Neither S3 nor KMS answers with one that a client must
// follow: it gets the redirect's answer, an error.
func HTTPClient(cfg aws.Config, timeout time.Duration) aws.HTTPClient {
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	switch {
	case !ok && cfg.HTTPClient != nil:
		return cfg.HTTPClient // the caller's own; its timeouts, and redirects, are its own
	case !ok:
		b = awshttp.NewBuildableClient()
	}
	return &http.Client{Transport: b.GetTransport(), Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// BoundBodies returns client, reading at most max bytes of each answer's
// body: past them, the read fails, as an answer cut short would. The SDK
// reads a JSON API's answer whole, and a KMS that sent gigabytes (broken,
// hostile, or reached through a path another can change) took the
// server's memory, five times over as the SDK decoded it.
func BoundBodies(client aws.HTTPClient, max int64) aws.HTTPClient {
	return boundBodies{client: client, max: max}
}

// BoundErrorBodies is BoundBodies for the answers that are errors (a
// status other than 2xx) alone, for a call whose answer's body is a
// stream its caller bounds.
func BoundErrorBodies(client aws.HTTPClient, max int64) aws.HTTPClient {
	return boundBodies{client: client, max: max, errorsOnly: true}
}

type boundBodies struct {
	client     aws.HTTPClient
	max        int64
	errorsOnly bool
}

func (b boundBodies) Do(r *http.Request) (*http.Response, error) {
	res, err := b.client.Do(r)
	if err != nil || res.Body == nil || b.errorsOnly && res.StatusCode/100 == 2 {
		return res, err
	}
	res.Body = &boundBody{ReadCloser: res.Body, left: b.max, max: b.max}
	return res, nil
}

// boundBody fails once more than max bytes were read.
type boundBody struct {
	io.ReadCloser
	left, max int64
}

func (b *boundBody) Read(p []byte) (int, error) {
	if b.left >= 0 {
		if int64(len(p)) > b.left+1 { // a byte past max tells a longer body
			p = p[:b.left+1]
		}
		n, err := b.ReadCloser.Read(p)
		if b.left -= int64(n); b.left >= 0 {
			return n, err
		}
	}
	return 0, fmt.Errorf("the answer's body is longer than the %d bytes taken", b.max)
}
