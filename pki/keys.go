// Package pki builds the X.509 objects of a certificate authority from the
// API's descriptions: keys, distinguished names, general names, extensions
// and certificate signing requests. It uses only Go's standard library for
// cryptography.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/openpca/openpca"
)

// GenerateKey creates a private key of the given algorithm. Algorithms the
// Go standard library cannot use for X.509 (ML-DSA, SM2) are refused.
func GenerateKey(alg openpca.KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case openpca.KeyAlgorithmRsa2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case openpca.KeyAlgorithmRsa3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case openpca.KeyAlgorithmRsa4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case openpca.KeyAlgorithmEcPrime256v1:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case openpca.KeyAlgorithmEcSecp384r1:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case openpca.KeyAlgorithmEcSecp521r1:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	}
	return nil, fmt.Errorf("key algorithm %s is not supported by this server", alg)
}

// keyFamily is RSA or EC, which decides the signing algorithms a key fits.
func keyFamily(alg openpca.KeyAlgorithm) string {
	switch alg {
	case openpca.KeyAlgorithmRsa2048, openpca.KeyAlgorithmRsa3072, openpca.KeyAlgorithmRsa4096:
		return "RSA"
	case openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmEcSecp384r1, openpca.KeyAlgorithmEcSecp521r1:
		return "EC"
	}
	return ""
}

var signingAlgorithms = map[openpca.SigningAlgorithm]struct {
	family string
	x509   x509.SignatureAlgorithm
}{
	openpca.SigningAlgorithmSha256withrsa:   {"RSA", x509.SHA256WithRSA},
	openpca.SigningAlgorithmSha384withrsa:   {"RSA", x509.SHA384WithRSA},
	openpca.SigningAlgorithmSha512withrsa:   {"RSA", x509.SHA512WithRSA},
	openpca.SigningAlgorithmSha256withecdsa: {"EC", x509.ECDSAWithSHA256},
	openpca.SigningAlgorithmSha384withecdsa: {"EC", x509.ECDSAWithSHA384},
	openpca.SigningAlgorithmSha512withecdsa: {"EC", x509.ECDSAWithSHA512},
}

// SignatureAlgorithm returns the x509 signature algorithm for signing with
// a key of keyAlg, or an error if the two do not fit together.
func SignatureAlgorithm(keyAlg openpca.KeyAlgorithm, sigAlg openpca.SigningAlgorithm) (x509.SignatureAlgorithm, error) {
	family := keyFamily(keyAlg)
	if family == "" {
		return 0, fmt.Errorf("key algorithm %s is not supported by this server; use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, EC_secp521r1", keyAlg)
	}
	sa, ok := signingAlgorithms[sigAlg]
	if !ok {
		return 0, fmt.Errorf("signing algorithm %s is not supported by this server", sigAlg)
	}
	if sa.family != family {
		return 0, fmt.Errorf("signing algorithm %s does not fit key algorithm %s: an %s key signs with SHA256WITH%s, SHA384WITH%s or SHA512WITH%s", sigAlg, keyAlg, family, suffix(family), suffix(family), suffix(family))
	}
	return sa.x509, nil
}

func suffix(family string) string {
	if family == "EC" {
		return "ECDSA"
	}
	return "RSA"
}

// KeyAlgorithmOf names the algorithm of a public key as the API does, or
// returns "" for a key the server does not support.
func KeyAlgorithmOf(pub crypto.PublicKey) openpca.KeyAlgorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return openpca.KeyAlgorithmRsa2048
		case 3072:
			return openpca.KeyAlgorithmRsa3072
		case 4096:
			return openpca.KeyAlgorithmRsa4096
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return openpca.KeyAlgorithmEcPrime256v1
		case elliptic.P384():
			return openpca.KeyAlgorithmEcSecp384r1
		case elliptic.P521():
			return openpca.KeyAlgorithmEcSecp521r1
		}
	}
	return ""
}

// MarshalPrivateKey encodes a key as PKCS #8.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(key)
}

// ParsePrivateKey decodes a PKCS #8 key.
func ParsePrivateKey(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}
