package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/circl/sign"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// Keys Go's crypto/x509 cannot use, ML-DSA and SM2 ("foreign" keys), go
// through it all the same: Go makes each object with a stand-in key in
// their place, and the parts it could not write (the certified public key,
// the signature algorithm) are put in place before the object is signed
// again with the real key (see resign). Everything else about the object
// (names, extensions, their order) stays Go's.

// foreign reports whether key, public or private, is one Go's crypto/x509
// cannot use.
func foreign(key any) bool {
	return mldsaKeyAlgorithm(key) != "" || isSM2(key)
}

// standIn is a key to make an object with in place of a foreign one.
func standIn() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo of any key this
// package knows: ML-DSA, SM2, RSA, EC, Ed25519.
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
		return smx509.ParsePKIXPublicKey(spki)
	}
	if !alg.Empty() {
		return nil, fmt.Errorf("an %s key's algorithm identifier has parameters", s.Name())
	}
	if !info.ReadASN1BitString(&raw) || !info.Empty() || raw.BitLength%8 != 0 {
		return nil, fmt.Errorf("not an %s public key", s.Name())
	}
	return s.UnmarshalBinaryPublicKey(raw.Bytes)
}

// marshalPublicKey is the DER SubjectPublicKeyInfo of any key this
// package knows.
func marshalPublicKey(pub any) ([]byte, error) {
	if ml, ok := pub.(sign.PublicKey); ok {
		return marshalMLDSAPublicKey(ml)
	}
	return smx509.MarshalPKIXPublicKey(pub)
}

// ownAlgorithmIdentifier is the AlgorithmIdentifier of a foreign key's
// signatures.
func ownAlgorithmIdentifier(signer crypto.Signer) []byte {
	if ml, ok := signer.(sign.PrivateKey); ok {
		return algorithmIdentifier(ml.Scheme())
	}
	return sm2AlgorithmIdentifier()
}

// ParseCertificate is x509.ParseCertificate, for certificates of SM2 keys
// too. (Go parses ML-DSA ones, leaving their key out.)
func ParseCertificate(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err == nil {
		return c, nil
	}
	if sm, smErr := smx509.ParseCertificate(der); smErr == nil {
		return sm.ToX509(), nil
	}
	return nil, err
}

