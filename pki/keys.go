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
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/emmansun/gmsm/sm2"

	"github.com/openpca/openpca"
)

// GenerateKey creates a private key of the given algorithm.
func GenerateKey(alg openpca.KeyAlgorithm) (crypto.Signer, error) {
	if s, ok := mldsaSchemes[alg]; ok {
		return generateMLDSA(s)
	}
	switch alg {
	case openpca.KeyAlgorithmSm2:
		return sm2.GenerateKey(rand.Reader)
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

// keyFamily is RSA, EC, SM2 or the ML-DSA scheme, which decides the
// signing algorithms a key fits.
func keyFamily(alg openpca.KeyAlgorithm) string {
	if IsMLDSA(alg) || alg == openpca.KeyAlgorithmSm2 {
		return string(alg)
	}
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
	// Go's crypto/x509 has no ML-DSA algorithms: CreateCertificate and the
	// others of this package sign with the key's own.
	openpca.SigningAlgorithmMlDsa44:    {string(openpca.KeyAlgorithmMlDsa44), x509.UnknownSignatureAlgorithm},
	openpca.SigningAlgorithmMlDsa65:    {string(openpca.KeyAlgorithmMlDsa65), x509.UnknownSignatureAlgorithm},
	openpca.SigningAlgorithmMlDsa87:    {string(openpca.KeyAlgorithmMlDsa87), x509.UnknownSignatureAlgorithm},
	openpca.SigningAlgorithmSm3withsm2: {string(openpca.KeyAlgorithmSm2), x509.UnknownSignatureAlgorithm},
}

// SignatureAlgorithm returns the x509 signature algorithm for signing with
// a key of keyAlg, or an error if the two do not fit together.
func SignatureAlgorithm(keyAlg openpca.KeyAlgorithm, sigAlg openpca.SigningAlgorithm) (x509.SignatureAlgorithm, error) {
	family := keyFamily(keyAlg)
	if family == "" {
		return 0, fmt.Errorf("key algorithm %s is not supported by this server; use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, EC_secp521r1, ML_DSA_44, ML_DSA_65, ML_DSA_87, SM2", keyAlg)
	}
	sa, ok := signingAlgorithms[sigAlg]
	if !ok {
		return 0, fmt.Errorf("signing algorithm %s is not supported by this server", sigAlg)
	}
	if sa.family != family && IsMLDSA(keyAlg) {
		return 0, fmt.Errorf("signing algorithm %s does not fit key algorithm %s: an %s key signs with %s", sigAlg, keyAlg, keyAlg, keyAlg)
	}
	if sa.family != family && keyAlg == openpca.KeyAlgorithmSm2 {
		return 0, fmt.Errorf("signing algorithm %s does not fit key algorithm SM2: an SM2 key signs with SM3WITHSM2", sigAlg)
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
	if alg := mldsaKeyAlgorithm(pub); alg != "" {
		return alg
	}
	if isSM2(pub) {
		return openpca.KeyAlgorithmSm2
	}
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
	switch k := key.(type) {
	case sign.PrivateKey:
		return marshalMLDSAPrivateKey(k)
	case *sm2.PrivateKey:
		return marshalSM2PrivateKey(k)
	}
	return x509.MarshalPKCS8PrivateKey(key)
}

// ParsePrivateKey decodes a PKCS #8 key.
func ParsePrivateKey(der []byte) (crypto.Signer, error) {
	if key, ok, err := parseMLDSAPrivateKey(der); ok {
		return key, err
	}
	if key, ok := parseSM2PrivateKey(der); ok {
		return key, nil
	}
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

// VerifyDigest checks sig, a signature of digest made with opts by a
// crypto.Signer whose public key is pub: ECDSA (ASN.1) or RSA, PKCS #1
// v1.5 or PSS as opts says, the keys a token or KMS holds. Another key's
// signature cannot be checked, and is an error too.
func VerifyDigest(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("pki: the ECDSA signature does not verify with the public key")
		}
		return nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(pub, opts.HashFunc(), digest, sig, pss)
		}
		return rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
	}
	return fmt.Errorf("pki: a signature of a key of type %T cannot be checked here", pub)
}
