package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestOCSPKeyRefusedConcurrent: requests at once about distinct serials
// of a CA whose KMS key is disabled each reach KMS before the first
// refusal is recorded (as many as arrive within a KMS round trip), but
// the refusal is logged once, as the README says, not once each.
func TestOCSPKeyRefusedConcurrent(t *testing.T) {
	k := testenv.StartKMS(t)
	faults, proxied := startKMSFaults(t, k)
	var logs testenv.SyncBuffer
	e := newOCSPEnv(t, k.Use(t), func(c *app.Config) {
		c.KMSEndpoint, c.OCSPSignedByCA = proxied, true
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	const n = 24
	serials := make([]*big.Int, n)
	for i := range serials {
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("c%d.example", i)}})
		cert, _ := e.env.Certificate(t, e.caARN, e.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &e.caARN, Csr: leaf.CSRPEM}))
		serials[i] = cert.SerialNumber
	}
	keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("KMS keys: %v, %v", keys, err)
	}
	if _, err := k.Client().DisableKey(ctx, &awskms.DisableKeyInput{KeyId: keys.Keys[0].KeyArn}); err != nil {
		t.Fatal(err)
	}
	faults.set(nil, nil)
	var wg sync.WaitGroup
	for _, s := range serials {
		wg.Go(func() { e.ask(t, s) })
	}
	wg.Wait()
	faults.mu.Lock()
	signs := strings.Count(strings.Join(faults.reached, " "), "Sign")
	faults.mu.Unlock()
	errorLines := strings.Count(logs.String(), "level=ERROR")
	t.Logf("%d requests at once: %d KMS Sign calls, %d ERROR lines", n, signs, errorLines)
	if errorLines > 1 {
		t.Errorf("%d OCSP requests at once for a CA whose key KMS refuses made %d KMS Sign calls and %d ERROR lines", n, signs, errorLines)
	}
}
