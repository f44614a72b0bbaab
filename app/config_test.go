package app_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/witness"
)

// Two witnesses' public keys (witness.NewKey).
var witness1, witness2 = func() (string, string) {
	_, a, _ := witness.NewKey("w1.example")
	_, b, _ := witness.NewKey("w2.example")
	return a, b
}()

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
				c.ReportWorkers == app.DefaultReportWorkers && c.Logger != nil && c.Stdout != nil &&
				c.MaxConnections == app.DefaultMaxConnections && c.MaxConnectionsPerNetwork == app.DefaultMaxConnectionsPerNetwork
		}},
		{"an S3 endpoint means s3", func(c *app.Config) { c.S3Endpoint = "http://127.0.0.1:9000" }, "", func(c *app.Config) bool { return c.ObjectStore == "s3" }},
		{"TLS means an https public URL", func(c *app.Config) { c.TLSSelfSigned, c.Listen = true, "0.0.0.0:8443" }, "",
			func(c *app.Config) bool { return c.PublicURL == "https://0.0.0.0:8443" }},
		{"no host is every address", func(c *app.Config) { c.Listen = ":8443" }, "",
			func(c *app.Config) bool { return c.PublicURL == "http://0.0.0.0:8443" }},
		{"a public URL of the operator's", func(c *app.Config) { c.PublicURL = "https://ca.example" }, "", func(c *app.Config) bool { return c.PublicURL == "https://ca.example" }},
		{"revocation at the public URL", func(c *app.Config) { c.PublicURL = "https://ca.example" }, "", func(c *app.Config) bool { return c.RevocationURL == "https://ca.example" }},
		{"revocation of its own", func(c *app.Config) { c.PublicURL, c.RevocationURL = "https://ca.example", "http://ocsp.example" }, "",
			func(c *app.Config) bool {
				return c.PublicURL == "https://ca.example" && c.RevocationURL == "http://ocsp.example"
			}},
		{"no report workers", func(c *app.Config) { c.ReportWorkers = 0 }, "", func(c *app.Config) bool { return c.ReportWorkers == 0 }},
		{"account id", func(c *app.Config) { c.AccountID = "12345678901a" }, "--account-id", nil},
		{"short account id", func(c *app.Config) { c.AccountID = "1234" }, "--account-id", nil},
		{"region", func(c *app.Config) { c.Region = "us-east-1:x" }, "--region", nil},
		{"a region of 32 characters", func(c *app.Config) { c.Region = "us-" + strings.Repeat("x", 27) + "-1" }, "", func(c *app.Config) bool { return true }},
		{"a region too long", func(c *app.Config) { c.Region = "us-" + strings.Repeat("x", 28) + "-1" }, "--region", nil},
		{"data folder", func(c *app.Config) { c.DataDir = "" }, "--data-dir", nil},
		{"negative report workers", func(c *app.Config) { c.ReportWorkers = -1 }, "--report-workers", nil},
		{"object store", func(c *app.Config) { c.ObjectStore = "ftp" }, "--object-store", nil},
		{"local with an S3 endpoint", func(c *app.Config) { c.ObjectStore, c.S3Endpoint = "local", "http://127.0.0.1:9000" }, "--s3-endpoint", nil},
		{"key store", func(c *app.Config) { c.KeyStore = "vault" }, "--key-store", nil},
		{"audit key in KMS", func(c *app.Config) { c.AuditKeyStore = "kms" }, "--audit-key-store", nil},
		{"audit key in no token", func(c *app.Config) { c.AuditKeyStore = "pkcs11" }, "--pkcs11-module", nil},
		{"TLS key without a certificate", func(c *app.Config) { c.TLSKeyFile = "key.pem" }, "--tls-cert", nil},
		{"two kinds of TLS", func(c *app.Config) { c.TLSSelfSigned, c.TLSCertFile, c.TLSKeyFile = true, "c.pem", "k.pem" }, "--tls-self-signed", nil},
		{"a token label without its module", func(c *app.Config) { c.PKCS11.TokenLabel = "ca" }, "--pkcs11-module", nil},
		{"a token module without its label", func(c *app.Config) { c.PKCS11.Module = "/usr/lib/softhsm/libsofthsm2.so" }, "--pkcs11-token-label", nil},
		{"a token's standard without a token", func(c *app.Config) { c.PKCS11Standard = "FIPS_140_2_LEVEL_3_OR_HIGHER" }, "--pkcs11-standard", nil},
		{"the kms store's standard without it", func(c *app.Config) { c.KMSStandard = "FIPS_140_2_LEVEL_3_OR_HIGHER" }, "--kms-standard", nil},
		{"the kms store's standard", func(c *app.Config) { c.KeyStore, c.KMSStandard = "kms", "FIPS_140_2_LEVEL_3_OR_HIGHER" }, "", func(c *app.Config) bool { return true }},
		{"CA quota", func(c *app.Config) { c.MaxCAsPerAccount = 0 }, "--max-cas-per-account", nil},
		{"no report interval", func(c *app.Config) { c.AuditReportInterval = 0 }, "--audit-report-interval", nil},
		{"a KMS key policy", func(c *app.Config) { c.KeyStore, c.KMSKeyPolicy = "kms", `{"Statement":[]}` }, "", func(c *app.Config) bool { return c.KMSKeyPolicy != "" }},
		{"a KMS key policy without KMS", func(c *app.Config) { c.KMSKeyPolicy = `{"Statement":[]}` }, "--kms-key-policy", nil},
		{"a KMS key policy that is no JSON object", func(c *app.Config) { c.KeyStore, c.KMSKeyPolicy = "kms", `["x"]` }, "--kms-key-policy", nil},
		{"a KMS key policy that is null", func(c *app.Config) { c.KeyStore, c.KMSKeyPolicy = "kms", `null` }, "--kms-key-policy", nil},
		{"a KMS key policy for a KMS beside the default store", func(c *app.Config) { c.KMSEndpoint, c.KMSKeyPolicy = "http://127.0.0.1:1", `{"Statement":[]}` }, "", func(c *app.Config) bool { return c.KMSKeyPolicy != "" }},
		{"a KMS key policy too long", func(c *app.Config) { c.KeyStore, c.KMSKeyPolicy = "kms", `{"x":"`+strings.Repeat("a", 32768)+`"}` }, "--kms-key-policy", nil},
		{"a request rate per account", func(c *app.Config) { c.AccountRequestRate = 25 }, "", func(c *app.Config) bool { return c.AccountRequestRate == 25 }},
		{"a negative request rate", func(c *app.Config) { c.AccountRequestRate = -1 }, "--account-request-rate", nil},
		{"no connection bounds", func(c *app.Config) { c.MaxConnections, c.MaxConnectionsPerNetwork = 0, 0 }, "", func(c *app.Config) bool { return c.MaxConnections == 0 }},
		{"negative connection bounds", func(c *app.Config) { c.MaxConnectionsPerNetwork = -1 }, "--max-connections", nil},
		{"OCSP signers", func(c *app.Config) { c.OCSPSigners = 3 }, "", func(c *app.Config) bool { return c.OCSPSigners == 3 }},
		{"negative OCSP signers", func(c *app.Config) { c.OCSPSigners = -1 }, "--ocsp-signers", nil},
		{"OCSP store signers", func(c *app.Config) { c.OCSPStoreSigners = 5 }, "", func(c *app.Config) bool { return c.OCSPStoreSigners == 5 }},
		{"no OCSP store signers", func(c *app.Config) { c.OCSPStoreSigners = 0 }, "--ocsp-store-signers", nil},
		{"a request rate that is no number", func(c *app.Config) { c.AccountRequestRate = math.NaN() }, "--account-request-rate", nil},
		{"an infinite request rate", func(c *app.Config) { c.AccountRequestRate = math.Inf(1) }, "--account-request-rate", nil},
		{"a request rate of one an age", func(c *app.Config) { c.AccountRequestRate = 1e-300 }, "--account-request-rate", nil},
		{"a request rate of one each 100 s", func(c *app.Config) { c.AccountRequestRate = 0.01 }, "", nil},
		{"witnesses, the quorum all of them by default", func(c *app.Config) {
			c.Witnesses = []string{"https://w1.example/a?b=c=" + witness1, "http://w2.example=" + witness2}
		}, "",
			func(c *app.Config) bool { return c.WitnessQuorum == 2 }},
		{"a witness without a key", func(c *app.Config) { c.Witnesses = []string{"https://w1.example"} }, "--witness", nil},
		{"a witness key that is not one", func(c *app.Config) { c.Witnesses = []string{"https://w1.example=" + witness1 + "x"} }, "--witness", nil},
		{"one witness twice", func(c *app.Config) {
			c.Witnesses = []string{"https://w1.example=" + witness1, "https://w2.example=" + witness1}
		}, "--witness", nil},
		{"one witness's key under two names", func(c *app.Config) {
			c.Witnesses = []string{"https://w1.example=" + witness1, "https://w2.example=" + testenv.RenamedWitnessKey(witness1, "w9.example")}
		}, "--witness", nil},
		{"one witness's key with its hash in capitals", func(c *app.Config) {
			name, rest, _ := strings.Cut(witness1, "+")
			c.Witnesses = []string{"https://w1.example=" + witness1, "https://w2.example=" + name + "+" + strings.ToUpper(rest[:8]) + rest[8:]}
		}, "--witness", nil},
		{"a quorum larger than the witnesses", func(c *app.Config) { c.Witnesses, c.WitnessQuorum = []string{"https://w1.example=" + witness1}, 2 }, "--witness-quorum", nil},
		{"a negative report witness wait", func(c *app.Config) { c.ReportWitnessWait = -1 }, "--report-witness-wait", nil},
		{"more report workers than a server runs", func(c *app.Config) { c.ReportWorkers = app.MaxReportWorkers + 1 }, "--report-workers", nil},
		{"a report lease of a nanosecond", func(c *app.Config) { c.AuditReportLease = time.Nanosecond }, "--audit-report-lease", nil},
		{"a public URL that is a script", func(c *app.Config) { c.PublicURL = "javascript:alert(1)" }, "--public-url", nil},
		{"a revocation URL that is a script", func(c *app.Config) { c.RevocationURL = "javascript:alert(1)" }, "--revocation-url", nil},
		{"a public URL without a host", func(c *app.Config) { c.PublicURL = "https://" }, "--public-url", nil},
		{"a public URL with a query", func(c *app.Config) { c.PublicURL = "https://ca.example/?x=1" }, "--public-url", nil},
		{"a public URL with an empty query", func(c *app.Config) { c.PublicURL = "https://ca.example/?" }, "--public-url", nil},
		{"a public URL with an empty fragment", func(c *app.Config) { c.PublicURL = "https://ca.example/#" }, "--public-url", nil},
		{"a public URL past the last port", func(c *app.Config) { c.PublicURL = "https://ca.example:99999" }, "--public-url", nil},
		{"an S3 endpoint of another scheme", func(c *app.Config) { c.S3Endpoint = "ftp://127.0.0.1:9000" }, "--s3-endpoint", nil},
		{"an S3 endpoint without a scheme", func(c *app.Config) { c.S3Endpoint = "127.0.0.1:9000" }, "--s3-endpoint", nil},
		{"an S3 endpoint with credentials", func(c *app.Config) { c.S3Endpoint = "http://key:secret@127.0.0.1:9000" }, "--s3-endpoint", nil},
		{"a KMS endpoint without a host", func(c *app.Config) { c.KMSEndpoint = "http://" }, "--kms-endpoint", nil},
		{"a KMS endpoint of a port alone", func(c *app.Config) { c.KMSEndpoint = "http://:9000" }, "--kms-endpoint", nil},
		{"an S3 endpoint", func(c *app.Config) { c.S3Endpoint = "http://127.0.0.1:9000/gateway" }, "", func(c *app.Config) bool { return c.ObjectStore == "s3" }},
		{"a public URL with a port", func(c *app.Config) { c.PublicURL = "https://ca.example:8443" }, "", nil},
		{"a public URL with a path", func(c *app.Config) { c.PublicURL = "https://ca.example/pca" }, "", nil},
		{"a root key", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		}, "", nil},
		{"a root key id of one letter", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "x", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		}, "--root-access-key-id", nil},
		{"a root key id with a slash", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "AKID/EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		}, "--root-access-key-id", nil},
		{"a short root secret", func(c *app.Config) { c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", "a" }, "--root-secret-access-key", nil},
		// The console's sign-in form takes 4 KiB: 1,024 characters, each
		// percent-encoded, with the key id.
		{"a root secret of 1,024 characters", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", strings.Repeat("/+=!@#$%", 128)
		}, "", func(c *app.Config) bool { return true }},
		{"a root secret too long", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", strings.Repeat("/+=!@#$%", 128)+"a"
		}, "--root-secret-access-key", nil},
		{"a root secret of spaces", func(c *app.Config) { c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", strings.Repeat(" ", 40) }, "--root-secret-access-key", nil},
		{"a root secret of one character", func(c *app.Config) { c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", strings.Repeat("a", 40) }, "--root-secret-access-key", nil},
		{"a root secret with a line's end", func(c *app.Config) {
			c.RootAccessKeyID, c.RootSecretAccessKey = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
		}, "--root-secret-access-key", nil},
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
