package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/sqlite"
)

var ctx = context.Background()

// TestSignatureFailures sends requests the SDK signs wrongly, or not at
// all, through a real server.
func TestSignatureFailures(t *testing.T) {
	env := testenv.Start(t)
	list := func(c *acmpca.Client) error {
		_, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
		return err
	}
	if err := list(env.Client); err != nil {
		t.Fatalf("the default key: %v", err)
	}
	tests := []struct {
		name   string
		client *acmpca.Client
		code   string
		status int
	}{
		{"unknown key", testenv.NewClientWith(env.URL, env.Transport(), "OPCANOSUCHKEY", "x"), "UnrecognizedClientException", 400},
		{"wrong secret", testenv.NewClientWith(env.URL, env.Transport(), testenv.AccessKeyID, "not-the-secret"), "InvalidSignatureException", 400},
		{"anonymous", acmpca.New(acmpca.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.URL), Credentials: aws.AnonymousCredentials{}, Retryer: aws.NopRetryer{}}),
			"MissingAuthenticationTokenException", 403},
		{"another region", acmpca.New(acmpca.Options{Region: "eu-west-1", BaseEndpoint: aws.String(env.URL), Retryer: aws.NopRetryer{},
			Credentials: testenv.NewClient(env.URL, env.Transport()).Options().Credentials}), "InvalidSignatureException", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := list(tt.client)
			code, status := testenv.ErrorCode(err)
			if code != tt.code || status != tt.status {
				t.Errorf("got %s %d (%v), want %s %d", code, status, err, tt.code, tt.status)
			}
			if strings.Contains(err.Error(), testenv.SecretAccessKey) {
				t.Error("the error reveals the secret")
			}
		})
	}
	// A request signed for another body is refused.
	body := []byte(`{}`)
	req, _ := http.NewRequest(http.MethodPost, env.URL, bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	testenv.Sign(t, req, []byte(`{"MaxResults":1}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 || res.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Errorf("tampered body: %d %s", res.StatusCode, res.Header.Get("X-Amzn-ErrorType"))
	}
}

// TestAccountIsolation: neither of two accounts can see or use the
// other's CA, certificates or reports.
func TestAccountIsolation(t *testing.T) {
	env := testenv.Start(t)
	a := env.Client
	b, bKey := env.NewAccount(t, "222233334444")
	aCA, _ := env.NewActiveRoot(t, "A's root")
	bEnv := &testenv.Env{Client: b}
	bCA, _ := bEnv.NewActiveRoot(t, "B's root")
	if !strings.Contains(bCA, ":222233334444:") {
		t.Fatalf("B's CA %s is not in B's account", bCA)
	}
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}}).CSRPEM
	aCert := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &aCA, Csr: csr})
	serial := aCert[strings.LastIndex(aCert, "/")+1:]

	attempts := map[string]func(c *acmpca.Client, ca, cert string) error{
		"describe": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
			return err
		},
		"issue": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
				Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			return err
		},
		"get certificate": func(c *acmpca.Client, ca, cert string) error {
			_, err := c.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &ca, CertificateArn: &cert})
			return err
		},
		"revoke": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &ca, CertificateSerial: &serial, RevocationReason: types.RevocationReasonUnspecified})
			return err
		},
		"report": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &ca,
				S3BucketName: aws.String("any-bucket"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
			return err
		},
		"describe report": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &ca,
				AuditReportId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		},
		"tag": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String("k")}}})
			return err
		},
		"disable": func(c *acmpca.Client, ca, _ string) error {
			_, err := c.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca, Status: types.CertificateAuthorityStatusDisabled})
			return err
		},
	}
	for name, attempt := range attempts {
		t.Run("B on A's: "+name, func(t *testing.T) {
			testenv.WantError(t, attempt(b, aCA, aCert), "ResourceNotFoundException")
		})
		t.Run("A on B's: "+name, func(t *testing.T) {
			testenv.WantError(t, attempt(a, bCA, bCA+"/certificate/01"), "ResourceNotFoundException")
		})
	}
	for client, own := range map[*acmpca.Client]string{a: aCA, b: bCA} {
		out, err := client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.CertificateAuthorities) != 1 || *out.CertificateAuthorities[0].Arn != own {
			t.Errorf("an account lists %d CAs, want only its own", len(out.CertificateAuthorities))
		}
	}
	if s := env.Status(t, aCA); s != types.CertificateAuthorityStatusActive {
		t.Errorf("B's attempts changed A's CA to %s", s)
	}

	// The caller is recorded: B's own certificate names B's key.
	bCert := bEnv.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &bCA, Csr: csr})
	env.Stop(t)
	var requestedBy string
	if err := env.DB(t).QueryRow(`SELECT requested_by FROM certificates WHERE serial = ?`, bCert[strings.LastIndex(bCert, "/")+1:]).Scan(&requestedBy); err != nil {
		t.Fatal(err)
	}
	if requestedBy != bKey {
		t.Errorf("requested_by %q, want B's key %s", requestedBy, bKey)
	}
	store, err := sqlite.Open(t.Context(), filepath.Join(env.Config.DataDir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	uses, err := store.CertificateKeyUses(t.Context(), bCA[strings.LastIndex(bCA, "/")+1:], bCert[strings.LastIndex(bCert, "/")+1:])
	if err != nil || len(uses) != 1 {
		t.Fatalf("the certificate's key uses: %v, %v", uses, err)
	}
	if !strings.Contains(string(uses[0].Record), `"requestedBy":"`+bKey+`"`) {
		t.Errorf("the key-use record does not name the caller: %s", uses[0].Record)
	}
}

// TestReadOnlyKey: a read-only key reads its account's CAs, certificates
// and reports; every operation that would change something answers
// AccessDeniedException (HTTP 400, as AWS's JSON services send it) and
// changes nothing.
func TestReadOnlyKey(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}}).CSRPEM
	cert := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
	serial := cert[strings.LastIndex(cert, "/")+1:]
	ro, keyID := env.NewReadOnlyKey(t, app.DefaultAccountID)

	reads := map[string]func() error{
		"DescribeCertificateAuthority": func() error {
			_, err := ro.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
			return err
		},
		"ListCertificateAuthorities": func() error {
			out, err := ro.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
			if err == nil && len(out.CertificateAuthorities) != 1 {
				t.Errorf("the read-only key lists %d CAs of its account, want 1", len(out.CertificateAuthorities))
			}
			return err
		},
		"GetCertificate": func() error {
			_, err := ro.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &cert})
			return err
		},
		"GetCertificateAuthorityCertificate": func() error {
			_, err := ro.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &caARN})
			return err
		},
		"ListTags": func() error {
			_, err := ro.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &caARN})
			return err
		},
	}
	for name, call := range reads {
		if err := call(); err != nil {
			t.Errorf("%s with a read-only key: %v", name, err)
		}
	}

	writes := map[string]func() error{
		"CreateCertificateAuthority": func() error {
			_, err := ro.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Not made"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot})
			return err
		},
		"IssueCertificate": func() error {
			_, err := ro.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
				Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			return err
		},
		"RevokeCertificate": func() error {
			_, err := ro.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN, CertificateSerial: &serial, RevocationReason: types.RevocationReasonUnspecified})
			return err
		},
		"UpdateCertificateAuthority": func() error {
			_, err := ro.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN, Status: types.CertificateAuthorityStatusDisabled})
			return err
		},
		"DeleteCertificateAuthority": func() error {
			_, err := ro.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
			return err
		},
		"TagCertificateAuthority": func() error {
			_, err := ro.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &caARN, Tags: []types.Tag{{Key: aws.String("k")}}})
			return err
		},
		"CreateCertificateAuthorityAuditReport": func() error {
			_, err := ro.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN,
				S3BucketName: aws.String("any-bucket"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
			return err
		},
	}
	for name, call := range writes {
		err := call()
		code, status := testenv.ErrorCode(err)
		if code != "AccessDeniedException" || status != http.StatusBadRequest {
			t.Errorf("%s with a read-only key: %s (HTTP %d), want AccessDeniedException (HTTP 400): %v", name, code, status, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, keyID) || !strings.Contains(msg, "acm-pca:"+name) {
			t.Errorf("%s: the message does not name the key and the action: %s", name, msg)
		}
	}

	// Nothing changed.
	d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
	if err != nil || d.CertificateAuthority.Status != types.CertificateAuthorityStatusActive {
		t.Errorf("the CA after the refused writes: %+v, %v", d, err)
	}
	if tags, err := env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &caARN}); err != nil || len(tags.Tags) != 0 {
		t.Errorf("tags after a refused TagCertificateAuthority: %+v, %v", tags, err)
	}
	_, err = env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN, CertificateSerial: &serial, RevocationReason: types.RevocationReasonUnspecified})
	if err != nil {
		t.Errorf("revoking after a refused revocation: %v", err)
	}
}

// TestRevokedKeyStopsAtOnce: a key revoked by the operator fails its next
// request.
func TestRevokedKeyStopsAtOnce(t *testing.T) {
	env := testenv.Start(t)
	c, keyID := env.NewAccount(t, "555566667777")
	if _, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Fatal(err)
	}
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.RevokeAccessKey(ctx, keyID, time.Now()); err != nil {
		t.Fatal(err)
	}
	a.Close()
	_, err = c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	testenv.WantError(t, err, "UnrecognizedClientException")
}

// TestSecretUnderAnotherMasterKey: a key's secret sealed with another
// master key than the server's (the database rotated by a rotation that
// did not see the server) fails its requests as unavailable, which
// clients retry, for another server: it was an internal failure (500).
func TestSecretUnderAnotherMasterKey(t *testing.T) {
	env := testenv.Start(t)
	c, keyID := env.NewAccount(t, "555566667777")
	other, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := other.Seal([]byte("a secret"), auth.AssociatedData("555566667777", keyID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB(t).Exec(`UPDATE access_keys SET sealed_secret = ? WHERE id = ?`, sealed, keyID); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}, func(o *acmpca.Options) { o.RetryMaxAttempts = 1 })
	testenv.WantError(t, err, "ServiceUnavailableException")
}

// TestKeyBoundToItsAccount: an access key's secret is sealed bound to its
// account: the key's row moved by hand to another account (by whoever can
// write the database, and holds a key of their own) signs nothing there.
// The upgrade from a version that bound a secret to its key's id alone
// binds it to its account too, once: a secret put back as that version
// sealed it is refused afterwards.
func TestKeyBoundToItsAccount(t *testing.T) {
	env := testenv.Start(t)
	env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Another Account's Root")
	c, keyID := env.NewAccount(t, "555566667777")
	db := env.DB(t)
	list := func() (*acmpca.ListCertificateAuthoritiesOutput, error) {
		return c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}, func(o *acmpca.Options) { o.RetryMaxAttempts = 1 })
	}
	move := func(account string) {
		t.Helper()
		if _, err := db.Exec(`UPDATE access_keys SET account_id = ? WHERE id = ?`, account, keyID); err != nil {
			t.Fatal(err)
		}
	}
	move(app.DefaultAccountID)
	out, err := list()
	testenv.WantError(t, err, "ServiceUnavailableException")
	if out != nil {
		t.Errorf("a key moved to another account lists its CAs: %+v", out.CertificateAuthorities)
	}
	move("555566667777")
	if _, err := list(); err != nil {
		t.Fatalf("the key back in its account: %v", err)
	}

	// As a version before 2026-12 sealed it, before its upgrade.
	env.Stop(t)
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	key, err := a.Store.FindAccessKey(ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := a.Sealer.Open(key.SealedSecret, auth.AssociatedData(key.AccountID, keyID))
	if err != nil {
		t.Fatal(err)
	}
	unbound, err := a.Sealer.Seal(secret, auth.UnboundAssociatedData(keyID))
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE access_keys SET sealed_secret = ? WHERE id = ?`, unbound, keyID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 33`); err != nil {
		t.Fatal(err)
	}
	restart := func() {
		t.Helper()
		env.Restart(t)
		c = testenv.NewClientWith(env.URL, env.Transport(), keyID, string(secret))
	}
	restart()
	if _, err := list(); err != nil {
		t.Fatalf("the key, after the upgrade: %v", err)
	}
	move(app.DefaultAccountID)
	_, err = list()
	testenv.WantError(t, err, "ServiceUnavailableException")
	move("555566667777")
	// Put back as the version before sealed it, and only so bound, the
	// secret is refused: the upgrade does not run again.
	if _, err := db.Exec(`UPDATE access_keys SET sealed_secret = ? WHERE id = ?`, unbound, keyID); err != nil {
		t.Fatal(err)
	}
	_, err = list()
	testenv.WantError(t, err, "ServiceUnavailableException")
	env.Stop(t)
	restart()
	_, err = list()
	testenv.WantError(t, err, "ServiceUnavailableException")
}

// TestAssociatedDataUnambiguous: no two pairs of account and key id, nor
// a key id as versions before 2026-12 bound it, give the same associated
// data: a secret opens for one key of one account.
func TestAssociatedDataUnambiguous(t *testing.T) {
	seen := map[string]string{}
	for _, tc := range []struct{ account, key string }{
		{"111122223333", "OPCAKEY"}, {"111122223333:OPCA", "KEY"}, {"111122223333", "OPCA:KEY"}, {"111122223333", ":OPCAKEY"},
		{"1", "11122223333:OPCAKEY"}, {"", "111122223333:OPCAKEY"}, {"111122223333", ""},
	} {
		ad := string(auth.AssociatedData(tc.account, tc.key))
		if other, ok := seen[ad]; ok {
			t.Errorf("account %q, key %q: the associated data of %s", tc.account, tc.key, other)
		}
		seen[ad] = fmt.Sprintf("account %q, key %q", tc.account, tc.key)
	}
	for _, key := range []string{"OPCAKEY", "12:111122223333:OPCAKEY", "/12:111122223333:OPCAKEY"} {
		if other, ok := seen[string(auth.UnboundAssociatedData(key))]; ok {
			t.Errorf("key %q, bound as before 2026-12: the associated data of %s", key, other)
		}
	}
}

// TestFirstStartMakesKeyOnce: without a root key given, the first start
// prints a new key, later starts print nothing, and the key works.
func TestFirstStartMakesKeyOnce(t *testing.T) {
	var out bytes.Buffer
	env := testenv.Start(t, func(c *app.Config) { c.RootAccessKeyID, c.RootSecretAccessKey, c.Stdout = "", "", &out })
	printed := out.String()
	var keyID, secret string
	for _, line := range strings.Split(printed, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "AWS_ACCESS_KEY_ID="); ok {
			keyID = v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	if keyID == "" || len(secret) != 40 {
		t.Fatalf("first start printed %q", printed)
	}
	out.Reset()
	env.Restart(t)
	if out.Len() != 0 {
		t.Errorf("a later start printed %q", out.String())
	}
	c := testenv.NewClientWith(env.URL, env.Transport(), keyID, secret)
	if _, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("the printed key does not work: %v", err)
	}
	// The secret is sealed in the database, never stored in clear.
	env.Stop(t)
	var sealed []byte
	if err := env.DB(t).QueryRow(`SELECT sealed_secret FROM access_keys WHERE id = ?`, keyID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(secret)) {
		t.Error("the secret is stored in clear")
	}
}

func TestHTTPS(t *testing.T) {
	var out bytes.Buffer
	env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned, c.Stdout = true, &out })
	if !strings.HasPrefix(env.URL, "https://") {
		t.Fatalf("URL %s", env.URL)
	}
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Over TLS")
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("status %s", s)
	}
	if !strings.Contains(out.String(), "tls/ca.pem") {
		t.Errorf("the CA bundle path was not printed: %q", out.String())
	}
	// Plain HTTP gets no answer but a TLS alert.
	if res, err := http.Get(strings.Replace(env.URL, "https://", "http://", 1) + "/healthz"); err == nil && res.StatusCode == 200 {
		t.Error("plain HTTP was served")
	}
	// The CA stays across restarts, so clients keep trusting the server.
	env.Restart(t)
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("after restart: status %s", s)
	}
}

func TestInsecureNoAuth(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.InsecureNoAuth = true })
	req, _ := http.NewRequest(http.MethodPost, env.URL, strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("unsigned request in --insecure-no-auth: %d", res.StatusCode)
	}
}

// TestHTTPSWithOperatorCertificate serves HTTPS with a certificate and key
// the operator gives.
func TestHTTPSWithOperatorCertificate(t *testing.T) {
	ca := testenv.NewExternalRoot(t, "Operator TLS CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	env := testenv.Start(t, func(c *app.Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	url := strings.Replace(env.URL, "http://", "https://", 1)
	c := testenv.NewClientWith(url, transport, testenv.AccessKeyID, testenv.SecretAccessKey)
	if _, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Fatalf("over the operator's TLS certificate: %v", err)
	}
	transport.CloseIdleConnections()
}

// TestUnsignedTargetCannotBeSwapped resends a signed request whose
// signature leaves X-Amz-Target out, naming another operation, as someone
// in the path could: the server refuses it, and the CA is untouched.
func TestUnsignedTargetCannotBeSwapped(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Swapped")
	body := []byte(`{"CertificateAuthorityArn":"` + arn + `"}`)
	// Signed over host and x-amz-date only: the target is set after.
	req, _ := http.NewRequest(http.MethodPost, env.URL, bytes.NewReader(body))
	testenv.Sign(t, req, body)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "ACMPrivateCA.DeleteCertificateAuthority")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 || res.Header.Get("X-Amzn-ErrorType") != "IncompleteSignatureException" {
		t.Errorf("an unsigned X-Amz-Target: %d %s", res.StatusCode, res.Header.Get("X-Amzn-ErrorType"))
	}
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("the CA is %s after the swapped request", s)
	}
}

// TestBodyReadOnlyAfterHeadersCheck sends requests that announce a body
// and then send none of it: those whose headers already show they cannot
// be genuine are answered at once, without waiting for the body, which
// the server never reads, and their connections end within a body's time
// (net/http read what it could of a body it did not need after the
// answer, within the server's read timeout of a minute).
func TestBodyReadOnlyAfterHeadersCheck(t *testing.T) {
	env := testenv.Start(t)
	host := strings.TrimPrefix(env.URL, "http://")
	now := time.Now().UTC().Format("20060102T150405Z") // one instant: the scope's date is the request's
	stale := time.Now().UTC().Add(-time.Hour).Format("20060102T150405Z")
	signed := func(key, date string) string {
		return "Authorization: AWS4-HMAC-SHA256 Credential=" + key + "/" + date[:8] + "/us-east-1/acm-pca/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" +
			strings.Repeat("0", 64) + "\r\nX-Amz-Date: " + date + "\r\n"
	}
	tests := []struct {
		name, target, headers, code string
	}{
		{"unsigned", "ImportCertificateAuthorityCertificate", "", "MissingAuthenticationTokenException"},
		{"malformed", "ImportCertificateAuthorityCertificate", "Authorization: AWS4-HMAC-SHA256 Credential=x\r\n", "IncompleteSignatureException"},
		{"unknown key", "ImportCertificateAuthorityCertificate", signed("OPCANOSUCHKEY", now), "UnrecognizedClientException"},
		{"stale", "ImportCertificateAuthorityCertificate", signed(testenv.AccessKeyID, stale), "InvalidSignatureException"},
		{"unknown operation", "NoSuchOperation", signed(testenv.AccessKeyID, now), "UnknownOperationException"},
	}
	var wg sync.WaitGroup // each request takes a few seconds: all at once
	for _, tt := range tests {
		for _, length := range []int{4194000, 1000} { // more than net/http reads after an answer, and less
			wg.Go(func() {
				res := testenv.WantBodyLeftUnread(t, host, "POST / HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/x-amz-json-1.1\r\n"+
					"X-Amz-Target: ACMPrivateCA."+tt.target+"\r\nContent-Length: "+strconv.Itoa(length)+"\r\n"+tt.headers)
				if res != nil && res.Header.Get("X-Amzn-ErrorType") != tt.code {
					t.Errorf("%s, a body of %d: %d %s, want %s", tt.name, length, res.StatusCode, res.Header.Get("X-Amzn-ErrorType"), tt.code)
				}
			})
		}
	}
	wg.Wait()
}

// TestRootKeyBootstrap: the key given in the environment is stored at
// each start, but what the operator did to it holds: a read-only key stays
// read-only, and a revoked key stays revoked, the server refusing to start
// with it and saying why.
func TestRootKeyBootstrap(t *testing.T) {
	env := testenv.Start(t)
	admin := func(fn func(*app.Admin)) {
		a, err := app.OpenAdmin(ctx, env.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		fn(a)
	}
	admin(func(a *app.Admin) {
		key, err := a.Store.FindAccessKey(ctx, testenv.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		key.Policies = []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}
		if err := a.Store.PutAccessKey(ctx, key); err != nil {
			t.Fatal(err)
		}
	})
	env.Restart(t)
	_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Refused"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
	})
	testenv.WantError(t, err, "AccessDeniedException")

	admin(func(a *app.Admin) {
		if err := a.Store.RevokeAccessKey(ctx, testenv.AccessKeyID, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	env.Stop(t)
	a, err := app.Open(ctx, env.Config)
	if err == nil {
		a.Close()
		t.Fatal("the server started with a revoked root key")
	}
	if !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), testenv.AccessKeyID) {
		t.Errorf("the refusal does not say why: %v", err)
	}
	admin(func(a *app.Admin) {
		if key, err := a.Store.FindAccessKey(ctx, testenv.AccessKeyID); err != nil || key.RevokedAt.IsZero() {
			t.Errorf("after the refused start the key is %+v, %v", key, err)
		}
	})
	// Without a key given, a start makes none for an account whose keys
	// were all revoked: only a first start does.
	env.Config.RootAccessKeyID, env.Config.RootSecretAccessKey = "", ""
	var out bytes.Buffer
	env.Config.Stdout = &out
	a, err = app.Open(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	admin(func(a *app.Admin) {
		keys, err := a.Store.ListAccessKeys(ctx, env.Config.AccountID)
		if err != nil || len(keys) != 1 {
			t.Errorf("the default account's keys after a start: %d, %v", len(keys), err)
		}
	})
	if strings.Contains(out.String(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("a start printed a new key: %s", out.String())
	}
}

// TestRootKeyRestart: a start with the root key stored already leaves its
// row as it was, so that a server restarted on a full disk needs no write
// for it; a new secret for the key is stored.
func TestRootKeyRestart(t *testing.T) {
	env := testenv.Start(t)
	sealed := func() []byte {
		t.Helper()
		a, err := app.OpenAdmin(ctx, env.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		key, err := a.Store.FindAccessKey(ctx, testenv.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		return key.SealedSecret
	}
	before := sealed()
	env.Restart(t)
	if !bytes.Equal(sealed(), before) {
		t.Error("a restart with the same root key wrote it again")
	}
	env.Stop(t)
	env.Config.RootSecretAccessKey = "nEwSeCrEtOfThEdEfAuLtAcCoUnT/0123456789+"
	env.Restart(t)
	if bytes.Equal(sealed(), before) {
		t.Error("a new secret for the root key was not stored")
	}
}
