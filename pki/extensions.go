package pki

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
)

// Extension identifiers (RFC 5280).
var (
	OIDBasicConstraints       = asn1.ObjectIdentifier{2, 5, 29, 19}
	OIDKeyUsage               = oidExtKeyUsage
	OIDExtKeyUsage            = asn1.ObjectIdentifier{2, 5, 29, 37}
	OIDSubjectAltName         = asn1.ObjectIdentifier{2, 5, 29, 17}
	OIDCertificatePolicies    = asn1.ObjectIdentifier{2, 5, 29, 32}
	OIDSubjectKeyIdentifier   = asn1.ObjectIdentifier{2, 5, 29, 14}
	OIDAuthorityKeyIdentifier = asn1.ObjectIdentifier{2, 5, 29, 35}
	OIDNameConstraints        = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidCPS                    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 1}
)

// SupersededExtensions are the forms of X.509's 1993 drafts of extensions
// that templates set or that a CA checks: the authority key identifier
// (2.5.29.1), certificate policies (2.5.29.3), subject and issuer
// alternative names (2.5.29.7, 2.5.29.8) and basic constraints
// (2.5.29.10). Go and OpenSSL ignore them; Windows still knows them, and
// might read a CA flag or a name there that no check here saw.
var SupersededExtensions = []asn1.ObjectIdentifier{{2, 5, 29, 1}, {2, 5, 29, 3}, {2, 5, 29, 7}, {2, 5, 29, 8}, {2, 5, 29, 10}}

// ExtKeyUsageOIDs maps the API's extended key usage types to their OIDs.
var ExtKeyUsageOIDs = map[openpca.ExtendedKeyUsageType]asn1.ObjectIdentifier{
	openpca.ExtendedKeyUsageTypeServerAuth:              {1, 3, 6, 1, 5, 5, 7, 3, 1},
	openpca.ExtendedKeyUsageTypeClientAuth:              {1, 3, 6, 1, 5, 5, 7, 3, 2},
	openpca.ExtendedKeyUsageTypeCodeSigning:             {1, 3, 6, 1, 5, 5, 7, 3, 3},
	openpca.ExtendedKeyUsageTypeEmailProtection:         {1, 3, 6, 1, 5, 5, 7, 3, 4},
	openpca.ExtendedKeyUsageTypeTimeStamping:            {1, 3, 6, 1, 5, 5, 7, 3, 8},
	openpca.ExtendedKeyUsageTypeOcspSigning:             {1, 3, 6, 1, 5, 5, 7, 3, 9},
	openpca.ExtendedKeyUsageTypeSmartCardLogin:          {1, 3, 6, 1, 4, 1, 311, 20, 2, 2},
	openpca.ExtendedKeyUsageTypeDocumentSigning:         {1, 3, 6, 1, 5, 5, 7, 3, 36},
	openpca.ExtendedKeyUsageTypeCertificateTransparency: {1, 3, 6, 1, 4, 1, 11129, 2, 4, 4},
}

// BasicConstraintsExtension encodes basic constraints; pathLen < 0 sets no
// path length.
func BasicConstraintsExtension(ca bool, pathLen int, critical bool) pkix.Extension {
	type basicConstraints struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	return pkix.Extension{Id: OIDBasicConstraints, Critical: critical, Value: mustMarshal(basicConstraints{ca, pathLen})}
}

// KeyUsageBitsExtension encodes an x509.KeyUsage as a critical extension.
func KeyUsageBitsExtension(ku x509.KeyUsage) (pkix.Extension, error) {
	return KeyUsageExtension(&openpca.KeyUsage{
		DigitalSignature: ku&x509.KeyUsageDigitalSignature != 0, NonRepudiation: ku&x509.KeyUsageContentCommitment != 0,
		KeyEncipherment: ku&x509.KeyUsageKeyEncipherment != 0, DataEncipherment: ku&x509.KeyUsageDataEncipherment != 0,
		KeyAgreement: ku&x509.KeyUsageKeyAgreement != 0, KeyCertSign: ku&x509.KeyUsageCertSign != 0, CRLSign: ku&x509.KeyUsageCRLSign != 0,
		EncipherOnly: ku&x509.KeyUsageEncipherOnly != 0, DecipherOnly: ku&x509.KeyUsageDecipherOnly != 0,
	})
}

// ExtKeyUsageExtension encodes extended key usages.
func ExtKeyUsageExtension(oids []asn1.ObjectIdentifier, critical bool) pkix.Extension {
	return pkix.Extension{Id: OIDExtKeyUsage, Critical: critical, Value: mustMarshal(oids)}
}

// APIExtKeyUsages turns the API's extended key usage list into OIDs, each
// once: a purpose named twice (SMART_CARD_LOGIN and its OID, say) was
// listed twice in the certificate.
func APIExtKeyUsages(list []openpca.ExtendedKeyUsage) ([]asn1.ObjectIdentifier, error) {
	var oids []asn1.ObjectIdentifier
	add := func(oid asn1.ObjectIdentifier) {
		if !slices.ContainsFunc(oids, oid.Equal) {
			oids = append(oids, oid)
		}
	}
	for i, e := range list {
		switch {
		case (e.ExtendedKeyUsageType == "") == (e.ExtendedKeyUsageObjectIdentifier == ""):
			return nil, fmt.Errorf("ExtendedKeyUsage %d must set exactly one of ExtendedKeyUsageType and ExtendedKeyUsageObjectIdentifier", i+1)
		case e.ExtendedKeyUsageType != "":
			oid, ok := ExtKeyUsageOIDs[e.ExtendedKeyUsageType]
			if !ok {
				return nil, fmt.Errorf("ExtendedKeyUsage %d: unknown type %s", i+1, e.ExtendedKeyUsageType)
			}
			add(oid)
		default:
			oid, err := ParseOID(e.ExtendedKeyUsageObjectIdentifier)
			if err != nil {
				return nil, fmt.Errorf("ExtendedKeyUsage %d: %w", i+1, err)
			}
			add(oid)
		}
	}
	return oids, nil
}

