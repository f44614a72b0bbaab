package auditlog

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
)

// KeySetting names the setting that holds the server's audit key, shared
// by every server of the store.
const KeySetting = "audit-signing-key"

// storedKey is the setting's value: the public key, and the private key
// sealed with the master key.
type storedKey struct {
	VerifierKey string `json:"verifierKey"`
	SealedKey   []byte `json:"sealedSignerKey"`
}

// LoadKey returns the server's audit signing key and its public key
// ("openpca-audit+<hash>+<base64>", a note verifier key), making the key on
// first use. It is separate from every CA key: it signs only checkpoints.
func LoadKey(ctx context.Context, settings openpca.SettingStore, sealer openpca.KeySealer) (note.Signer, string, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return nil, "", err
	}
	sealed, err := sealer.Seal([]byte(skey), []byte(KeySetting))
	if err != nil {
		return nil, "", err
	}
	value, err := json.Marshal(storedKey{VerifierKey: vkey, SealedKey: sealed})
	if err != nil {
		return nil, "", err
	}
	if value, err = settings.InitSetting(ctx, KeySetting, value); err != nil {
		return nil, "", err
	}
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return nil, "", fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	opened, err := sealer.Open(stored.SealedKey, []byte(KeySetting))
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: opening the audit key: %w", err)
	}
	signer, err := note.NewSigner(string(opened))
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	return signer, stored.VerifierKey, nil
}

// ResealKey seals the audit key in the setting value again, with the
// sealer's master key, for a rotation of it.
func ResealKey(value []byte, sealer interface {
	Reseal(sealed, associatedData []byte) ([]byte, error)
}) ([]byte, error) {
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return nil, fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	resealed, err := sealer.Reseal(stored.SealedKey, []byte(KeySetting))
	if err != nil {
		return nil, fmt.Errorf("auditlog: resealing the audit key: %w", err)
	}
	stored.SealedKey = resealed
	return json.Marshal(stored)
}
