// Package seal protects CA private keys at rest with AES-256-GCM under a
// master key that is kept outside the database.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a master key: AES-256.
const KeySize = 32

// version prefixes every sealed value, so that the format can change.
const version byte = 1

// Sealer seals values with one master key, and opens values sealed with
// it or with previous master keys, as a server does while the master key
// is being rotated. It implements openpca.KeySealer.
type Sealer struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// New returns a Sealer for a 32-byte master key, which also opens values
// sealed with the previous keys.
func New(key []byte, previous ...[]byte) (*Sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	for _, p := range previous {
		a, err := newAEAD(p)
		if err != nil {
			return nil, fmt.Errorf("previous %w", err)
		}
		s.previous = append(s.previous, a)
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext, authenticating associatedData with it. The result
// is the version byte, a random nonce and the ciphertext.
func (s *Sealer) Seal(plaintext, associatedData []byte) ([]byte, error) {
	return sealWith(s.aead, plaintext, associatedData)
}

func sealWith(aead cipher.AEAD, plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], plaintext, associatedData), nil
}

// Open decrypts what Seal returned for the same associated data, with the
// master key or a previous one.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	plain, _, err := s.open(sealed, associatedData)
	return plain, err
}

// open is Open, and tells whether the current master key opened the value.
func (s *Sealer) open(sealed, associatedData []byte) (plain []byte, current bool, err error) {
	plain, aead, err := s.openWith(sealed, associatedData)
	return plain, aead == s.aead, err
}

// openWith is Open, and returns the key's AEAD that opened the value.
func (s *Sealer) openWith(sealed, associatedData []byte) ([]byte, cipher.AEAD, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != version {
		return nil, nil, errors.New("seal: not a sealed value of a known version")
	}
	for _, aead := range append([]cipher.AEAD{s.aead}, s.previous...) {
		if plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], associatedData); err == nil {
			return plain, aead, nil
		}
	}
	return nil, nil, errors.New("seal: cannot open: wrong master key, or the value was altered or belongs to another owner")
}

// Reseal opens a value sealed with the master key or a previous one, and
// seals it again with the master key.
func (s *Sealer) Reseal(sealed, associatedData []byte) ([]byte, error) {
	plain, current, err := s.open(sealed, associatedData)
	if err != nil || current {
		return sealed, err
	}
	return s.Seal(plain, associatedData)
}

// Rebind opens a value sealed for the associated data from, with the
// master key or a previous one, and seals it for to with that same key:
// what the value is bound to changes, and which key seals it does not, so
// that a rotation under way (whose other servers open only the keys they
// know) is none the wiser.
func (s *Sealer) Rebind(sealed, from, to []byte) ([]byte, error) {
	plain, aead, err := s.openWith(sealed, from)
	if err != nil {
		return nil, err
	}
	return sealWith(aead, plain, to)
}

// ParseKey decodes a base64 master key.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("master key is not base64: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key must decode to %d bytes, not %d", KeySize, len(key))
	}
	return key, nil
}

// Fingerprint names a master key without giving it away: 64 bits of a
// hash of it, in hex. A fingerprint can be shown where the key may not (to
// every user of the database, as PostgreSQL shows session names), and
// tells keys apart well enough for an operator's mistake, which is all it
// is for: no one chooses a key to match another's fingerprint.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(append([]byte("openpca master key fingerprint\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// WriteKeyFile writes a master key, in base64, to path, readable only by
// its owner, replacing the file whole (never partly) if it exists.
func WriteKeyFile(path string, key []byte) error {
	return WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
}

// TempPattern matches the temporary files WriteFile writes beside path,
// which a process that dies before renaming one leaves behind.
const TempPattern = ".seal-*"

// WriteFile writes data to path, readable only by its owner, durably, and
// replacing the file whole (never partly) if it exists.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), TempPattern)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := writeSynced(f, data); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// writeSynced writes data to f, readable only by its owner, syncs and
// closes it.
func writeSynced(f *os.File, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// SyncDir makes the entries of a folder durable, as a renamed file's.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
