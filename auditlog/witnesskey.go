package auditlog

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signature type of tlog-cosignature/v1 keys.
const algCosignatureV1 = 4

// NewWitnessVerifier parses a witness's public key, "<name>+<hash>+<base64 of
// 0x04 and the Ed25519 key>" as c2sp.org/signed-note writes it, into a
// verifier of its cosignatures.
func NewWitnessVerifier(vkey string) (note.Verifier, error) {
	v, _, err := parseWitnessKey(vkey)
	return v, err
}

// NewWitnessVerifiers parses witnesses' public keys (NewWitnessVerifier),
// and refuses one witness's key given twice, under one name or two: a
// cosignature does not sign its witness's name (c2sp.org/tlog-cosignature),
// so a witness's key under two names would count twice toward a quorum.
func NewWitnessVerifiers(vkeys []string) ([]note.Verifier, error) {
	seen := map[string]string{}
	var vs []note.Verifier
	for _, vkey := range vkeys {
		v, key, err := parseWitnessKey(vkey)
		if err != nil {
			return nil, err
		}
		if first, ok := seen[string(key)]; ok {
			return nil, fmt.Errorf("auditlog: %q and %q are one witness's key; a witness counts once toward a quorum", first, vkey)
		}
		seen[string(key)] = vkey
		vs = append(vs, v)
	}
	return vs, nil
}

// parseWitnessKey parses vkey into a verifier and its Ed25519 key.
func parseWitnessKey(vkey string) (note.Verifier, ed25519.PublicKey, error) {
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if len(hash16) != 8 || err1 != nil || err2 != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, nil, fmt.Errorf("auditlog: %q is not a witness's cosignature key", vkey)
	}
	s, err := torchwood.NewCosignatureSigner(name, publicKey(key[1:]))
	if err != nil {
		return nil, nil, fmt.Errorf("auditlog: %q: %v", vkey, err)
	}
	v := s.Verifier()
	if v.KeyHash() != uint32(hash) {
		return nil, nil, fmt.Errorf("auditlog: the key hash of %q does not match its name and key", vkey)
	}
	return v, ed25519.PublicKey(key[1:]), nil
}

// publicKey is an Ed25519 public key as a crypto.Signer that cannot sign:
// torchwood makes a cosignature verifier out of a signer.
type publicKey ed25519.PublicKey

func (k publicKey) Public() crypto.PublicKey { return ed25519.PublicKey(k) }

func (publicKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("auditlog: a public key does not sign")
}
