package pki

import (
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
)

// ML-DSA (FIPS 204) keys come from cloudflare/circl and go into X.509 as
// the IETF LAMPS profile (RFC 9881) says: the "pure" algorithm identifiers
// id-ml-dsa-44, -65 and -87 with absent parameters, for both the key and
// the signature; the public key as the raw bit string; the private key,
// in PKCS #8, as its 32-byte seed. Go's crypto/x509 knows none of this, so
// an object signed by or for an ML-DSA key is made by Go with a stand-in
// key, and its ML-DSA parts put in place before it is signed again (see
// resign).
var mldsaSchemes = map[openpca.KeyAlgorithm]sign.Scheme{
	openpca.KeyAlgorithmMlDsa44: mldsa44.Scheme(),
	openpca.KeyAlgorithmMlDsa65: mldsa65.Scheme(),
	openpca.KeyAlgorithmMlDsa87: mldsa87.Scheme(),
}

// mldsaOIDs are the schemes' OIDs, in NIST's sigAlgs arc.
var mldsaOIDs = map[openpca.KeyAlgorithm]asn1.ObjectIdentifier{
	openpca.KeyAlgorithmMlDsa44: {2, 16, 840, 1, 101, 3, 4, 3, 17},
	openpca.KeyAlgorithmMlDsa65: {2, 16, 840, 1, 101, 3, 4, 3, 18},
	openpca.KeyAlgorithmMlDsa87: {2, 16, 840, 1, 101, 3, 4, 3, 19},
}

// mldsaKeyAlgorithm names the scheme of an ML-DSA public or private key
// as the API does, or returns "" for another key.
func mldsaKeyAlgorithm(key any) openpca.KeyAlgorithm {
	switch k := key.(type) {
	case sign.PublicKey:
		return schemeAlgorithm(k.Scheme())
	case sign.PrivateKey:
		return schemeAlgorithm(k.Scheme())
	}
	return ""
}

// schemeAlgorithm names an ML-DSA scheme as the API does.
func schemeAlgorithm(s sign.Scheme) openpca.KeyAlgorithm {
	for alg, scheme := range mldsaSchemes {
		if scheme == s {
			return alg
		}
	}
	return ""
}

// mldsaByOID returns the scheme an algorithm identifier's OID names.
func mldsaByOID(oid asn1.ObjectIdentifier) (openpca.KeyAlgorithm, sign.Scheme, bool) {
	for alg, o := range mldsaOIDs {
		if o.Equal(oid) {
			return alg, mldsaSchemes[alg], true
		}
	}
	return "", nil, false
}

// IsMLDSA reports whether a key algorithm is ML-DSA.
func IsMLDSA(alg openpca.KeyAlgorithm) bool {
	_, ok := mldsaSchemes[alg]
	return ok
}

// algorithmIdentifier is the DER AlgorithmIdentifier of an ML-DSA scheme:
// its OID, and no parameters.
func algorithmIdentifier(s sign.Scheme) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(mldsaOIDs[schemeAlgorithm(s)]) })
	return b.BytesOrPanic()
}

// generateMLDSA makes an ML-DSA key from a fresh seed, which it keeps.
func generateMLDSA(s sign.Scheme) (crypto.Signer, error) {
	seed := make([]byte, s.SeedSize())
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	_, priv := s.DeriveKey(seed)
	return priv, nil
}

// signMLDSA signs msg with an ML-DSA key in FIPS 204's hedged form, with
// fresh randomness besides the key's own (circl's Sign is the
// deterministic form, which a fault or a side channel exposes more), and
// the empty context string that RFC 9881 prescribes.
func signMLDSA(key sign.PrivateKey, msg []byte) ([]byte, error) {
	sig := make([]byte, key.Scheme().SignatureSize())
	var err error
	switch k := key.(type) {
	case *mldsa44.PrivateKey:
		err = mldsa44.SignTo(k, msg, nil, true, sig)
	case *mldsa65.PrivateKey:
		err = mldsa65.SignTo(k, msg, nil, true, sig)
	case *mldsa87.PrivateKey:
		err = mldsa87.SignTo(k, msg, nil, true, sig)
	default:
		return nil, fmt.Errorf("pki: an ML-DSA key of type %T", key)
	}
	return sig, err
}

// marshalMLDSAPublicKey is the SubjectPublicKeyInfo of an ML-DSA key.
func marshalMLDSAPublicKey(pub sign.PublicKey) ([]byte, error) {
	raw, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(algorithmIdentifier(pub.Scheme()))
		b.AddASN1BitString(raw)
	})
	return b.Bytes()
}

// marshalMLDSAPrivateKey writes an ML-DSA key as PKCS #8 in the seed form:
// the privateKey OCTET STRING holds [0] IMPLICIT OCTET STRING (SIZE (32)).
func marshalMLDSAPrivateKey(key sign.PrivateKey) ([]byte, error) {
	seeded, ok := key.(interface{ Seed() []byte })
	if !ok || seeded.Seed() == nil {
		return nil, errors.New("an ML-DSA key without its seed cannot be kept")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(algorithmIdentifier(key.Scheme()))
		b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(seeded.Seed()) })
		})
	})
	return b.Bytes()
}

// parseMLDSAPrivateKey reads a PKCS #8 ML-DSA key in the seed form; ok is
// false if der is not an ML-DSA key at all.
func parseMLDSAPrivateKey(der []byte) (key crypto.Signer, ok bool, err error) {
	in := cryptobyte.String(der)
	var info, alg, priv, seed cryptobyte.String
	var version int64
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1Integer(&version) || !info.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, false, nil
	}
	_, s, isMLDSA := mldsaByOID(oid)
	if !isMLDSA {
		return nil, false, nil
	}
	if !in.Empty() || version != 0 || !alg.Empty() || !info.ReadASN1(&priv, cbasn1.OCTET_STRING) ||
		!priv.ReadASN1(&seed, cbasn1.Tag(0).ContextSpecific()) || !priv.Empty() || len(seed) != s.SeedSize() {
		return nil, true, fmt.Errorf("not an %s private key in the seed form", s.Name())
	}
	_, k := s.DeriveKey(seed)
	return k, true, nil
}

// checkMLDSASignature checks an ML-DSA key's signature over signed, made
// with the algorithm identifier algID, which must be its scheme's.
func checkMLDSASignature(pub sign.PublicKey, algID, signed, sig []byte) error {
	if string(algID) != string(algorithmIdentifier(pub.Scheme())) {
		return fmt.Errorf("the signature is not %s, as the key is", pub.Scheme().Name())
	}
	if !pub.Scheme().Verify(pub, signed, sig, nil) {
		return errors.New("the " + pub.Scheme().Name() + " signature does not verify")
	}
	return nil
}
