package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestKMSNewKeyNotYetVisible: AWS KMS is eventually consistent, and says
// a key it has just made may be NotFoundException (or
// KMSInvalidStateException) for a few seconds to calls that follow
// CreateKey ("AWS KMS eventual consistency", KMS Developer Guide). A CA
// whose new key KMS does not show at once is created all the same, with
// the one key: not refused with InvalidStateException ("the KMS key ...
// is disabled, pending deletion or deleted"), which clients do not retry,
// its new key scheduled for deletion.
func TestKMSNewKeyNotYetVisible(t *testing.T) {
	k := testenv.StartKMS(t)
	answers, proxied := startKMSFaults(t, k)
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.KMSEndpoint = proxied })
	// Three in a row: more than the SDK's default three attempts take.
	for _, exceptions := range [][]string{{"NotFoundException", "NotFoundException", "NotFoundException"}, {"KMSInvalidStateException"}} {
		t.Run(exceptions[0], func(t *testing.T) {
			answers.answer("GetPublicKey", exceptions...)
			out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Eventually consistent"),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot})
			if err != nil {
				t.Fatalf("a CA whose new key KMS showed a moment late: %v", err)
			}
			if err := env.CSR(t, *out.CertificateAuthorityArn).CheckSignature(); err != nil {
				t.Errorf("the CSR: %v", err)
			}
		})
	}
	keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys.Keys {
		d, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: key.KeyArn})
		if err != nil {
			t.Fatal(err)
		}
		if d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
			t.Errorf("the key %s is %s", *key.KeyArn, d.KeyMetadata.KeyState)
		}
	}
}

// TestKMSKeyQuotaReached: KMS refuses CreateKey with
// LimitExceededException once the account has as many keys as its quota
// allows (keys pending deletion count, for 7 days): KMS answered, and
// answers a retry the same. The client is not told that KMS cannot be
// reached and to retry later (ServiceUnavailableException).
func TestKMSKeyQuotaReached(t *testing.T) {
	k := testenv.StartKMS(t)
	answers, proxied := startKMSFaults(t, k)
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.KMSEndpoint = proxied })
	answers.answer("CreateKey", "LimitExceededException", "LimitExceededException", "LimitExceededException", "LimitExceededException")
	_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Quota"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot})
	if code, _ := testenv.ErrorCode(err); err == nil || code == "ServiceUnavailableException" || strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("KMS's key quota reached: %v", err)
	}
}

// TestKMSCreationsHoldNoProcessor: a CA creation whose key KMS makes
// waits on KMS, not on a processor of the server. Creations share the
// server's processors (one turn each at once, for the seconds of CPU an
// RSA key takes); one that waits on a slow or throttling KMS (CreateKey
// is retried on throttling, with backoff of up to 20 s; an attempt is
// given 20 s) must not hold a turn meanwhile, or one account's creations
// in KMS stop every other account's creations, in software too.
func TestKMSCreationsHoldNoProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // two turns, as on a 2-CPU server
	k := testenv.StartKMS(t)
	target, _ := url.Parse(k.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	const slow = 4 * time.Second
	var inFlight atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService.CreateKey" {
			inFlight.Add(1)
			time.Sleep(slow) // a slow KMS
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// Keys in software by default; in KMS for a CA that asks for FIPS 140-2 level 3.
	env := testenv.Start(t, func(c *app.Config) {
		k.Credentials(t)
		c.KMSEndpoint, c.KMSStandard = srv.URL, string(types.KeyStorageSecurityStandardFips1402Level3OrHigher)
	})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, fmt.Sprintf("In KMS %d", i)),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
				KeyStorageSecurityStandard:        types.KeyStorageSecurityStandardFips1402Level3OrHigher})
			if err != nil {
				t.Error(err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); inFlight.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d CreateKey calls reached KMS", inFlight.Load())
		}
	}
	other, _ := env.NewAccount(t, "444455556666")
	start := time.Now()
	_, err := other.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "In software"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot})
	took := time.Since(start)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if took > slow/2 {
		t.Errorf("another account's CA, its key in software, took %v: it waited for KMS to make the first account's keys", took.Round(time.Millisecond))
	}
}

