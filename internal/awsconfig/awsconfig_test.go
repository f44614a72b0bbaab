package awsconfig_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/openpca/openpca/internal/awsconfig"
)

// TestHTTPClientKeepsTheCABundle: the bounded client still trusts the
// roots the standard configuration read from AWS_CA_BUNDLE, as a server
// behind a private CA (a KMS or S3 of its own) needs.
func TestHTTPClientKeepsTheCABundle(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := awsconfig.HTTPClient(cfg, 5*time.Second).Do(req)
	if err != nil {
		t.Fatalf("a server whose CA is in AWS_CA_BUNDLE: %v", err)
	}
	res.Body.Close()
}
