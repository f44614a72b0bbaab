//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/pki"
)

// session is a session of the test's own with the token, to change its
// objects in ways crypto11 does not offer.
type session struct {
	m *p11.Ctx
	h p11.SessionHandle
}

func openSession(t *testing.T, h *testenv.SoftHSM) *session {
	t.Helper()
	m := p11.New(testenv.SoftHSMModule)
	sh, err := pkcs11.OpenSession(m, h.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.CloseSession(sh) })
	return &session{m, sh}
}

// objects returns the token's objects of a class under an id.
func (s *session) objects(t *testing.T, id []byte, class uint) []p11.ObjectHandle {
	t.Helper()
	if err := s.m.FindObjectsInit(s.h, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, id), p11.NewAttribute(p11.CKA_CLASS, class)}); err != nil {
		t.Fatal(err)
	}
	defer s.m.FindObjectsFinal(s.h)
	found, _, err := s.m.FindObjects(s.h, 100)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// closeAll closes every session of the session's token, the store's
// too, as a token taken away and back does (PKCS#11 2.40, 5.6).
func (s *session) closeAll(t *testing.T) {
	t.Helper()
	info, err := s.m.GetSessionInfo(s.h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.m.CloseAllSessions(info.SlotID); err != nil {
		t.Fatal(err)
	}
}

// newTokenCA returns a SoftHSM token of the test's own, a store on it, a
// CA whose P-256 key the store made there, the key, and a session of the
// test's beside the store's.
func newTokenCA(t *testing.T) (*testenv.SoftHSM, *pkcs11.Store, *openpca.CA, crypto.Signer, *session) {
	t.Helper()
	h := testenv.NewSoftHSM(t)
	store, err := pkcs11.Open(h.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ca := &openpca.CA{ID: "11111111-1111-1111-1111-111111111111", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-1111-1111-1111-111111111111",
		Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1}}
	handle, key, err := store.GenerateKey(context.Background(), ca, openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	ski, _ := pki.SubjectKeyID(key.Public())
	ca.KeyStore, ca.KeyHandle, ca.KeyID = pkcs11.Name, handle, hex.EncodeToString(ski)
	return h, store, ca, key, openSession(t, h)
}

// TestKeyProvesItself: a CA's private key swapped for another under its
// id, with the CA's public key left in place (crypto11 pairs the two), or
// with a stray public key of the id before the CA's own, neither signs for
// the CA nor is taken as the CA's key destroyed: the private key must sign
// what the public key checks.
func TestKeyProvesItself(t *testing.T) {
	for _, tc := range []string{"private key swapped", "stray public key first"} {
		t.Run(tc, func(t *testing.T) {
			h, store, ca, key, s := newTokenCA(t)
			handle := ca.KeyHandle
			token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
			if err != nil {
				t.Fatal(err)
			}
			defer token.Close()
			// Another key pair, made under another id and moved under the CA's.
			if _, err := token.GenerateECDSAKeyPair([]byte("other"), elliptic.P256()); err != nil {
				t.Fatal(err)
			}
			move := func(class uint) {
				for _, o := range s.objects(t, []byte("other"), class) {
					if err := s.m.SetAttributeValue(s.h, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, handle)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			switch tc {
			case "private key swapped":
				for _, o := range s.objects(t, handle, p11.CKO_PRIVATE_KEY) {
					if err := s.m.DestroyObject(s.h, o); err != nil {
						t.Fatal(err)
					}
				}
				move(p11.CKO_PRIVATE_KEY)
			case "stray public key first":
				// The CA's public key goes after the stray one.
				pub := s.objects(t, handle, p11.CKO_PUBLIC_KEY)
				move(p11.CKO_PUBLIC_KEY)
				for _, o := range pub {
					if _, err := s.m.CopyObject(s.h, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true)}); err != nil {
						t.Fatal(err)
					}
					if err := s.m.DestroyObject(s.h, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			// With the stray public key, crypto11 may pair the CA's private
			// key with its own public key after all, as the token lists
			// them: then the CA's key signs, and is destroyed.
			signer, err := store.Signer(context.Background(), ca)
			if err == nil {
				digest := sha256.Sum256([]byte("x"))
				sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
				if tc == "private key swapped" || err != nil || !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig) {
					t.Fatalf("a signer of a key that is not the CA's (%v)", err)
				}
				if err := store.DestroyKey(context.Background(), ca); err != nil || len(s.objects(t, handle, p11.CKO_PRIVATE_KEY)) != 0 {
					t.Errorf("the CA's key, found, was not destroyed: %v", err)
				}
				return
			}
			if err := store.DestroyKey(context.Background(), ca); err == nil {
				t.Error("the key taken as destroyed, with keys under its id that are not the CA's alone")
			}
			if n := len(s.objects(t, handle, p11.CKO_PRIVATE_KEY)); n != 1 {
				t.Errorf("%d private keys under the id after DestroyKey, want the 1 left", n)
			}
		})
	}
}

// TestPrivateKeyAlone: a CA's private key whose public key was removed is
// no key pair to crypto11, but it is not destroyed either: DestroyKey says
// so, until the private key is gone too.
func TestPrivateKeyAlone(t *testing.T) {
	_, store, ca, _, s := newTokenCA(t)
	handle := ca.KeyHandle
	destroy := func(class uint) {
		for _, o := range s.objects(t, handle, class) {
			if err := s.m.DestroyObject(s.h, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	destroy(p11.CKO_PUBLIC_KEY)
	if err := store.DestroyKey(context.Background(), ca); err == nil || errors.Is(err, openpca.ErrNotFound) || !strings.Contains(err.Error(), "without its public key") {
		t.Fatalf("DestroyKey of a private key alone: %v, want an error that says so", err)
	}
	if n := len(s.objects(t, handle, p11.CKO_PRIVATE_KEY)); n != 1 {
		t.Fatalf("%d private keys under the id, want the 1 left to the operator", n)
	}
	destroy(p11.CKO_PRIVATE_KEY)
	if err := store.DestroyKey(context.Background(), ca); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("DestroyKey with no key left: %v, want ErrNotFound", err)
	}
}

// TestMissingKeyLeavesOthersSigning: a CA whose key is gone from the
// token, asked for once a second, leaves every other CA of the token
// signing (it once had the store log in again each time, closing the
// login they sign on; TestLoginKeptForKeysNotThere).
func TestMissingKeyLeavesOthersSigning(t *testing.T) {
	_, store, ca, key, _ := newTokenCA(t)
	gone := &openpca.CA{ID: "22222222-2222-2222-2222-222222222222", ARN: strings.ReplaceAll(ca.ARN, "1111-1111", "2222-2222"), Config: ca.Config}
	handle, goneKey, err := store.GenerateKey(context.Background(), gone, openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	ski, _ := pki.SubjectKeyID(goneKey.Public())
	gone.KeyStore, gone.KeyHandle, gone.KeyID = pkcs11.Name, handle, hex.EncodeToString(ski)
	if err := store.DestroyKey(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	signer, err := store.Signer(context.Background(), ca)
	if err != nil {
		t.Fatal(err)
	}
	// Signing goes on until the store has logged in again three times
	// for the missing key, a second and more apart.
	var misses atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for misses.Load() < 3 {
			time.Sleep(1100 * time.Millisecond)
			if _, err := store.Signer(context.Background(), gone); openpca.ErrorCode(err) != openpca.CodeServiceUnavailable {
				t.Errorf("the signer of a CA whose key is gone: %v, want ServiceUnavailable", err)
				return
			}
			misses.Add(1)
		}
	}()
	var signed, failed int
	var first error
	digest := sha256.Sum256([]byte("x"))
	for running := true; running; signed++ {
		select {
		case <-done:
			running = false
		default:
		}
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig) {
			if failed++; first == nil {
				first = fmt.Errorf("signature %d: %v", signed, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d signatures failed beside %d logins again for a missing key, want none; the first: %v", failed, signed, misses.Load(), first)
	}
}

// TestLoginKeptForKeysNotThere: a key not in the token, another under a
// CA's id, or one deleted under its signer is looked for on the store's
// login, not on a new one: a login again closes the context every CA of
// the token signs on, and would find the same. A login whose sessions the
// token closed (taken away and back) is logged in to again.
func TestLoginKeptForKeysNotThere(t *testing.T) {
	for _, tc := range []struct {
		name string
		// find asks the store for ca's key, once the token or ca is
		// changed so.
		find  func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, s *session) error
		again bool // the store must log in again, and find the key
	}{
		{"key missing", func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, _ *session) error {
			ca.ID = "44444444-4444-4444-4444-444444444444"
			ca.KeyHandle = []byte(ca.ID)
			_, err := store.Signer(context.Background(), ca)
			return err
		}, false},
		{"another key under the id", func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, _ *session) error {
			ca.KeyID = "00"
			_, err := store.Signer(context.Background(), ca)
			return err
		}, false},
		{"key deleted under its signer", func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, s *session) error {
			signer, err := store.Signer(context.Background(), ca)
			if err != nil {
				t.Fatal(err)
			}
			for _, class := range []uint{p11.CKO_PUBLIC_KEY, p11.CKO_PRIVATE_KEY} {
				for _, o := range s.objects(t, ca.KeyHandle, class) {
					if err := s.m.DestroyObject(s.h, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			digest := sha256.Sum256([]byte("x"))
			_, err = signer.Sign(rand.Reader, digest[:], crypto.SHA256)
			return err
		}, false},
		{"a key of a type crypto11 does not take under the id", func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, s *session) error {
			ca.ID, ca.KeyID = "55555555-5555-5555-5555-555555555555", ""
			ca.KeyHandle = []byte(ca.ID)
			// CKM_EC_EDWARDS_KEY_PAIR_GEN (0x1055), on Ed25519 (its OID).
			ed25519 := []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
			public := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_ID, ca.KeyHandle),
				p11.NewAttribute(p11.CKA_EC_PARAMS, ed25519), p11.NewAttribute(p11.CKA_VERIFY, true)}
			private := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_ID, ca.KeyHandle),
				p11.NewAttribute(p11.CKA_PRIVATE, true), p11.NewAttribute(p11.CKA_SIGN, true)}
			if _, _, err := s.m.GenerateKeyPair(s.h, []*p11.Mechanism{p11.NewMechanism(0x1055, nil)}, public, private); err != nil {
				t.Fatal(err)
			}
			_, err := store.Signer(context.Background(), ca)
			return err
		}, false},
		{"sessions closed", func(t *testing.T, store *pkcs11.Store, ca *openpca.CA, s *session) error {
			s.closeAll(t)
			_, err := store.Signer(context.Background(), ca)
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, store, ca, _, s := newTokenCA(t)
			time.Sleep(1100 * time.Millisecond) // the store logs in again at most once a second
			before := pkcs11.Login(store)
			err := tc.find(t, store, ca, s)
			again := pkcs11.Login(store) != before
			switch {
			case tc.again && (err != nil || !again):
				t.Errorf("the store logged in again: %v, and found the key: %v; want both", again, err)
			case !tc.again && (openpca.ErrorCode(err) != openpca.CodeServiceUnavailable || again):
				t.Errorf("the store logged in again: %v, and found: %v; want no login again, and ServiceUnavailable", again, err)
			}
		})
	}
}

// TestGenerateKeyAfterTokenBack: a token taken away and back closes every
// session of it, and its login with the last (PKCS#11 2.40, 5.6), which
// closing them from another context of the same library does here. The
// store makes keys again once it is back, as it signs again, without a
// signature logging it in first.
func TestGenerateKeyAfterTokenBack(t *testing.T) {
	_, store, ca, _, s := newTokenCA(t)
	s.closeAll(t)
	next := &openpca.CA{ID: "33333333-3333-3333-3333-333333333333", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/33333333-3333-3333-3333-333333333333",
		Config: ca.Config}
	var err error
	for i := range 5 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // the store logs in at most once a second
		}
		if _, _, err = store.GenerateKey(context.Background(), next, openpca.KeyAlgorithmEcPrime256v1); err == nil {
			return
		}
	}
	t.Errorf("the token is back, and the store makes no key: %s: %v", openpca.ErrorCode(err), err)
}

// TestTokenBack: a token taken away while the audit key and a CA's key
// sign, and brought back, signs with both again without a restart,
// whichever signs or fails first, and with both signing at once while it
// comes and goes. The audit key's session once initialized the module
// itself while the token was away, after crypto11 had let go of it, and
// crypto11 could then never log in again (CKR_CRYPTOKI_ALREADY_INITIALIZED);
// it signed, unlocked, on a session of a module crypto11 had finalized
// and started again (SIGSEGV); and a module that listed no token, started
// while the token was away, was started again only by a CA's signature
// that failed. Each case runs in a process of its own: the module's state
// is the process's, and the other tests' sessions hold it.
func TestTokenBack(t *testing.T) {
	const child = "OPENPCA_PKCS11_TEST_CHILD"
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, away, back func(), sign func(audit bool) error)
	}{
		{"both-fail-away", func(t *testing.T, away, back func(), sign func(bool) error) {
			away()
			for range 2 {
				time.Sleep(1100 * time.Millisecond) // the store logs in at most once a second
				if err, aerr := sign(false), sign(true); err == nil || aerr == nil {
					t.Fatalf("with the token away: %v; the audit key: %v", err, aerr)
				}
			}
			back()
		}},
		{"audit-key-alone", auditKeyAway},
		{"ca-key-first-once-back", func(t *testing.T, away, back func(), sign func(bool) error) {
			auditKeyAway(t, away, back, sign)
			time.Sleep(1100 * time.Millisecond)
			_ = sign(false) // on its login of before, or logging in again
		}},
		{"both-at-once", func(t *testing.T, away, back func(), sign func(bool) error) {
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for i := range 6 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
							_ = sign(i%2 == 0) // fails while the token is away
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			for range 3 {
				time.Sleep(300 * time.Millisecond)
				away()
				time.Sleep(1200 * time.Millisecond)
				back()
			}
			close(stop)
			wg.Wait()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Getenv(child) == "" {
				cmd := exec.Command(os.Args[0], "-test.run=^TestTokenBack$/^"+tc.name+"$", "-test.count=1", "-test.timeout=2m")
				cmd.Env = append(os.Environ(), child+"=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				return
			}
			h := testenv.NewSoftHSM(t)
			store, err := pkcs11.Open(h.Config())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ca := &openpca.CA{ID: "11111111-1111-1111-1111-111111111111", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-1111-1111-1111-111111111111",
				Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1}}
			ca.KeyHandle, _, err = store.GenerateKey(context.Background(), ca, openpca.KeyAlgorithmEcPrime256v1)
			if err != nil {
				t.Fatal(err)
			}
			ca.KeyStore = pkcs11.Name
			caKey, err := store.Signer(context.Background(), ca)
			if err != nil {
				t.Fatal(err)
			}
			auditKey, err := store.Ed25519("audit", true)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256([]byte("x"))
			sign := func(audit bool) error {
				if audit {
					_, err := auditKey.Sign(rand.Reader, []byte("x"), crypto.Hash(0))
					return err
				}
				_, err := caKey.Sign(rand.Reader, digest[:], crypto.SHA256)
				return err
			}
			if err, aerr := sign(false), sign(true); err != nil || aerr != nil {
				t.Fatalf("with the token there: %v; the audit key: %v", err, aerr)
			}
			stash := h.TokenDir + ".away"
			away := func() {
				if err := os.Rename(h.TokenDir, stash); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(h.TokenDir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			back := func() {
				if err := os.Remove(h.TokenDir); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(stash, h.TokenDir); err != nil {
					t.Fatal(err)
				}
			}
			tc.run(t, away, back, sign)
			// Back: the audit key first, whose own failures alone must
			// bring the store's login back, then the CA's.
			var err2, aerr error
			for range 4 {
				time.Sleep(1100 * time.Millisecond)
				if aerr = sign(true); aerr == nil {
					break
				}
			}
			for range 3 {
				if err2 = sign(false); err2 == nil {
					break
				}
				time.Sleep(1100 * time.Millisecond)
			}
			if err2 != nil || aerr != nil {
				t.Errorf("the token is back, and the keys do not sign: %v; the audit key: %v", err2, aerr)
			}
		})
	}
}

// auditKeyAway takes the token away, has the audit key alone fail to sign,
// and brings the token back.
func auditKeyAway(t *testing.T, away, back func(), sign func(audit bool) error) {
	away()
	time.Sleep(1100 * time.Millisecond) // the store logs in at most once a second
	if err := sign(true); err == nil {
		t.Fatal("the audit key signed with the token away")
	}
	back()
}

// TestAuditKeyProvesItself: the audit key is one pair of the token alone
// under its label. A second key of either class under it, whichever the
// token lists first, or a private key not the public key's pair, would
// sign checkpoints no one can verify: the key is refused.
func TestAuditKeyProvesItself(t *testing.T) {
	// One store for every case: another in the same process could not
	// initialize the module, which the audit key's sessions keep.
	_, store, _, _, s := newTokenCA(t)
	for _, tc := range []struct {
		name  string
		moved uint // the class of the other pair's key moved under the label
		swap  bool // the audit key's own of that class destroyed first
		want  string
	}{
		{"second private key", p11.CKO_PRIVATE_KEY, false, "more than one Ed25519 private key"},
		{"second public key", p11.CKO_PUBLIC_KEY, false, "more than one Ed25519 public key"},
		{"private key swapped", p11.CKO_PRIVATE_KEY, true, "not its public key's pair"},
		{"public key swapped", p11.CKO_PUBLIC_KEY, true, "not its public key's pair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			label, other := "audit "+tc.name, "other "+tc.name
			if _, err := store.Ed25519(label, true); err != nil {
				t.Fatal(err)
			}
			// Made by the test, as an attacker with the PIN would: the
			// store's own keys cannot be relabelled.
			s.edPair(t, other)
			if _, err := store.Ed25519(label, false); err != nil {
				t.Fatalf("the audit key, untouched: %v", err)
			}
			if tc.swap {
				for _, o := range s.objects(t, []byte(label), tc.moved) {
					if err := s.m.DestroyObject(s.h, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, o := range s.objects(t, []byte(other), tc.moved) {
				if err := s.m.SetAttributeValue(s.h, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := store.Ed25519(label, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the audit key with another pair's key under its label: %v, want %q", err, tc.want)
			}
		})
	}
}

// edPair makes an Ed25519 key pair in the token under label, as id too,
// with the token's default attributes (CKM_EC_EDWARDS_KEY_PAIR_GEN) but
// the private key's of private.
func (s *session) edPair(t *testing.T, label string, private ...*p11.Attribute) {
	t.Helper()
	params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 112})
	common := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_ID, []byte(label))}
	if _, _, err := s.m.GenerateKeyPair(s.h, []*p11.Mechanism{p11.NewMechanism(0x1055, nil)},
		append(common, p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_PARAMS, params)),
		append(append(common, p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_PRIVATE, true)), private...)); err != nil {
		t.Fatal(err)
	}
}