// TestKMSIssueWithAnotherHash: KMS signs with an EC key only with the
// hash of its curve, so an IssueCertificate whose SigningAlgorithm asks
// for another is InvalidArgsException, and no issuance is recorded (the
// README said so of P-384 and P-521 keys at create time only).
func TestKMSIssueWithAnotherHash(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t))
	caARN, _ := env.NewActiveRoot(t, "P-256 in KMS")
	before := count(logKinds(t, env, caARN), openpca.KeyUseIssue)
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sha384.example"}}).CSRPEM
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf,
		SigningAlgorithm: types.SigningAlgorithmSha384withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidArgsException")
	if n := count(logKinds(t, env, caARN), openpca.KeyUseIssue); n != before {
		t.Errorf("%d issuances recorded for a signature KMS refused", n-before)
	}
}

// TestKMSWrongSignature: a KMS (or HSM) that returns a wrong signature is
// the key store's fault, not the request's: IssueCertificate and
// CreateCertificateAuthority answer ServiceUnavailableException (they
// answered InvalidArgsException, "x509: signature returned by signer is
// invalid", and logged nothing), and the server logs at ERROR which CA's
// key, in which store, signed wrongly.
func TestKMSWrongSignature(t *testing.T) {
	k := testenv.StartKMS(t)
	faults, proxied := startKMSFaults(t, k)
	var logs testenv.SyncBuffer
	e := newOCSPEnv(t, k.Use(t), func(c *app.Config) {
		c.KMSEndpoint = proxied
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	env, caARN := e.env, e.caARN
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "faulty.example"}}).CSRPEM
	byCA := newOCSPEnv(t, k.Use(t), func(c *app.Config) {
		c.KMSEndpoint = proxied
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.OCSPSignedByCA = true
	})
	faults.wrongSignatures.Store(true)
	// An OCSP answer is tryLater; the call's error, none.
	tryLater := func(e *ocspEnv) func() error {
		return func() error {
			answer, err := ocsp.ParseResponse(e.ask(t, e.cert.SerialNumber), nil)
			if !errors.Is(err, ocsp.ResponseError{Status: ocsp.TryLater}) {
				t.Errorf("the OCSP answer: %v (%v); want tryLater", answer, err)
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name string
		call func() error
		ca   string // the CA the log line names, "" for one being made
		api  bool   // an API call, whose error must be ServiceUnavailableException
	}{
		{"IssueCertificate", func() error {
			_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf,
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			return err
		}, caARN, true},
		{"CreateCertificateAuthority", func() error {
			_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Faulty KMS too"),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot})
			return err
		}, "", true},
		// The OCSP responder's certificate, which the CA's key signs.
		{"OCSP by a responder", tryLater(e), caARN, false},
		{"OCSP signed by the CA", tryLater(byCA), byCA.caARN, false},
		// A CRL, signed in the background once asked for.
		{"CRL", func() error {
			before := len(logs.String())
			makeLocalBucket(t, env, "crls")
			_, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN,
				RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")}}})
			for deadline := time.Now().Add(15 * time.Second); err == nil && time.Now().Before(deadline) && !strings.Contains(logs.String()[before:], "does not verify"); {
				time.Sleep(50 * time.Millisecond)
			}
			return err
		}, caARN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.String())
			err := tc.call()
			if code, status := testenv.ErrorCode(err); tc.api && (code != openpca.CodeServiceUnavailable || status != http.StatusServiceUnavailable) {
				t.Errorf("a wrong signature from KMS: %s %d (%v), want ServiceUnavailableException 503", code, status, err)
			}
			line := ""
			for l := range strings.Lines(logs.String()[before:]) {
				if strings.Contains(l, "level=ERROR") && strings.Contains(l, "does not verify") {
					line = l
					break
				}
			}
			if !strings.Contains(line, "key_store=kms") || !strings.Contains(line, "ca="+tc.ca) {
				t.Errorf("no ERROR line naming the CA %q and its key store: %q", tc.ca, line)
			}
		})
	}
}