// SubjectAltNameExtension encodes general names as the subject alternative
// name extension. It must be critical when the subject is empty.
func SubjectAltNameExtension(names []openpca.GeneralName, critical bool) (pkix.Extension, error) {
	raws := make([]asn1.RawValue, len(names))
	for i, n := range names {
		raw, err := MarshalGeneralName(n)
		if err != nil {
			return pkix.Extension{}, fmt.Errorf("subject alternative name %d: %w", i+1, err)
		}
		raws[i] = raw
	}
	return pkix.Extension{Id: OIDSubjectAltName, Critical: critical, Value: mustMarshal(raws)}, nil
}

// CertificatePoliciesExtension encodes policy information terms.
func CertificatePoliciesExtension(policies []openpca.PolicyInformation) (pkix.Extension, error) {
	type qualifierInfo struct {
		ID        asn1.ObjectIdentifier
		Qualifier string `asn1:"ia5"`
	}
	type policyInformation struct {
		ID         asn1.RawValue
		Qualifiers []qualifierInfo `asn1:"optional,omitempty"`
	}
	var out []policyInformation
	for i, p := range policies {
		oid, err := LongOID(p.CertPolicyId)
		if err != nil {
			return pkix.Extension{}, fmt.Errorf("certificate policy %d: %w", i+1, err)
		}
		// A policy appears once (RFC 5280, 4.2.1.4), which Go's x509
		// checks reading the certificate: after it was signed.
		for j, q := range out {
			if bytes.Equal(q.ID.FullBytes, oid) {
				return pkix.Extension{}, fmt.Errorf("certificate policy %d: %s is policy %d's; a certificate names a policy once", i+1, p.CertPolicyId, j+1)
			}
		}
		pi := policyInformation{ID: asn1.RawValue{FullBytes: oid}}
		for _, q := range p.PolicyQualifiers {
			if q.Qualifier == nil || !isIA5(q.Qualifier.CpsUri) {
				return pkix.Extension{}, fmt.Errorf("certificate policy %d: a CPS qualifier needs an ASCII CpsUri", i+1)
			}
			pi.Qualifiers = append(pi.Qualifiers, qualifierInfo{oidCPS, q.Qualifier.CpsUri})
		}
		out = append(out, pi)
	}
	v, err := asn1.Marshal(out)
	return pkix.Extension{Id: OIDCertificatePolicies, Value: v}, err
}

// SubjectKeyID derives a subject key identifier from a public key: the
// SHA-1 hash of its subjectPublicKey bits (RFC 5280, 4.2.1.2, method 1).
func SubjectKeyID(pub any) ([]byte, error) {
	der, err := marshalPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return keyID(der)
}

// keyID is SubjectKeyID of a DER SubjectPublicKeyInfo.
func keyID(spki []byte) ([]byte, error) {
	bits, err := publicKeyBits(spki)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(bits)
	return h[:], nil
}

// CAKeyID is SubjectKeyID of the key of a CA's CSR, or failing one, of
// its certificate, read from their DER whatever the key's algorithm.
func CAKeyID(csr, cert []byte) ([]byte, error) {
	in := cryptobyte.String(csr)
	var signed, info, spki cryptobyte.String
	ok := in.ReadASN1(&signed, cbasn1.SEQUENCE) && signed.ReadASN1(&info, cbasn1.SEQUENCE) &&
		info.SkipASN1(cbasn1.INTEGER) && info.SkipASN1(cbasn1.SEQUENCE) // version, subject
	if len(csr) == 0 {
		in = cryptobyte.String(cert)
		ok = in.ReadASN1(&signed, cbasn1.SEQUENCE) && signed.ReadASN1(&info, cbasn1.SEQUENCE) &&
			info.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) // version
		var skipped cryptobyte.String
		var tag cbasn1.Tag
		for range 5 { // serial, signature, issuer, validity, subject
			ok = ok && info.ReadAnyASN1(&skipped, &tag)
		}
	}
	if !ok || !info.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: no public key in the CA's CSR or certificate")
	}
	return keyID(spki)
}

// KeyMadeID reports whether c's subject key identifier is made from its
// key alone: the SHA-1 hash of the key's bits (SubjectKeyID: OpenSSL, AWS,
// this server), or the leftmost 160 bits of their SHA-256 hash (RFC 7093:
// Go since 1.25). Another certificate of the key, a renewal, makes it
// again.
func KeyMadeID(c *x509.Certificate) bool {
	bits, err := publicKeyBits(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	sha1Sum, sha256Sum := sha1.Sum(bits), sha256.Sum256(bits)
	return bytes.Equal(c.SubjectKeyId, sha1Sum[:]) || bytes.Equal(c.SubjectKeyId, sha256Sum[:20])
}

// publicKeyBits returns the subjectPublicKey bits of a DER
// SubjectPublicKeyInfo.
func publicKeyBits(spkiDER []byte) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spkiDER, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.Bytes, nil
}