// TestKeysLockedDown: the private keys the store makes, a CA's and the
// audit log's, are sensitive, never extractable, and sign alone: a holder
// of the token's PIN can neither read them out, nor give them another use,
// nor copy them under another id. The audit log's key could be given
// CKA_DERIVE and copied.
func TestKeysLockedDown(t *testing.T) {
	_, store, ca, _, s := newTokenCA(t)
	if _, err := store.Ed25519("audit locked down", true); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string][]byte{"a CA's key": ca.KeyHandle, "the audit log's key": []byte("audit locked down")} {
		keys := s.objects(t, id, p11.CKO_PRIVATE_KEY)
		if len(keys) != 1 {
			t.Fatalf("%s: %d private keys", name, len(keys))
		}
		want := map[uint]bool{p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false, p11.CKA_MODIFIABLE: false,
			p11.CKA_DERIVE: false, p11.CKA_DECRYPT: false, p11.CKA_UNWRAP: false, p11.CKA_SIGN: true}
		for attr, value := range want {
			got, err := s.m.GetAttributeValue(s.h, keys[0], []*p11.Attribute{p11.NewAttribute(attr, nil)})
			if err != nil || len(got) != 1 || len(got[0].Value) != 1 || (got[0].Value[0] != 0) != value {
				t.Errorf("%s: attribute %#x is %v (%v), want %v", name, attr, got, err, value)
			}
		}
		if err := s.m.SetAttributeValue(s.h, keys[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_DERIVE, true)}); err == nil {
			t.Errorf("%s given CKA_DERIVE", name)
		}
		if _, err := s.m.CopyObject(s.h, keys[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, []byte("copy"))}); err == nil {
			t.Errorf("%s copied under another id", name)
		}
	}
}

