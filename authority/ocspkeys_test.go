package authority_test

import (
	"bytes"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestOCSPKeyRefusedNotAmplified: once a CA's key store refuses
// its key (a KMS key disabled, as an operator stops a CA), anyone who asks
// about one of its certificates must not have the server call the key
// store, and write an ERROR line, for every request: both are paced, as a
// responder's failed issuance is, and the answer is tryLater (README: "or
// tryLater, if its key store is what failed"), not internalError. Before
// the fix: 40 requests, 40 KMS Sign calls, 40 (41) ERROR lines, 40
// internalError answers.
func TestOCSPKeyRefusedNotAmplified(t *testing.T) {
	for _, byCA := range []bool{true, false} {
		name := "delegated"
		if byCA {
			name = "signed by the CA"
		}
		t.Run(name, func(t *testing.T) {
			k := testenv.StartKMS(t)
			faults, proxied := startKMSFaults(t, k)
			var logs testenv.SyncBuffer
			e := newOCSPEnv(t, k.Use(t), func(c *app.Config) {
				c.KMSEndpoint, c.OCSPSignedByCA = proxied, byCA
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
			if err != nil || len(keys.Keys) != 1 {
				t.Fatalf("KMS keys: %v, %v", keys, err)
			}
			if _, err := k.Client().DisableKey(ctx, &awskms.DisableKeyInput{KeyId: keys.Keys[0].KeyArn}); err != nil {
				t.Fatal(err)
			}
			faults.set(nil, nil) // counts what reaches KMS from here
			const requests = 40
			internal := 0
			for range requests {
				if bytes.Equal(e.ask(t, e.cert.SerialNumber), ocsp.InternalErrorErrorResponse) {
					internal++
				}
			}
			faults.mu.Lock()
			signs := strings.Count(strings.Join(faults.reached, " "), "Sign")
			faults.mu.Unlock()
			errorLines := strings.Count(logs.String(), "level=ERROR")
			t.Logf("%d requests: %d KMS Sign calls, %d ERROR lines, %d internalError answers", requests, signs, errorLines, internal)
			if signs > 2 || errorLines > 2 {
				t.Errorf("%d OCSP requests for a CA whose key KMS refuses made %d KMS Sign calls and %d ERROR lines; want a few at most", requests, signs, errorLines)
			}
			if internal > 0 {
				t.Errorf("%d of %d answers internalError, want tryLater (the CA cannot sign now)", internal, requests)
			}
		})
	}
}

// TestOCSPResponderRetryAfterClockStepsBack: a responder's issuance that
// failed is tried again a minute later, also when the clock has since
// stepped back: a failure's time further ahead than the wait is of a clock
// since stepped back. It held every try back until the clock caught up,
// hours on, and the CA signed (and logged) every answer itself meanwhile.
func TestOCSPResponderRetryAfterClockStepsBack(t *testing.T) {
	k := testenv.StartKMS(t)
	faults, proxied := startKMSFaults(t, k)
	e := newOCSPEnv(t, k.Use(t), func(c *app.Config) { c.KMSEndpoint, c.OCSPUnknownRate = proxied, 1e6 })
	if _, r := e.responderOf(t, big.NewInt(0xbad)); r == nil {
		t.Fatal("no responder")
	}
	e.env.Clock.Advance(50 * time.Hour) // the responder ends within a day
	faults.set(nil, []string{"Sign"})   // KMS away: the next one is not issued
	if body := e.ask(t, big.NewInt(0xbad1)); !bytes.Equal(body, ocsp.TryLaterErrorResponse) {
		t.Fatalf("with KMS away: %x, want tryLater", body)
	}
	faults.set(nil, nil)
	e.env.Clock.Advance(-90 * time.Minute) // an NTP step back; the first responder still unusable
	e.env.Clock.Advance(2 * time.Minute)
	if _, r := e.responderOf(t, big.NewInt(0xbad2)); r == nil {
		t.Error("two minutes after a failed issuance (the clock stepped back 90 minutes since), the CA signs its answers itself: no responder was tried again")
	}
}