// CreateCertificate is x509.CreateCertificate, with foreign keys as signer
// or as the certified key too. Go makes the certificate with a stand-in
// key as both (its own signature by the CA's key would be a second
// signature of the CA's, in no log, of a valid certificate for the
// stand-in key), and signer signs it once, in resign. As
// x509.CreateCertificate does, a certificate whose signature the
// issuer's public key does not verify is not returned: a faulty signer
// (an RSA signature gone wrong gives its key away), or one of another key,
// is caught.
func CreateCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	pubForeign := foreign(pub)
	if !pubForeign && !foreign(signer) {
		return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	}
	sigAlg := tmpl.SignatureAlgorithm
	algID, err := signatureAlgorithmID(signer, sigAlg)
	if err != nil {
		return nil, err
	}
	key, err := standIn()
	if err != nil {
		return nil, err
	}
	t, p := *tmpl, *parent
	goPub := pub
	if pubForeign {
		goPub = key.Public()
		if len(t.SubjectKeyId) == 0 && t.IsCA {
			// Go would derive it from the stand-in key.
			if t.SubjectKeyId, err = SubjectKeyID(pub); err != nil {
				return nil, err
			}
		}
	}
	// Go checks that the signer's key is the parent's, which the check of
	// the signature below does in its place: the parent's, unless the
	// certificate signs itself.
	issuerKey := signer.Public()
	if len(parent.RawSubjectPublicKeyInfo) > 0 {
		if issuerKey, err = ParsePublicKey(parent.RawSubjectPublicKeyInfo); err != nil {
			return nil, err
		}
	}
	t.SignatureAlgorithm = x509.ECDSAWithSHA256
	p.PublicKey = nil
	der, err := x509.CreateCertificate(rand.Reader, &t, &p, goPub, key)
	if err != nil {
		return nil, err
	}
	var spki []byte
	if pubForeign {
		if spki, err = marshalPublicKey(pub); err != nil {
			return nil, err
		}
	}
	// TBSCertificate: [0] version, serial, signature, issuer, validity,
	// subject, subjectPublicKeyInfo, [3] extensions.
	der, err = resign(der, signer, sigAlg, algID, func(tbs [][]byte) ([][]byte, error) {
		if len(tbs) < 7 || tbs[0][0] != 0xa0 {
			return nil, errors.New("pki: Go made a TBSCertificate without a version")
		}
		tbs[2] = algID
		if spki != nil {
			tbs[6] = spki
		}
		return tbs, nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkSignedBy(der, issuerKey, sigAlg); err != nil {
		return nil, fmt.Errorf("pki: the certificate signed does not verify with its issuer's key: %w", err)
	}
	return der, nil
}

// CreateCertificateRequest is x509.CreateCertificateRequest, with a
// foreign key too. A request whose signature does not verify is not
// returned, as x509.CreateCertificateRequest returns none either.
func CreateCertificateRequest(key crypto.Signer, req *x509.CertificateRequest) ([]byte, error) {
	if !foreign(key) {
		return x509.CreateCertificateRequest(rand.Reader, req, key)
	}
	stand, err := standIn()
	if err != nil {
		return nil, err
	}
	r := *req
	r.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateCertificateRequest(rand.Reader, &r, stand)
	if err != nil {
		return nil, err
	}
	spki, err := marshalPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	// CertificationRequestInfo: version, subject, subjectPKInfo, [0]
	// attributes.
	der, err = resign(der, key, 0, nil, func(cri [][]byte) ([][]byte, error) {
		if len(cri) != 4 {
			return nil, errors.New("pki: Go made an unexpected CertificationRequestInfo")
		}
		cri[2] = spki
		return cri, nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkSignedBy(der, key.Public(), 0); err != nil {
		return nil, fmt.Errorf("pki: the CSR signed does not verify with its key: %w", err)
	}
	return der, nil
}

// CreateOCSPResponse is ocsp.CreateResponse, with a foreign issuer key
// too, and with producedAt as the template gives it: the library writes
// the current minute, which comes before a revocation made in it (RFC
// 6960, 4.2.2.1). The answer is signed by the issuer, or, if responder is
// not nil, by the delegated responder of that certificate (RFC 6960,
// 4.2.2.2), which the answer then carries. The library writes the answer
// with a stand-in key; producedAt is put in place and the answer signed
// with signer (see resign). An answer whose signature the signer's
// certificate does not verify is not returned: as x509.CreateCertificate
// does, this guards against a faulty signer (a token whose RSA signature
// is wrong gives its key away), and a key that is not the certificate's.
func CreateOCSPResponse(issuer, responder *x509.Certificate, tmpl ocsp.Response, signer crypto.Signer) ([]byte, error) {
	algID, err := signatureAlgorithmID(signer, tmpl.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1GeneralizedTime(tmpl.ProducedAt.UTC())
	producedAt, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	key, err := standIn()
	if err != nil {
		return nil, err
	}
	sigAlg := tmpl.SignatureAlgorithm
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	signedBy := issuer
	if responder != nil {
		signedBy, tmpl.Certificate = responder, responder
	}
	der, err := ocsp.CreateResponse(issuer, signedBy, tmpl, key)
	if err != nil {
		return nil, err
	}
	// The BasicOCSPResponse is a signed object (with the responder's
	// certificate after its signature, if one signs).
	status, responseType, basic, err := ocspParts(der)
	if err != nil {
		return nil, err
	}
	// ResponseData: [0] version (absent: v1), responderID, producedAt,
	// responses, [1] extensions.
	basicDER, err := resign(basic, signer, sigAlg, algID, func(data [][]byte) ([][]byte, error) {
		i := slices.IndexFunc(data, func(e []byte) bool { return e[0] == byte(cbasn1.GeneralizedTime) })
		if i < 0 {
			return nil, errors.New("pki: an OCSP response without producedAt")
		}
		data[i] = producedAt
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	b = cryptobyte.Builder{}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(status)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(responseType)
				b.AddASN1OctetString(basicDER)
			})
		})
	})
	der, err = b.Bytes()
	if err != nil {
		return nil, err
	}
	if err := checkSigned(basicDER, signedBy, sigAlg); err != nil {
		return nil, fmt.Errorf("pki: the OCSP response signed does not verify with its signer's certificate: %w", err)
	}
	return der, nil
}

