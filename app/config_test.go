package app_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpca/openpca/app"
)

// TestConfigValidate: the defaults are valid; each wrong setting is
// refused naming its flag; what follows from other settings is filled in.
func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*app.Config)
		flag   string // in the error; "" for valid
		check  func(*app.Config) bool
	}{
		{"defaults", func(*app.Config) {}, "", func(c *app.Config) bool {
			return c.ObjectStore == "local" && c.PublicURL == "http://"+app.DefaultListen && c.MasterKeyFile == filepath.Join(app.DefaultDataDir, "master.key") &&
				c.ReportWorkers == app.DefaultReportWorkers && c.Logger != nil && c.Stdout != nil
		}},
		{"an S3 endpoint means s3", func(c *app.Config) { c.S3Endpoint = "http://127.0.0.1:9000" }, "", func(c *app.Config) bool { return c.ObjectStore == "s3" }},
		{"TLS means an https public URL", func(c *app.Config) { c.TLSSelfSigned, c.Listen = true, "0.0.0.0:8443" }, "",
			func(c *app.Config) bool { return c.PublicURL == "https://0.0.0.0:8443" }},
		{"a public URL of the operator's", func(c *app.Config) { c.PublicURL = "https://ca.example" }, "", func(c *app.Config) bool { return c.PublicURL == "https://ca.example" }},
		{"no report workers", func(c *app.Config) { c.ReportWorkers = 0 }, "", func(c *app.Config) bool { return c.ReportWorkers == 0 }},
		{"account id", func(c *app.Config) { c.AccountID = "12345678901a" }, "--account-id", nil},
		{"short account id", func(c *app.Config) { c.AccountID = "1234" }, "--account-id", nil},
		{"region", func(c *app.Config) { c.Region = "us-east-1:x" }, "--region", nil},
		{"data folder", func(c *app.Config) { c.DataDir = "" }, "--data-dir", nil},
		{"negative report workers", func(c *app.Config) { c.ReportWorkers = -1 }, "--report-workers", nil},
		{"object store", func(c *app.Config) { c.ObjectStore = "ftp" }, "--object-store", nil},
		{"local with an S3 endpoint", func(c *app.Config) { c.ObjectStore, c.S3Endpoint = "local", "http://127.0.0.1:9000" }, "--s3-endpoint", nil},
		{"key store", func(c *app.Config) { c.KeyStore = "vault" }, "--key-store", nil},
		{"audit key in KMS", func(c *app.Config) { c.AuditKeyStore = "kms" }, "--audit-key-store", nil},
		{"audit key in no token", func(c *app.Config) { c.AuditKeyStore = "pkcs11" }, "--pkcs11-module", nil},
		{"TLS key without a certificate", func(c *app.Config) { c.TLSKeyFile = "key.pem" }, "--tls-cert", nil},
		{"two kinds of TLS", func(c *app.Config) { c.TLSSelfSigned, c.TLSCertFile, c.TLSKeyFile = true, "c.pem", "k.pem" }, "--tls-self-signed", nil},
		{"CA quota", func(c *app.Config) { c.MaxCAsPerAccount = 0 }, "--max-cas-per-account", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := app.DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.flag == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.flag != "" && (err == nil || !strings.Contains(err.Error(), tt.flag)):
				t.Fatalf("got %v, want an error naming %s", err, tt.flag)
			case tt.check != nil && !tt.check(&cfg):
				t.Errorf("filled in wrong: %+v", cfg)
			}
		})
	}
}
