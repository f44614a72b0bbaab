package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"errors"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SM2 keys (GB/T 32918) and their SM3WITHSM2 signatures come from
// emmansun/gmsm. An SM2 public key is an *ecdsa.PublicKey on the SM2
// curve, written as an id-ecPublicKey with that curve's OID, which Go's
// crypto/x509 refuses; gmsm's smx509 reads and writes it. Signatures use
// the default signer identity of GB/T 32918 ("1234567812345678"), as
// every SM2 certificate does.

// oidSM2WithSM3 is the signature algorithm SM2 with SM3 (GM/T 0006), and
// oidSM2Curve the curve of SM2 keys.
var (
	oidSM2WithSM3 = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
	oidSM2Curve   = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
)

// sm2Requested reports whether a DER CSR's key is on the SM2 curve, as
// its SubjectPublicKeyInfo names it, however malformed the rest.
func sm2Requested(der []byte) bool {
	in := cryptobyte.String(der)
	var req, info, spki, alg cryptobyte.String
	var keyType, curve asn1.ObjectIdentifier
	return in.ReadASN1(&req, cbasn1.SEQUENCE) && req.ReadASN1(&info, cbasn1.SEQUENCE) && info.SkipASN1(cbasn1.INTEGER) && info.SkipASN1(cbasn1.SEQUENCE) &&
		info.ReadASN1(&spki, cbasn1.SEQUENCE) && spki.ReadASN1(&alg, cbasn1.SEQUENCE) && alg.ReadASN1ObjectIdentifier(&keyType) &&
		alg.ReadASN1ObjectIdentifier(&curve) && curve.Equal(oidSM2Curve)
}

// isSM2 reports whether key, public or private, is an SM2 key.
func isSM2(key any) bool {
	switch k := key.(type) {
	case *sm2.PrivateKey:
		return true
	case *ecdsa.PublicKey:
		return sm2.IsSM2PublicKey(k)
	}
	return false
}

// sm2AlgorithmIdentifier is the DER AlgorithmIdentifier of SM2 with SM3:
// its OID, and no parameters.
func sm2AlgorithmIdentifier() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSM2WithSM3) })
	return b.BytesOrPanic()
}

// signSM2 signs msg whole with an SM2 key, with SM3 and the default
// signer identity.
func signSM2(signer crypto.Signer, msg []byte) ([]byte, error) {
	return signer.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
}

// checkSM2Signature checks an SM2 signature over signed, made with the
// algorithm identifier algID, which must be SM2 with SM3's.
func checkSM2Signature(pub *ecdsa.PublicKey, algID, signed, sig []byte) error {
	if string(algID) != string(sm2AlgorithmIdentifier()) {
		return errors.New("the signature is not SM2 with SM3, as the key is SM2")
	}
	if !sm2.VerifyASN1WithSM2(pub, nil, signed, sig) {
		return errors.New("the SM2 signature does not verify")
	}
	return nil
}

// marshalSM2PrivateKey writes an SM2 key as PKCS #8.
func marshalSM2PrivateKey(key *sm2.PrivateKey) ([]byte, error) {
	return smx509.MarshalPKCS8PrivateKey(key)
}

// parseSM2PrivateKey reads a PKCS #8 SM2 key; ok is false if der is not
// one.
func parseSM2PrivateKey(der []byte) (key crypto.Signer, ok bool) {
	k, err := smx509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, false
	}
	priv, ok := k.(*sm2.PrivateKey)
	return priv, ok
}
