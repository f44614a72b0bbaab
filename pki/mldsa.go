package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

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

// ParsePublicKey parses a DER SubjectPublicKeyInfo: an ML-DSA key, or any
// key Go's crypto/x509 parses.
func ParsePublicKey(spki []byte) (crypto.PublicKey, error) {
	in := cryptobyte.String(spki)
	var info, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	var raw asn1.BitString
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() || !info.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, errors.New("not a SubjectPublicKeyInfo")
	}
	_, s, ok := mldsaByOID(oid)
	if !ok {
		return x509.ParsePKIXPublicKey(spki)
	}
	if !alg.Empty() {
		return nil, fmt.Errorf("an %s key's algorithm identifier has parameters", s.Name())
	}
	if !info.ReadASN1BitString(&raw) || !info.Empty() || raw.BitLength%8 != 0 {
		return nil, fmt.Errorf("not an %s public key", s.Name())
	}
	return s.UnmarshalBinaryPublicKey(raw.Bytes)
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

// CreateCertificate is x509.CreateCertificate, with ML-DSA keys as signer
// or as the certified key too.
func CreateCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	mlPub, pubIsML := pub.(sign.PublicKey)
	_, signerIsML := signer.(sign.PrivateKey)
	if !pubIsML && !signerIsML {
		return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	}
	standIn, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t := *tmpl
	goPub, goSigner := pub, signer
	if pubIsML {
		goPub = standIn.Public()
		if len(t.SubjectKeyId) == 0 && t.IsCA {
			// Go would derive it from the stand-in key.
			if t.SubjectKeyId, err = SubjectKeyID(pub); err != nil {
				return nil, err
			}
		}
	}
	if signerIsML {
		goSigner, t.SignatureAlgorithm = standIn, x509.ECDSAWithSHA256
	}
	der, err := x509.CreateCertificate(rand.Reader, &t, parent, goPub, goSigner)
	if err != nil {
		return nil, err
	}
	var spki []byte
	if pubIsML {
		if spki, err = marshalMLDSAPublicKey(mlPub); err != nil {
			return nil, err
		}
	}
	// TBSCertificate: [0] version, serial, signature, issuer, validity,
	// subject, subjectPublicKeyInfo, [3] extensions.
	return resign(der, signer, t.SignatureAlgorithm, func(tbs [][]byte) error {
		if len(tbs) < 7 || tbs[0][0] != 0xa0 {
			return errors.New("pki: Go made a TBSCertificate without a version")
		}
		if signerIsML {
			tbs[2] = algorithmIdentifier(signer.(sign.PrivateKey).Scheme())
		}
		if spki != nil {
			tbs[6] = spki
		}
		return nil
	})
}

// CreateRevocationList is x509.CreateRevocationList, with an ML-DSA
// signer too.
func CreateRevocationList(list *x509.RevocationList, issuer *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	ml, ok := signer.(sign.PrivateKey)
	if !ok {
		return x509.CreateRevocationList(rand.Reader, list, issuer, signer)
	}
	standIn, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	l := *list
	l.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateRevocationList(rand.Reader, &l, issuer, standIn)
	if err != nil {
		return nil, err
	}
	// TBSCertList: version, signature, issuer, thisUpdate, ...
	return resign(der, signer, 0, func(tbs [][]byte) error {
		if len(tbs) < 4 || tbs[0][0] != byte(cbasn1.INTEGER) {
			return errors.New("pki: Go made a TBSCertList without a version")
		}
		tbs[1] = algorithmIdentifier(ml.Scheme())
		return nil
	})
}

// CreateCertificateRequest is x509.CreateCertificateRequest, with an
// ML-DSA key too.
func CreateCertificateRequest(key crypto.Signer, req *x509.CertificateRequest) ([]byte, error) {
	ml, ok := key.(sign.PrivateKey)
	if !ok {
		return x509.CreateCertificateRequest(rand.Reader, req, key)
	}
	standIn, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	r := *req
	r.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateCertificateRequest(rand.Reader, &r, standIn)
	if err != nil {
		return nil, err
	}
	spki, err := marshalMLDSAPublicKey(ml.Public().(sign.PublicKey))
	if err != nil {
		return nil, err
	}
	// CertificationRequestInfo: version, subject, subjectPKInfo, [0]
	// attributes.
	return resign(der, key, 0, func(cri [][]byte) error {
		if len(cri) != 4 {
			return errors.New("pki: Go made an unexpected CertificationRequestInfo")
		}
		cri[2] = spki
		return nil
	})
}

