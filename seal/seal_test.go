package seal

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/openpca/openpca"
)

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	key := make([]byte, KeySize)
	rand.Read(key)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s, other := newSealer(t), newSealer(t)
	secret := []byte("private key bytes")
	sealed, err := s.Seal(secret, []byte("arn:a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	if got, err := s.Open(sealed, []byte("arn:a")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := s.Seal(secret, []byte("arn:a"))
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other owner":   func() ([]byte, error) { return s.Open(sealed, []byte("arn:b")) },
		"other key":     func() ([]byte, error) { return other.Open(sealed, []byte("arn:a")) },
		"tampered":      func() ([]byte, error) { return s.Open(tampered, []byte("arn:a")) },
		"truncated":     func() ([]byte, error) { return s.Open(sealed[:5], []byte("arn:a")) },
		"wrong version": func() ([]byte, error) { return s.Open(append([]byte{9}, sealed[1:]...), []byte("arn:a")) },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("a 16-byte master key was accepted")
	}
	if _, err := ParseKey("c2hvcnQ="); err == nil {
		t.Error("a short base64 key was accepted")
	}
	if _, err := ParseKey("not base64!"); err == nil {
		t.Error("a non-base64 key was accepted")
	}
}

// TestWriteKeyFile writes a key file, readable by its owner alone, and
// replaces it with another, whole.
func TestWriteKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	for _, key := range [][]byte{bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)} {
		if err := WriteKeyFile(path, key); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParseKey(string(b)); err != nil || !bytes.Equal(got, key) {
			t.Errorf("the file holds %x, %v; want %x", got, err, key)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestPreviousKeys: a sealer opens what its previous keys sealed, seals
// with its own, and reseals to it.
func TestPreviousKeys(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	old, _ := New(oldKey)
	both, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := old.Seal([]byte("secret"), []byte("ad"))
	if plain, err := both.Open(sealed, []byte("ad")); err != nil || string(plain) != "secret" {
		t.Fatalf("a previous key's value: %q, %v", plain, err)
	}
	resealed, err := both.Reseal(sealed, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := New(newKey)
	if plain, err := onlyNew.Open(resealed, []byte("ad")); err != nil || string(plain) != "secret" {
		t.Errorf("the resealed value: %q, %v", plain, err)
	}
	if again, _ := both.Reseal(resealed, []byte("ad")); !bytes.Equal(again, resealed) {
		t.Error("a value sealed with the current key was sealed again")
	}
	if _, err := old.Open(resealed, []byte("ad")); err == nil {
		t.Error("the old key opens the resealed value")
	}
}

// TestRebind: a value rebound opens for its new associated data only,
// and with the key that sealed it, the current one or a previous one.
func TestRebind(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	old, _ := New(oldKey)
	current, _ := New(newKey)
	both, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sealer *Sealer
		opener *Sealer // the key that sealed the value, alone
	}{
		{"current key", current, current},
		{"previous key", old, old},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, _ := tc.sealer.Seal([]byte("secret"), []byte("from"))
			rebound, err := both.Rebind(sealed, []byte("from"), []byte("to"))
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := tc.opener.Open(rebound, []byte("to")); err != nil || string(plain) != "secret" {
				t.Errorf("the rebound value, with the key that sealed it: %q, %v", plain, err)
			}
			if _, err := both.Open(rebound, []byte("from")); err == nil {
				t.Error("the rebound value opens for what it was bound to before")
			}
			if _, err := both.Rebind(sealed, []byte("other"), []byte("to")); err == nil {
				t.Error("a value was rebound from what it was not bound to")
			}
		})
	}
}

// TestKeyOfAnotherMasterKey: a CA key sealed by a server with a master key
// this one lacks (a rolling rotation's second step skipped) is a fault of
// this server's, which clients retry elsewhere (503), not an internal
// failure (500).
func TestKeyOfAnotherMasterKey(t *testing.T) {
	ca := &openpca.CA{ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-1111-1111-1111-111111111111"}
	handle, _, err := NewKeyStore(newSealer(t)).GenerateKey(t.Context(), ca, openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	ca.KeyHandle = handle
	_, err = NewKeyStore(newSealer(t)).Signer(t.Context(), ca)
	if code := openpca.ErrorCode(err); code != openpca.CodeServiceUnavailable {
		t.Errorf("a key sealed with another master key: %v (%s), want %s", err, code, openpca.CodeServiceUnavailable)
	}
}