// TestLooseAuditKey: an audit key found in the token (one an earlier
// version made) tells what it allows beyond signing, which the server
// warns of; one the store made, or finds again, allows nothing more.
func TestLooseAuditKey(t *testing.T) {
	_, store, _, _, s := newTokenCA(t)
	loose := func(label string, create bool) []string {
		t.Helper()
		key, err := store.Ed25519(label, create)
		if err != nil {
			t.Fatal(err)
		}
		return key.(interface{ Loose() []string }).Loose()
	}
	if got := loose("made", true); got != nil {
		t.Errorf("a key made: %v", got)
	}
	if got := loose("made", false); got != nil {
		t.Errorf("a key made, found again: %v", got)
	}
	s.edPair(t, "old")
	if got := loose("old", false); !slices.Equal(got, []string{"not sensitive", "modifiable", "decrypt", "unwrap"}) {
		t.Errorf("a key of the token's default attributes: %v, want not sensitive, modifiable, decrypt, unwrap (SoftHSM2's defaults)", got)
	}
	for _, o := range s.objects(t, []byte("old"), p11.CKO_PRIVATE_KEY) {
		if err := s.m.SetAttributeValue(s.h, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_DERIVE, true)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := loose("old", false); !slices.Equal(got, []string{"not sensitive", "modifiable", "derive", "decrypt", "unwrap"}) {
		t.Errorf("a key given CKA_DERIVE: %v, want not sensitive, modifiable, derive, decrypt, unwrap", got)
	}
	s.edPair(t, "readable", p11.NewAttribute(p11.CKA_EXTRACTABLE, true), p11.NewAttribute(p11.CKA_SENSITIVE, true))
	if got := loose("readable", false); !slices.Equal(got, []string{"extractable", "modifiable", "decrypt", "unwrap"}) {
		t.Errorf("an extractable key: %v, want extractable, modifiable, decrypt, unwrap", got)
	}
}

// pinCountLow reports whether the token labelled label says a wrong user
// PIN was given since the last right one.
func pinCountLow(t *testing.T, m *p11.Ctx, label string) bool {
	t.Helper()
	slots, err := m.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		if info, err := m.GetTokenInfo(slot); err == nil && info.Label == label {
			return info.Flags&p11.CKF_USER_PIN_COUNT_LOW != 0
		}
	}
	t.Fatalf("no slot holds the token %q", label)
	return false
}

