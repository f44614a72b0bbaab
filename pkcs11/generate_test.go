//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/pki"
)

// TestGenerateKeyAnswerLost: a token that fails once it has made the key
// pair (a network HSM whose answer was lost) is logged in to again, and
// the pair it made is the CA's: none is made beside it under the CA's id,
// which would leave the CA two keys, neither of which signs for it. With
// no pair there, one is made; with several, none is taken, and the
// error says so.
func TestGenerateKeyAnswerLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lost changes the token once it has made the pair, as the token
		// would have, before the answer is lost.
		lost func(t *testing.T, s *session, id []byte)
		// want is what GenerateKey's error says, "" for none.
		want string
	}{
		{"made", func(*testing.T, *session, []byte) {}, ""},
		{"not made", func(t *testing.T, s *session, id []byte) {
			for _, class := range []uint{p11.CKO_PUBLIC_KEY, p11.CKO_PRIVATE_KEY} {
				for _, o := range s.objects(t, id, class) {
					if err := s.m.DestroyObject(s.h, o); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, ""},
		{"several", func(t *testing.T, s *session, id []byte) {
			for _, class := range []uint{p11.CKO_PUBLIC_KEY, p11.CKO_PRIVATE_KEY} {
				for _, o := range s.objects(t, []byte("other"), class) {
					if err := s.m.SetAttributeValue(s.h, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, id)}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, "several keys under its id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testenv.NewSoftHSM(t)
			store, err := pkcs11.Open(h.Config())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			s := openSession(t, h)
			other, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.GenerateECDSAKeyPair([]byte("other"), elliptic.P256()); err != nil {
				t.Fatal(err)
			}
			pkcs11.FailAfterGenerate(store, func(id []byte) error {
				tc.lost(t, s, id)
				return p11.Error(p11.CKR_DEVICE_ERROR)
			})
			time.Sleep(1100 * time.Millisecond) // the store logs in again at most once a second
			ca := &openpca.CA{ID: "22222222-2222-2222-2222-222222222222", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/22222222-2222-2222-2222-222222222222",
				Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1}}
			handle, key, err := store.GenerateKey(context.Background(), ca, openpca.KeyAlgorithmEcPrime256v1)
			pairs := len(s.objects(t, []byte(ca.ID), p11.CKO_PRIVATE_KEY))
			if tc.want != "" {
				if openpca.ErrorCode(err) != openpca.CodeServiceUnavailable || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("GenerateKey: %v, want ServiceUnavailable saying %q", err, tc.want)
				}
				if pairs != 2 {
					t.Errorf("%d private keys under the CA's id, want the 2 there were", pairs)
				}
				return
			}
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if pairs != 1 {
				t.Fatalf("%d private keys under the CA's id, want 1", pairs)
			}
			ski, _ := pki.SubjectKeyID(key.Public())
			ca.KeyStore, ca.KeyHandle, ca.KeyID = pkcs11.Name, handle, hex.EncodeToString(ski)
			signer, err := store.Signer(context.Background(), ca)
			if err != nil {
				t.Fatalf("the new CA's signer: %v", err)
			}
			digest := sha256.Sum256([]byte("x"))
			sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil || !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig) {
				t.Fatalf("the new CA's key does not sign what its public key checks: %v", err)
			}
		})
	}
}