// ocspParts splits an OCSPResponse { responseStatus, [0] {
// responseType, OCTET STRING { BasicOCSPResponse } } } into its status
// and type (as elements) and its BasicOCSPResponse.
func ocspParts(der []byte) (status, responseType, basic cryptobyte.String, err error) {
	in := cryptobyte.String(der)
	var resp, explicit, responseBytes cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() || !resp.ReadASN1Element(&status, cbasn1.ENUM) ||
		!resp.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !explicit.ReadASN1(&responseBytes, cbasn1.SEQUENCE) ||
		!responseBytes.ReadASN1Element(&responseType, cbasn1.OBJECT_IDENTIFIER) || !responseBytes.ReadASN1(&basic, cbasn1.OCTET_STRING) {
		return nil, nil, nil, errors.New("pki: an unexpected OCSP response")
	}
	return status, responseType, basic, nil
}

// OCSPResponder returns the certificate of the delegated responder that
// signed an OCSP response made by CreateOCSPResponse, as the response
// carries it, or nil if it carries none: the CA signed it. The signature
// is not checked.
func OCSPResponder(der []byte) (*x509.Certificate, error) {
	_, _, basic, err := ocspParts(der)
	if err != nil {
		return nil, err
	}
	// BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature,
	// [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
	var resp, certs, list, first cryptobyte.String
	var present bool
	if !basic.ReadASN1(&resp, cbasn1.SEQUENCE) || !basic.Empty() || !resp.SkipASN1(cbasn1.SEQUENCE) || !resp.SkipASN1(cbasn1.SEQUENCE) ||
		!resp.SkipASN1(cbasn1.BIT_STRING) || !resp.ReadOptionalASN1(&certs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) || !resp.Empty() {
		return nil, errors.New("pki: a malformed basic OCSP response")
	}
	if !present {
		return nil, nil
	}
	if !certs.ReadASN1(&list, cbasn1.SEQUENCE) || !certs.Empty() || !list.ReadASN1Element(&first, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: a malformed certificate in an OCSP response")
	}
	return x509.ParseCertificate(first)
}

// resign takes a signed object, SEQUENCE { tbs, AlgorithmIdentifier, BIT
// STRING, ... }, lets change rewrite the elements of its tbs SEQUENCE, and
// signs the new tbs with signer (see signBytes). The signature's
// AlgorithmIdentifier is algID, or if that is nil the object's. What
// follows the signature (an OCSP response's certificates) is kept.
func resign(der []byte, signer crypto.Signer, sigAlg x509.SignatureAlgorithm, algID []byte, change func(elements [][]byte) ([][]byte, error)) ([]byte, error) {
	in := cryptobyte.String(der)
	var outer, tbs, goAlgID, goSig cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&goAlgID, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&goSig, cbasn1.BIT_STRING) {
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
	elements, err := change(elements)
	if err != nil {
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
	if algID == nil {
		algID = goAlgID
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
		b.AddBytes(outer)
	})
	return b.Bytes()
}

