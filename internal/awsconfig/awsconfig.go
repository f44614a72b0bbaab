// Package awsconfig holds what the server's AWS SDK clients (S3, KMS)
// share of their configuration.
package awsconfig

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the HTTP client of cfg, as the standard configuration made
// it (with the roots of AWS_CA_BUNDLE, say), bounded to timeout for each
// attempt of a call: a server that takes connections and never answers
// must not hold a request for good.
func HTTPClient(cfg aws.Config, timeout time.Duration) aws.HTTPClient {
	if c, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		return c.WithTimeout(timeout)
	}
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient // the caller's own; its timeouts are its own
	}
	return awshttp.NewBuildableClient().WithTimeout(timeout)
}
