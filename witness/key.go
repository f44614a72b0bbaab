// Package witness speaks the C2SP tlog-witness protocol: a Server that
// cosigns the checkpoints of the logs it trusts, once it has checked that
// each extends the last it cosigned, and a Client that asks a witness for
// its cosignature. Cosignatures are c2sp.org/tlog-cosignature (Ed25519),
// made and checked with filippo.io/torchwood.
package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

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