// algorithmIdentifiers are the AlgorithmIdentifiers of the signature
// algorithms of keys Go knows that a CA signs with: RSA's with NULL
// parameters (RFC 4055), ECDSA's without (RFC 5758), as Go writes them.
var algorithmIdentifiers = map[x509.SignatureAlgorithm]pkix.AlgorithmIdentifier{
	x509.SHA256WithRSA:   {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue},
	x509.SHA384WithRSA:   {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, Parameters: asn1.NullRawValue},
	x509.SHA512WithRSA:   {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, Parameters: asn1.NullRawValue},
	x509.ECDSAWithSHA256: {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
	x509.ECDSAWithSHA384: {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}},
	x509.ECDSAWithSHA512: {Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}},
}

// signatureAlgorithmID is the DER AlgorithmIdentifier of signer's
// signatures with sigAlg, for an object that Go writes with a stand-in
// key: a foreign key has its own algorithm.
func signatureAlgorithmID(signer crypto.Signer, sigAlg x509.SignatureAlgorithm) ([]byte, error) {
	if foreign(signer) {
		return ownAlgorithmIdentifier(signer), nil
	}
	id, ok := algorithmIdentifiers[sigAlg]
	if !ok {
		return nil, fmt.Errorf("pki: signature algorithm %v is not one this server signs with", sigAlg)
	}
	return asn1.Marshal(id)
}

// signBytes signs tbs with signer and returns the AlgorithmIdentifier of
// the signature. An ML-DSA key signs tbs whole, an SM2 key with SM3; any
// other hashes it for sigAlg first, and algID, sigAlg's, names the
// signature.
func signBytes(tbs []byte, signer crypto.Signer, sigAlg x509.SignatureAlgorithm, algID []byte) ([]byte, []byte, error) {
	if ml, ok := signer.(sign.PrivateKey); ok {
		sig, err := signMLDSA(ml, tbs)
		return ownAlgorithmIdentifier(signer), sig, err
	}
	if isSM2(signer) {
		sig, err := signSM2(signer, tbs)
		return ownAlgorithmIdentifier(signer), sig, err
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
		return nil, nil, fmt.Errorf("pki: signature algorithm %v is not one this server signs with", sigAlg)
	}
	d := h.New()
	d.Write(tbs)
	sig, err := signer.Sign(rand.Reader, d.Sum(nil), h)
	return algID, sig, err
}

// checkForeignSignature checks a foreign key's signature over signed,
// made with the algorithm identifier algID.
func checkForeignSignature(pub crypto.PublicKey, algID, signed, sig []byte) error {
	switch k := pub.(type) {
	case sign.PublicKey:
		return checkMLDSASignature(k, algID, signed, sig)
	case *ecdsa.PublicKey:
		return checkSM2Signature(k, algID, signed, sig)
	}
	return fmt.Errorf("pki: a %T is not a foreign key", pub)
}

// SignatureParts returns the AlgorithmIdentifier and the signature of a
// signed object, SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }.
func SignatureParts(der []byte) (algID, sig []byte, err error) {
	in := cryptobyte.String(der)
	var outer, tbs, alg cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&alg, cbasn1.SEQUENCE) ||
		!outer.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 {
		return nil, nil, errors.New("not a signed object")
	}
	return alg, bits.Bytes, nil
}

// CheckSignatureFrom checks that parent signed c, as c.CheckSignatureFrom
// does, with foreign parents too.
func CheckSignatureFrom(c, parent *x509.Certificate) error {
	pub, err := ParsePublicKey(parent.RawSubjectPublicKeyInfo)
	if err != nil || !foreign(pub) {
		return c.CheckSignatureFrom(parent)
	}
	if parent.BasicConstraintsValid && !parent.IsCA || parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return x509.ConstraintViolationError{}
	}
	algID, sig, err := SignatureParts(c.Raw)
	if err != nil {
		return err
	}
	return checkForeignSignature(pub, algID, c.RawTBSCertificate, sig)
}

// Elements that Go's parser, and gmsm's, skip, which no encoder writes
// and other parsers (OpenSSL's) refuse: CheckCertificateElements and
// CheckCSRElements walk a signed object's structure, to its extensions,
// and refuse any element past those RFC 5280 and RFC 2986 define.