// resign takes a signed object, SEQUENCE { tbs, AlgorithmIdentifier, BIT
// STRING }, lets change rewrite the elements of its tbs SEQUENCE, and signs
// the new tbs with signer: an ML-DSA key signs it whole; another hashes
// it for sigAlg first.
func resign(der []byte, signer crypto.Signer, sigAlg x509.SignatureAlgorithm, change func(elements [][]byte) error) ([]byte, error) {
	in := cryptobyte.String(der)
	var outer, tbs, algID cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&algID, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: not a signed object")
	}
	var body cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: not a signed object")
	}
	var elements [][]byte
	for !body.Empty() {
		var e cryptobyte.String
		var tag cbasn1.Tag
		if !body.ReadAnyASN1Element(&e, &tag) {
			return nil, errors.New("pki: a malformed element in a signed object")
		}
		elements = append(elements, e)
	}
	if err := change(elements); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range elements {
			b.AddBytes(e)
		}
	})
	newTBS, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	newAlgID, sig, err := signBytes(newTBS, signer, sigAlg, algID)
	if err != nil {
		return nil, err
	}
	b = cryptobyte.Builder{}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(newTBS)
		b.AddBytes(newAlgID)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// signBytes signs tbs with signer and returns the AlgorithmIdentifier of
// the signature: an ML-DSA key's own, else goAlgID, which Go wrote for
// sigAlg.
func signBytes(tbs []byte, signer crypto.Signer, sigAlg x509.SignatureAlgorithm, goAlgID []byte) ([]byte, []byte, error) {
	if ml, ok := signer.(sign.PrivateKey); ok {
		sig, err := signer.Sign(rand.Reader, tbs, crypto.Hash(0))
		return algorithmIdentifier(ml.Scheme()), sig, err
	}
	var h crypto.Hash
	switch sigAlg {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		return nil, nil, fmt.Errorf("pki: signature algorithm %v cannot sign for an ML-DSA key", sigAlg)
	}
	d := h.New()
	d.Write(tbs)
	sig, err := signer.Sign(rand.Reader, d.Sum(nil), h)
	return goAlgID, sig, err
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

// signatureParts returns the AlgorithmIdentifier and the signature of a
// signed object, SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }.
func signatureParts(der []byte) (algID, sig []byte, err error) {
	in := cryptobyte.String(der)
	var outer, tbs, alg cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&alg, cbasn1.SEQUENCE) ||
		!outer.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 {
		return nil, nil, errors.New("not a signed object")
	}
	return alg, bits.Bytes, nil
}

// CheckSignatureFrom checks that parent signed c, as
// c.CheckSignatureFrom does, with ML-DSA parents too.
func CheckSignatureFrom(c, parent *x509.Certificate) error {
	pub, err := ParsePublicKey(parent.RawSubjectPublicKeyInfo)
	ml, isML := pub.(sign.PublicKey)
	if err != nil || !isML {
		return c.CheckSignatureFrom(parent)
	}
	if parent.BasicConstraintsValid && !parent.IsCA || parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return x509.ConstraintViolationError{}
	}
	algID, sig, err := signatureParts(c.Raw)
	if err != nil {
		return err
	}
	return checkMLDSASignature(ml, algID, c.RawTBSCertificate, sig)
}

// ParseCSR parses a DER certificate signing request and checks its
// signature; an ML-DSA key comes out as its circl public key in
// PublicKey.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	if csr.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("its signature does not verify: %v", err)
		}
		return csr, nil
	}
	pub, err := ParsePublicKey(csr.RawSubjectPublicKeyInfo)
	ml, ok := pub.(sign.PublicKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("its public key is of an algorithm this server does not support")
	}
	algID, sig, err := signatureParts(csr.Raw)
	if err != nil {
		return nil, err
	}
	if err := checkMLDSASignature(ml, algID, csr.RawTBSCertificateRequest, sig); err != nil {
		return nil, fmt.Errorf("its signature does not verify: %v", err)
	}
	csr.PublicKey = pub
	return csr, nil
}

// CreateOCSPResponse is ocsp.CreateResponse for an issuer that signs its
// own answers, with an ML-DSA issuer too.
func CreateOCSPResponse(issuer *x509.Certificate, tmpl ocsp.Response, signer crypto.Signer) ([]byte, error) {
	if _, ok := signer.(sign.PrivateKey); !ok {
		return ocsp.CreateResponse(issuer, issuer, tmpl, signer)
	}
	standIn, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := ocsp.CreateResponse(issuer, issuer, tmpl, standIn)
	if err != nil {
		return nil, err
	}
	// OCSPResponse { responseStatus, [0] { responseType, OCTET STRING {
	// BasicOCSPResponse } } }, and the BasicOCSPResponse a signed object
	// (with no certificates: the issuer signs).
	in := cryptobyte.String(der)
	var resp, status, explicit, responseBytes, responseType, basic cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.ReadASN1Element(&status, cbasn1.ENUM) ||
		!resp.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !explicit.ReadASN1(&responseBytes, cbasn1.SEQUENCE) ||
		!responseBytes.ReadASN1Element(&responseType, cbasn1.OBJECT_IDENTIFIER) || !responseBytes.ReadASN1(&basic, cbasn1.OCTET_STRING) {
		return nil, errors.New("pki: an unexpected OCSP response")
	}
	basicDER, err := resign(basic, signer, 0, func([][]byte) error { return nil })
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(status)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(responseType)
				b.AddASN1OctetString(basicDER)
			})
		})
	})
	return b.Bytes()
}
