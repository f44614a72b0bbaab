//go:build cgo

// Package pkcs11 keeps CA keys in a PKCS#11 token (an HSM, a smart card,
// SoftHSM2), through crypto11: each key is made inside the token, never
// leaves it (CKA_EXTRACTABLE false, CKA_SENSITIVE true), and signs there.
// It needs a cgo build; without cgo, Open says so.
package pkcs11

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/openpca/openpca"
)

// Config says which token to use.
type Config struct {
	// Module is the path of the token's PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel names the token.
	TokenLabel string
	// PIN is the user PIN; the command reads it from the environment or a
	// file, never from a flag that would show in ps.
	PIN string
	// MaxSessions bounds the sessions signing at once; 0 means 64.
	MaxSessions int
}

// Store keeps CA keys in one token. It implements openpca.KeyStore.
type Store struct {
	ctx *crypto11.Context
}

var _ openpca.KeyStore = (*Store)(nil)

// Name of the store in CA records.
const Name = "pkcs11"

// Open logs in to the token.
func Open(cfg Config) (*Store, error) {
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 64
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN,
		MaxSessions: cfg.MaxSessions, PoolWaitTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: opening token %q with %s: %w", cfg.TokenLabel, cfg.Module, err)
	}
	return &Store{ctx: c}, nil
}

// Close logs out and closes the token's sessions.
func (s *Store) Close() error { return s.ctx.Close() }

// Name implements openpca.KeyStore.
func (*Store) Name() string { return Name }

// Hardware implements openpca.KeyStore.
func (*Store) Hardware() bool { return true }

// curves and rsaBits are the key algorithms the store makes keys of.
var (
	curves = map[openpca.KeyAlgorithm]elliptic.Curve{
		openpca.KeyAlgorithmEcPrime256v1: elliptic.P256(),
		openpca.KeyAlgorithmEcSecp384r1:  elliptic.P384(),
		openpca.KeyAlgorithmEcSecp521r1:  elliptic.P521(),
	}
	rsaBits = map[openpca.KeyAlgorithm]int{
		openpca.KeyAlgorithmRsa2048: 2048,
		openpca.KeyAlgorithmRsa3072: 3072,
		openpca.KeyAlgorithmRsa4096: 4096,
	}
)

// GenerateKey implements openpca.KeyStore. The key's CKA_ID is the CA's
// id, which is also its handle, and its label names the CA.
func (s *Store) GenerateKey(_ context.Context, ca *openpca.CA, alg openpca.KeyAlgorithm) ([]byte, crypto.Signer, error) {
	id, label := []byte(ca.ID), []byte("openpca "+ca.ARN)
	var key crypto11.Signer
	var err error
	if curve, ok := curves[alg]; ok {
		key, err = s.ctx.GenerateECDSAKeyPairWithLabel(id, label, curve)
	} else if bits, ok := rsaBits[alg]; ok {
		key, err = s.ctx.GenerateRSAKeyPairWithLabel(id, label, bits)
	} else {
		return nil, nil, openpca.Errorf(openpca.CodeInvalidArgs, "KeyAlgorithm %s: this server's PKCS#11 key store makes EC P-256, P-384 and P-521 and RSA 2048, 3072 and 4096 keys only.", alg)
	}
	if err != nil {
		return nil, nil, unavailable(ca, err)
	}
	return id, signer{key, ca}, nil
}

// Signer implements openpca.KeyStore.
func (s *Store) Signer(_ context.Context, ca *openpca.CA) (crypto.Signer, error) {
	key, err := s.ctx.FindKeyPair(ca.KeyHandle, nil)
	if err != nil {
		return nil, unavailable(ca, err)
	}
	if key == nil {
		return nil, openpca.Errorf(openpca.CodeInvalidState, "The key of %s is not in the PKCS#11 token: it was deleted, or the server uses another token.", ca.ARN)
	}
	return signer{key, ca}, nil
}

// DestroyKey implements openpca.KeyStore.
func (s *Store) DestroyKey(_ context.Context, ca *openpca.CA) error {
	key, err := s.ctx.FindKeyPair(ca.KeyHandle, nil)
	if err != nil || key == nil {
		return err
	}
	return key.Delete()
}

// Extractable reports the CKA_EXTRACTABLE and CKA_SENSITIVE attributes of
// the private key of ca, as the token keeps them.
func (s *Store) Extractable(ca *openpca.CA) (extractable, sensitive bool, err error) {
	key, err := s.ctx.FindKeyPair(ca.KeyHandle, nil)
	if err != nil || key == nil {
		return false, false, fmt.Errorf("pkcs11: the key of %s: %v", ca.ARN, err)
	}
	attrs, err := s.ctx.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaExtractable, crypto11.CkaSensitive})
	if err != nil {
		return false, false, err
	}
	flag := func(t crypto11.AttributeType) bool {
		a := attrs[t]
		return a != nil && len(a.Value) == 1 && a.Value[0] != 0
	}
	return flag(crypto11.CkaExtractable), flag(crypto11.CkaSensitive), nil
}

// signer signs in the token, and says what failed in AWS's terms.
type signer struct {
	key crypto11.Signer
	ca  *openpca.CA
}

func (s signer) Public() crypto.PublicKey { return s.key.Public() }

func (s signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := s.key.Sign(rand, digest, opts)
	if err != nil {
		return nil, unavailable(s.ca, err)
	}
	return sig, nil
}

// unavailable is the error of a token that failed: ServiceUnavailable,
// which clients retry, unless the token says the key is gone.
func unavailable(ca *openpca.CA, err error) error {
	var pe p11.Error
	if errors.As(err, &pe) && (pe == p11.CKR_KEY_HANDLE_INVALID || pe == p11.CKR_OBJECT_HANDLE_INVALID) {
		return openpca.Errorf(openpca.CodeInvalidState, "The key of %s is no longer in the PKCS#11 token: %v.", ca.ARN, err)
	}
	return openpca.Errorf(openpca.CodeServiceUnavailable, "The PKCS#11 token that keeps the key of %s cannot sign now: %v.", ca.ARN, err)
}
