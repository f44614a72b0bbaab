package pki

import (
	"crypto"
	"encoding/asn1"
	"errors"
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
	var req, tbs, list, single, id, alg cryptobyte.String
	var nameHash, keyHash []byte
	var oid asn1.ObjectIdentifier
	serial := new(big.Int)
	explicit := func(n int) cbasn1.Tag { return cbasn1.Tag(n).Constructed().ContextSpecific() }
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() ||
		!req.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(explicit(0)) || // version
		!tbs.SkipOptionalASN1(explicit(1)) || // requestorName
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.ReadASN1(&single, cbasn1.SEQUENCE) ||
		!single.ReadASN1(&id, cbasn1.SEQUENCE) ||
		!id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
		!id.ReadASN1Bytes(&nameHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Bytes(&keyHash, cbasn1.OCTET_STRING) ||
		!id.ReadASN1Integer(serial) {
		return nil, errors.New("pki: not an OCSP request")
	}
	if !list.Empty() {
		return nil, ErrOCSPRequestMany
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
		return nil, errors.New("pki: an OCSP request with an unknown hash algorithm")
	}
	return &ocsp.Request{HashAlgorithm: hash, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: serial}, nil
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