// CheckCertificateElements refuses a DER certificate with elements past
// its fields: after its signature, an algorithm's parameters, an
// attribute of its names, its validity's times, its key's bits, its
// extensions, or an extension's value. (An extension's value itself is
// the reader's of that extension.)
func CheckCertificateElements(der []byte) error {
	tbs, err := signedParts(der)
	if err != nil {
		return err
	}
	var alg, issuer, validity, subject, spki cryptobyte.String
	if !tbs.SkipOptionalASN1(explicit(0)) || !tbs.SkipASN1(cbasn1.INTEGER) || !tbs.ReadASN1Element(&alg, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) || !validity.SkipASN1(validityTag(validity)) || !validity.SkipASN1(validityTag(validity)) || !validity.Empty() ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return errors.New("its fields up to its public key are not as RFC 5280 has them, alone")
	}
	if !algorithmAlone(alg) {
		return errors.New("its signature algorithm is not an identifier and its parameters alone")
	}
	for _, name := range []struct {
		what string
		der  []byte
	}{{"issuer", issuer}, {"subject", subject}} {
		if err := CheckSubject(name.der); err != nil {
			return fmt.Errorf("its %s: %v", name.what, strings.Replace(err.Error(), "the subject", "it", 1))
		}
	}
	if err := checkKeyElements(spki); err != nil {
		return err
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific()) || !tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific()) {
		return errors.New("its unique identifiers are not as RFC 5280 has them")
	}
	if tbs.PeekASN1Tag(explicit(3)) {
		var wrapped, exts cryptobyte.String
		if !tbs.ReadASN1(&wrapped, explicit(3)) || !wrapped.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrapped.Empty() {
			return errors.New("its extensions are not a SEQUENCE alone")
		}
		for i := 1; !exts.Empty(); i++ {
			var ext cryptobyte.String
			if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.SkipASN1(cbasn1.OBJECT_IDENTIFIER) || !ext.SkipOptionalASN1(cbasn1.BOOLEAN) ||
				!ext.SkipASN1(cbasn1.OCTET_STRING) || !ext.Empty() {
				return fmt.Errorf("its extension %d is not an identifier, a criticality and a value alone", i)
			}
		}
	}
	if !tbs.Empty() {
		return errors.New("it has elements after its extensions")
	}
	return nil
}

// CheckCSRElements refuses a DER CSR with elements past its fields: after
// its signature, an algorithm's parameters, its key's bits, an
// attribute's values, or its attributes. (Its subject is checked as the
// certificate's, CheckSubject.)
func CheckCSRElements(der []byte) error {
	info, err := signedParts(der)
	if err != nil {
		return err
	}
	var spki cryptobyte.String
	if !info.SkipASN1(cbasn1.INTEGER) || !info.SkipASN1(cbasn1.SEQUENCE) || !info.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return errors.New("its fields up to its public key are not as RFC 2986 has them, alone")
	}
	if err := checkKeyElements(spki); err != nil {
		return err
	}
	var attrs cryptobyte.String
	var present bool
	if !info.ReadOptionalASN1(&attrs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) || !info.Empty() {
		return errors.New("it has elements after its attributes")
	}
	for i := 1; !attrs.Empty(); i++ {
		var attr cryptobyte.String
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.SkipASN1(cbasn1.OBJECT_IDENTIFIER) || !attr.SkipASN1(cbasn1.SET) || !attr.Empty() {
			return fmt.Errorf("its attribute %d is not an identifier and a SET of values alone", i)
		}
	}
	return nil
}

// signedParts returns the contents of what der signs, if der is it, its
// signature algorithm and its signature alone.
func signedParts(der []byte) (cryptobyte.String, error) {
	signed := cryptobyte.String(der)
	var parts, tbs, alg cryptobyte.String
	if !signed.ReadASN1(&parts, cbasn1.SEQUENCE) || !signed.Empty() || !parts.ReadASN1(&tbs, cbasn1.SEQUENCE) || !parts.ReadASN1Element(&alg, cbasn1.SEQUENCE) ||
		!parts.SkipASN1(cbasn1.BIT_STRING) || !parts.Empty() {
		return nil, errors.New("it has elements after its signature")
	}
	if !algorithmAlone(alg) {
		return nil, errors.New("its signature's algorithm is not an identifier and its parameters alone")
	}
	return tbs, nil
}