// TestRefusedPINNotTriedAgain: a token whose user PIN changed while the
// server runs refuses the store's login again; the store then logs in no
// more, lest a token that counts failed logins lock the PIN, until the
// server restarts. With the PIN set back, it still does not sign (it
// would, had it logged in again), and says why. The audit key's signer,
// which logs in on its own, and the purge keep to it too. It stays the file's last
// test: after it, the module cannot be initialized again in the process
// (CKR_CRYPTOKI_ALREADY_INITIALIZED).
func TestRefusedPINNotTriedAgain(t *testing.T) {
	h, store, ca, _, own := newTokenCA(t)
	signer, err := store.Signer(context.Background(), ca)
	if err != nil {
		t.Fatal(err)
	}
	auditKey, err := store.Ed25519("audit", true)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	sign := func() (caErr, auditErr error) {
		_, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		_, aerr := auditKey.Sign(rand.Reader, []byte("x"), crypto.Hash(0))
		return err, aerr
	}
	// setPIN changes the user's PIN from one to another, in a session of
	// its own, and closes every session of the token, the store's too:
	// they log in again.
	setPIN := func(s *session, from, to string) {
		t.Helper()
		if err := s.m.SetPIN(s.h, from, to); err != nil {
			t.Fatal(err)
		}
		slots, err := s.m.GetSlotList(true)
		if err != nil {
			t.Fatal(err)
		}
		for _, slot := range slots {
			if info, err := s.m.GetTokenInfo(slot); err == nil && info.Label == h.Label {
				if err := s.m.CloseAllSessions(slot); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	setPIN(own, h.PIN, "87654321")
	time.Sleep(1100 * time.Millisecond) // the store logs in at most once a second
	if err, aerr := sign(); err == nil || aerr == nil {
		t.Fatalf("signatures with the PIN changed: %v; the audit key's: %v", err, aerr)
	}
	changed := *h
	changed.PIN = "87654321"
	// The purge destroys keys of CAs deleted for good once a minute, and
	// logs in itself when it cannot find a key: not with the PIN refused.
	// A login with the right one clears the token's mark of a wrong one
	// (CKF_USER_PIN_COUNT_LOW), which the purge's would set again. The
	// module, which the store let go of, is the test's session's: let go
	// of too, so that a login of the store's could initialize it.
	s := openSession(t, &changed)
	if err := s.m.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := store.DestroyKey(context.Background(), ca); err == nil {
		t.Fatal("the key was destroyed with the PIN refused")
	}
	// Read before a session of the test logs in, which clears it.
	if err := s.m.Initialize(); err != nil {
		t.Fatal(err)
	}
	if pinCountLow(t, s.m, h.Label) {
		t.Error("the purge logged in again with the PIN the token refused")
	}
	setPIN(openSession(t, &changed), "87654321", h.PIN)
	time.Sleep(1100 * time.Millisecond)
	err, aerr := sign()
	for what, err := range map[string]error{"the CA's key": err, "the audit key": aerr} {
		if err == nil || !strings.Contains(err.Error(), "will not log in to it again") {
			t.Errorf("%s, with the PIN the token refused set back: %v; want no login tried again, and why", what, err)
		}
	}
}
