package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// ErrOCSPRequestMany is ParseOCSPRequest's error for a request about more
// than one certificate. RFC 5019's profile, which AWS's responders follow,
// takes one ("MUST include only one Request"), and RFC 6960 wants an
// answer about each: an answer about the first alone, as x/crypto/ocsp
// reads such a request, tells the client nothing of the others.
var ErrOCSPRequestMany = errors.New("pki: an OCSP request about more than one certificate")

// ParseOCSPRequest reads the certificate an OCSP request asks about (RFC
// 6960, 4.1.1); ErrOCSPRequestMany if it asks about more than one. What
// follows the requestList (its extensions, the signature) is skipped, as is the requestor's name: the server answers
// anyone, and checks no request's signature. golang.org/x/crypto/ocsp's
// ParseRequest refuses a signed request, and reads requestorName as a
// Name where RFC 6960 has a GeneralName, so that OpenSSL's `ocsp -signer`
// requests failed. Like it, this reads no further in a structure than
// what it needs.
func ParseOCSPRequest(der []byte) (*ocsp.Request, error) {
	in := cryptobyte.String(der)
	var req, tbs, list, single, id cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() ||
		!req.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(explicit(0)) || // version
		!tbs.SkipOptionalASN1(explicit(1)) || // requestorName
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.ReadASN1(&single, cbasn1.SEQUENCE) ||
		!single.ReadASN1(&id, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: not an OCSP request")
	}
	certID, err := readCertID(id)
	if err != nil {
		return nil, fmt.Errorf("pki: an OCSP request with %w", err)
	}
	if !list.Empty() {
		return nil, ErrOCSPRequestMany
	}
	return certID, nil
}

// OCSPAnswerCertID reads the certificate an OCSP answer is about, of the
// first of its responses (RFC 6960, 4.2.1), from its tbsResponseData
// (ocsp.Response's TBSResponseData): x/crypto/ocsp reads its serial and
// hash algorithm, but not the hashes that name its issuer.
func OCSPAnswerCertID(tbsResponseData []byte) (*ocsp.Request, error) {
	in := cryptobyte.String(tbsResponseData)
	var data, responderID, list, single, id cryptobyte.String
	var tag cbasn1.Tag
	if !in.ReadASN1(&data, cbasn1.SEQUENCE) || !in.Empty() ||
		!data.SkipOptionalASN1(explicit(0)) || // version
		!data.ReadAnyASN1(&responderID, &tag) || // by name [1] or by key [2]
		!data.SkipASN1(cbasn1.GeneralizedTime) || // producedAt
		!data.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.ReadASN1(&single, cbasn1.SEQUENCE) ||
		!single.ReadASN1(&id, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: not an OCSP answer's data")
	}
	certID, err := readCertID(id)
	if err != nil {
		return nil, fmt.Errorf("pki: an OCSP answer with %w", err)
	}
	return certID, nil
}

// explicit is the tag of an EXPLICIT [n] field.
func explicit(n int) cbasn1.Tag { return cbasn1.Tag(n).Constructed().ContextSpecific() }

// readCertID reads the content of a CertID: its hash algorithm, the
// hashes of its issuer's name and key, and its serial.
func readCertID(id cryptobyte.String) (*ocsp.Request, error) {
	var alg cryptobyte.String
	var nameHash, keyHash []byte
	var oid asn1.ObjectIdentifier
	serial := new(big.Int)
	if !id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
		!id.ReadASN1Bytes(&nameHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Bytes(&keyHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Integer(serial) {
		return nil, errors.New("a malformed CertID")
	}
	var hash crypto.Hash // of those x/crypto/ocsp knows
	switch oid.String() {
	case "1.3.14.3.2.26":
		hash = crypto.SHA1
	case "2.16.840.1.101.3.4.2.1":
		hash = crypto.SHA256
	case "2.16.840.1.101.3.4.2.2":
		hash = crypto.SHA384
	case "2.16.840.1.101.3.4.2.3":
		hash = crypto.SHA512
	}
	if hash == 0 {
		return nil, errors.New("an unknown hash algorithm")
	}
	return &ocsp.Request{HashAlgorithm: hash, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: serial}, nil
}

// OCSPIssuerHashes returns the hashes, by h, that name issuer in an OCSP
// CertID: of its subject, and of its key's subjectPublicKey bits.
func OCSPIssuerHashes(issuer *x509.Certificate, h crypto.Hash) (name, key []byte, err error) {
	if !h.Available() {
		return nil, nil, fmt.Errorf("pki: the hash %v is not available", h)
	}
	bits, err := publicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, nil, err
	}
	sum := func(b []byte) []byte {
		d := h.New()
		d.Write(b)
		return d.Sum(nil)
	}
	return sum(issuer.RawSubject), sum(bits), nil
}

// OCSPStatusName is the name of an OCSP status (ocsp.Good and the
// others), as the key-use log writes it: good, revoked or unknown.
func OCSPStatusName(status int) string {
	switch status {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	case ocsp.Unknown:
		return "unknown"
	}
	return ""
}