// checkKeyElements refuses a SubjectPublicKeyInfo that holds more than its
// algorithm identifier and its bits.
func checkKeyElements(spki cryptobyte.String) error {
	var info, alg cryptobyte.String
	if !spki.ReadASN1(&info, cbasn1.SEQUENCE) || !spki.Empty() || !info.ReadASN1Element(&alg, cbasn1.SEQUENCE) || !algorithmAlone(alg) ||
		!info.SkipASN1(cbasn1.BIT_STRING) || !info.Empty() {
		return errors.New("its public key (SubjectPublicKeyInfo) is not an algorithm identifier (with its parameters alone) and a BIT STRING alone")
	}
	return nil
}

// algorithmAlone reports whether alg, an AlgorithmIdentifier, is an
// identifier and at most one element of parameters.
func algorithmAlone(alg cryptobyte.String) bool {
	var body cryptobyte.String
	var tag cbasn1.Tag
	if !alg.ReadASN1(&body, cbasn1.SEQUENCE) || !body.SkipASN1(cbasn1.OBJECT_IDENTIFIER) {
		return false
	}
	if !body.Empty() && !body.ReadAnyASN1(&cryptobyte.String{}, &tag) {
		return false
	}
	return body.Empty()
}

// validityTag is the tag of the time validity starts with: UTCTime or
// GeneralizedTime.
func validityTag(validity cryptobyte.String) cbasn1.Tag {
	if validity.PeekASN1Tag(cbasn1.GeneralizedTime) {
		return cbasn1.GeneralizedTime
	}
	return cbasn1.UTCTime
}

// ParseCSR parses a DER certificate signing request and checks its
// signature. A foreign key comes out in PublicKey: an ML-DSA key as its
// circl public key, an SM2 key as an *ecdsa.PublicKey on the SM2 curve.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		sm, smErr := smx509.ParseCertificateRequest(der)
		switch {
		case smErr == nil:
			csr = sm.ToX509()
		case sm2Requested(der):
			// Go's error is of the curve, unknown to Go.
			return nil, fmt.Errorf("%v (read as an SM2 key's: %v)", err, smErr)
		default:
			return nil, err
		}
	}
	if err := CheckCSRElements(csr.Raw); err != nil {
		return nil, err
	}
	// Go parsed the key unless it is ML-DSA: issuance, which parses every
	// CSR, reads the key once.
	pub := csr.PublicKey
	if pub == nil {
		if pub, err = ParsePublicKey(csr.RawSubjectPublicKeyInfo); err != nil {
			return nil, fmt.Errorf("its public key (SubjectPublicKeyInfo) is not one this server reads: %v", err)
		}
	}
	if !foreign(pub) {
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("its signature does not verify: %v", err)
		}
		return csr, nil
	}
	algID, sig, err := SignatureParts(csr.Raw)
	if err != nil {
		return nil, err
	}
	if err := checkForeignSignature(pub, algID, csr.RawTBSCertificateRequest, sig); err != nil {
		return nil, fmt.Errorf("its signature does not verify: %v", err)
	}
	csr.PublicKey = pub
	return csr, nil
}

// ForeignSignature reports whether c is signed with a foreign key, whose
// signature Go's crypto/x509 cannot check (CheckSignatureFrom can).
func ForeignSignature(c *x509.Certificate) bool {
	algID, _, err := SignatureParts(c.Raw)
	if err != nil {
		return false
	}
	if string(algID) == string(sm2AlgorithmIdentifier()) {
		return true
	}
	for _, s := range mldsaSchemes {
		if string(algID) == string(algorithmIdentifier(s)) {
			return true
		}
	}
	return false
}
