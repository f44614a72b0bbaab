package auditlog

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
)

// KeySetting names the setting that holds the server's audit key, shared
// by every server of the store.
const KeySetting = "audit-signing-key"

// storedKey is the setting's value: the public key, and either the private
// key sealed with the master key or the token and label of a key that never
// leaves its token.
type storedKey struct {
	VerifierKey string `json:"verifierKey"`
	SealedKey   []byte `json:"sealedSignerKey,omitempty"`
	KeyStore    string `json:"keyStore,omitempty"`
	KeyLabel    string `json:"keyLabel,omitempty"`
}

// A Token keeps Ed25519 keys that cannot be read out of it: a PKCS#11
// token.
type Token interface {
	// Name is the store's name, recorded with a key made in it.
	Name() string
	// Ed25519 returns the key labelled label, making it if create is set.
	Ed25519(label string, create bool) (crypto.Signer, error)
}

// Keys says where the audit key may be.
type Keys struct {
	// Sealer seals and opens a key kept in the database.
	Sealer openpca.KeySealer
	// Token is the server's token, nil for none.
	Token Token
	// InToken makes a new key in Token rather than in the database. Only a
	// store's first key is new: once made, a key stays where it is.
	InToken bool
}

// LoadKey returns the server's audit signing key and its public key
// ("openpca-audit+<hash>+<base64>", a note verifier key), making the key on
// first use. It is separate from every CA key: it signs only checkpoints.
func LoadKey(ctx context.Context, settings openpca.SettingStore, keys Keys) (note.Signer, string, error) {
	value, err := settings.Setting(ctx, KeySetting)
	if err != nil {
		return nil, "", err
	}
	if value == nil {
		made, err := keys.make()
		if err != nil {
			return nil, "", err
		}
		// Of servers making the first key at once, one wins and the others
		// use its key; a token key of a loser stays unused in its token,
		// under a label nothing names.
		if value, err = settings.InitSetting(ctx, KeySetting, made); err != nil {
			return nil, "", err
		}
	}
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return nil, "", fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	if stored.KeyStore == "" {
		signer, err := openSealed(stored, keys.Sealer)
		if err != nil {
			return nil, "", err
		}
		return signer, stored.VerifierKey, nil
	}
	if keys.Token == nil || keys.Token.Name() != stored.KeyStore {
		return nil, "", fmt.Errorf("auditlog: the audit key is in the %s store (label %q), which this server has not configured", stored.KeyStore, stored.KeyLabel)
	}
	key, err := keys.Token.Ed25519(stored.KeyLabel, false)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: the audit key: %w", err)
	}
	signer, vkey, err := tokenSigner(key)
	if err != nil {
		return nil, "", err
	}
	if vkey != stored.VerifierKey {
		return nil, "", fmt.Errorf("auditlog: the key labelled %q in the token is not the audit key the database names", stored.KeyLabel)
	}
	return signer, vkey, nil
}

// make makes a new key where keys say, and returns the setting's value.
func (keys Keys) make() ([]byte, error) {
	if !keys.InToken {
		skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
		if err != nil {
			return nil, err
		}
		sealed, err := keys.Sealer.Seal([]byte(skey), []byte(KeySetting))
		if err != nil {
			return nil, err
		}
		return json.Marshal(storedKey{VerifierKey: vkey, SealedKey: sealed})
	}
	if keys.Token == nil {
		return nil, errors.New("auditlog: the audit key is to be made in a token, and there is none")
	}
	// A label of its own: a token may keep the keys of earlier databases.
	label := "openpca-audit-" + rand.Text()
	key, err := keys.Token.Ed25519(label, true)
	if err != nil {
		return nil, fmt.Errorf("auditlog: making the audit key: %w", err)
	}
	_, vkey, err := tokenSigner(key)
	if err != nil {
		return nil, err
	}
	return json.Marshal(storedKey{VerifierKey: vkey, KeyStore: keys.Token.Name(), KeyLabel: label})
}

// tokenSigner makes a note signer of a token's key, and its verifier key.
func tokenSigner(key crypto.Signer) (note.Signer, string, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, "", errors.New("auditlog: the token's audit key is not an Ed25519 key")
	}
	vkey, err := note.NewEd25519VerifierKey(KeyName, pub)
	if err != nil {
		return nil, "", err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", err
	}
	return &signer{key: key, hash: verifier.KeyHash(), slot: make(chan struct{}, 1)}, vkey, nil
}

