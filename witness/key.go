// Package witness speaks the C2SP tlog-witness protocol: a Server that
// cosigns the checkpoints of the logs it trusts, once it has checked that
// each extends the last it cosigned, and a Client that asks a witness for
// its cosignature. Cosignatures are c2sp.org/tlog-cosignature (Ed25519),
// made and checked with filippo.io/torchwood.
package witness

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
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

// NewVerifier parses a witness's public key, "<name>+<hash>+<base64 of
// 0x04 and the Ed25519 key>" as c2sp.org/signed-note writes it, into a
// verifier of its cosignatures.
func NewVerifier(vkey string) (note.Verifier, error) {
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if len(hash16) != 8 || err1 != nil || err2 != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("witness: %q is not a witness's cosignature key", vkey)
	}
	s, err := torchwood.NewCosignatureSigner(name, publicKey(key[1:]))
	if err != nil {
		return nil, fmt.Errorf("witness: %q: %v", vkey, err)
	}
	v := s.Verifier()
	if v.KeyHash() != uint32(hash) {
		return nil, fmt.Errorf("witness: the key hash of %q does not match its name and key", vkey)
	}
	return v, nil
}

// publicKey is an Ed25519 public key as a crypto.Signer that cannot sign:
// torchwood makes a cosignature verifier out of a signer.
type publicKey ed25519.PublicKey

func (k publicKey) Public() crypto.PublicKey { return ed25519.PublicKey(k) }

func (publicKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("witness: a public key does not sign")
}

// NewKey makes a witness key named name: the private key, in the form of
// a note signer key, for the witness to keep, and its public key.
func NewKey(name string) (skey, vkey string, err error) {
	skey, _, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", err
	}
	vkey, err = PublicKey(skey)
	return skey, vkey, err
}

// PublicKey returns the public key of a private key NewKey made.
func PublicKey(skey string) (string, error) {
	s, err := signer(skey)
	if err != nil {
		return "", err
	}
	return s.Verifier().String(), nil
}

// signer makes a cosignature signer of a key NewKey made.
func signer(skey string) (*torchwood.CosignatureSigner, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64 of 0x01 and the Ed25519 seed>; the
	// base64 may hold a "+" too.
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	name, rest, _ := strings.Cut(rest, "+")
	_, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if !ok || err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return nil, errors.New("witness: not a witness private key")
	}
	return torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(key[1:]))
}