// signer signs notes with a key in a token.
type signer struct {
	key  crypto.Signer
	hash uint32
	// slot is held by the call into the token under way, which the key
	// makes one at a time. A call that hangs (a network HSM that stopped
	// answering mid-call) cannot be stopped: it holds the slot until it
	// returns, and the signatures asked for meanwhile fail at tokenWait
	// rather than wait with it, holding their requests and reports for
	// good.
	slot chan struct{}
}

// tokenWait bounds a signature of the audit key in a token, its wait for
// the call before it included: the token signs in milliseconds.
const tokenWait = 10 * time.Second

func (*signer) Name() string      { return KeyName }
func (s *signer) KeyHash() uint32 { return s.hash }

func (s *signer) Sign(msg []byte) ([]byte, error) {
	late := time.NewTimer(tokenWait)
	defer late.Stop()
	hung := &openpca.Error{Code: openpca.CodeServiceUnavailable,
		Message: fmt.Sprintf("The token that keeps the audit key did not sign within %v; retry later.", tokenWait)}
	select {
	case s.slot <- struct{}{}:
	case <-late.C:
		return nil, hung
	}
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// Out of the caller's goroutine, a panic would end the
			// process.
			if p := recover(); p != nil {
				done <- result{nil, fmt.Errorf("auditlog: panic signing in the token: %v", p)}
			}
			<-s.slot
		}()
		sig, err := s.key.Sign(nil, msg, crypto.Hash(0))
		done <- result{sig, err}
	}()
	select {
	case r := <-done:
		return r.sig, r.err
	case <-late.C:
		return nil, hung
	}
}

// PublicKey returns the audit public key the store names, for an operator
// command; the server makes the key at its first start.
func PublicKey(ctx context.Context, settings openpca.SettingStore) (string, error) {
	value, err := settings.Setting(ctx, KeySetting)
	if err != nil {
		return "", err
	}
	if value == nil {
		return "", errors.New("auditlog: there is no audit key yet: the server makes it when it first starts")
	}
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return "", fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	return stored.VerifierKey, nil
}

// openSealed opens the audit key sealed in stored, and checks that the
// verifier key stored beside it, in plain, is its: checkpoints are
// checked against that one, and a setting edited to name another key
// (a restored backup's, say) would have a forger's checkpoints pass.
func openSealed(stored storedKey, sealer openpca.KeySealer) (note.Signer, error) {
	opened, err := sealer.Open(stored.SealedKey, []byte(KeySetting))
	if err != nil {
		return nil, fmt.Errorf("auditlog: opening the audit key: %w", err)
	}
	signer, err := note.NewSigner(string(opened))
	if err != nil {
		return nil, fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	verifier, err := note.NewVerifier(stored.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: the stored audit key's verifier key: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: "the audit key is the verifier key's\n"}, signer)
	if err != nil {
		return nil, err
	}
	if _, err := note.Open(signed, note.VerifierList(verifier)); err != nil {
		return nil, errors.New("auditlog: the verifier key stored beside the audit key is not the key's: the setting was changed")
	}
	return signer, nil
}

// CheckKey checks that the verifier key stored beside the audit key is
// its, as LoadKey does, without making one: for a database a server has
// not started on (a restored one). A key in a token is checked against
// it when a server loads it.
func CheckKey(ctx context.Context, settings openpca.SettingStore, sealer openpca.KeySealer) error {
	value, err := settings.Setting(ctx, KeySetting)
	if err != nil || value == nil {
		return err
	}
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	if stored.KeyStore != "" {
		return nil
	}
	_, err = openSealed(stored, sealer)
	return err
}

// ResealKey seals the audit key in the setting value again, with the
// sealer's master key, for a rotation of it. A key in a token is not
// sealed, and is left as it is.
func ResealKey(value []byte, sealer interface {
	Reseal(sealed, associatedData []byte) ([]byte, error)
}) ([]byte, error) {
	var stored storedKey
	if err := json.Unmarshal(value, &stored); err != nil {
		return nil, fmt.Errorf("auditlog: the stored audit key: %w", err)
	}
	if stored.KeyStore != "" {
		return value, nil
	}
	resealed, err := sealer.Reseal(stored.SealedKey, []byte(KeySetting))
	if err != nil {
		return nil, fmt.Errorf("auditlog: resealing the audit key: %w", err)
	}
	stored.SealedKey = resealed
	return json.Marshal(stored)
}
