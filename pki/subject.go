package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/openpca/openpca"
)

// Attribute types of the ASN1Subject members (RFC 5280, X.520).
var (
	oidCountry             = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization        = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationalUnit  = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidDNQualifier         = asn1.ObjectIdentifier{2, 5, 4, 46}
	oidState               = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidCommonName          = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber        = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidLocality            = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidTitle               = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidSurname             = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName           = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidInitials            = asn1.ObjectIdentifier{2, 5, 4, 43}
	oidPseudonym           = asn1.ObjectIdentifier{2, 5, 4, 65}
	oidGenerationQualifier = asn1.ObjectIdentifier{2, 5, 4, 44}
	oidEmailAddress        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDomainComponent     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// subjectAttributes lists the standard members of an ASN1Subject in the
// order they are encoded, which is the order of the API's ASN1Subject (AWS
// encodes subjects this way), and whether the attribute is a
// PrintableString; the others are DirectoryStrings, encoded as UTF8String.
func subjectAttributes(s *openpca.ASN1Subject) []struct {
	oid       asn1.ObjectIdentifier
	value     string
	printable bool
} {
	return []struct {
		oid       asn1.ObjectIdentifier
		value     string
		printable bool
	}{
		{oidCountry, s.Country, true},
		{oidOrganization, s.Organization, false},
		{oidOrganizationalUnit, s.OrganizationalUnit, false},
		{oidDNQualifier, s.DistinguishedNameQualifier, true},
		{oidState, s.State, false},
		{oidCommonName, s.CommonName, false},
		{oidSerialNumber, s.SerialNumber, true},
		{oidLocality, s.Locality, false},
		{oidTitle, s.Title, false},
		{oidSurname, s.Surname, false},
		{oidGivenName, s.GivenName, false},
		{oidInitials, s.Initials, false},
		{oidPseudonym, s.Pseudonym, false},
		{oidGenerationQualifier, s.GenerationQualifier, false},
	}
}

// MarshalSubject encodes an ASN1Subject as a DER distinguished name, one
// attribute per relative distinguished name. CustomAttributes, when given,
// replace the standard attributes entirely and keep their order.
func MarshalSubject(s *openpca.ASN1Subject) ([]byte, error) {
	rdns, err := subjectRDNs(s)
	if err != nil {
		return nil, err
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, err
	}
	return der, CheckSubject(der)
}

// errNoAttributes refuses a subject, or a directory name, that names
// nothing.
var errNoAttributes = errors.New("the subject has no attributes; set at least one, such as CommonName")

func subjectRDNs(s *openpca.ASN1Subject) (pkix.RDNSequence, error) {
	if s == nil {
		return nil, fmt.Errorf("the subject is empty")
	}
	var rdns pkix.RDNSequence
	for _, a := range subjectAttributes(s) {
		if a.value == "" {
			continue
		}
		v := asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(a.value)}
		if a.printable {
			if !isPrintable(a.value) {
				return nil, fmt.Errorf("subject attribute %s must be a PrintableString", a.oid)
			}
			v.Tag = asn1.TagPrintableString
		}
		rdns = append(rdns, []pkix.AttributeTypeAndValue{{Type: a.oid, Value: v}})
	}
	if len(s.CustomAttributes) > 0 {
		if len(rdns) > 0 {
			return nil, fmt.Errorf("the subject's CustomAttributes cannot be combined with standard attributes")
		}
		for _, ca := range s.CustomAttributes {
			oid, err := ParseOID(ca.ObjectIdentifier)
			if err != nil {
				return nil, fmt.Errorf("custom attribute: %w", err)
			}
			v := asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(ca.Value)}
			if oid.Equal(oidEmailAddress) || oid.Equal(oidDomainComponent) {
				if !isIA5(ca.Value) {
					return nil, fmt.Errorf("custom attribute %s must be an IA5String", oid)
				}
				v.Tag = asn1.TagIA5String
			}
			if oid.Equal(oidCountry) || oid.Equal(oidSerialNumber) || oid.Equal(oidDNQualifier) {
				if !isPrintable(ca.Value) {
					return nil, fmt.Errorf("custom attribute %s must be a PrintableString", oid)
				}
				v.Tag = asn1.TagPrintableString
			}
			rdns = append(rdns, []pkix.AttributeTypeAndValue{{Type: oid, Value: v}})
		}
	}
	if len(rdns) == 0 {
		return nil, errNoAttributes
	}
	return rdns, nil
}

// ParseOID parses a dotted object identifier such as 1.3.6.1.4.1, each of
// whose numbers must be below 2^31: Go's x509 reads no larger one in a
// certificate's extension identifiers, its extended key usages or its
// subject's attribute types, so a certificate with one would not read
// back. Where Go reads any (certificate policies, alternative names of
// other kinds and registered ids), LongOID takes any.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not an object identifier", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 31)
		if errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%q has a number above 2147483647: this server takes such an object identifier only as a certificate policy (CertPolicyId), an OtherName's TypeId or a RegisteredId", s)
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not an object identifier", s)
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("%q is not an object identifier", s)
	}
	return oid, nil
}

// LongOID is ParseOID of any numbers (2.25.<a UUID's 128 bits>, say), as
// its DER encoding, tag and length included.
func LongOID(s string) ([]byte, error) {
	oid, err := x509.ParseOID(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an object identifier", s)
	}
	content, err := oid.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(asn1.RawValue{Tag: asn1.TagOID, Bytes: content})
}

// isPrintable reports whether s fits an ASN.1 PrintableString.
func isPrintable(s string) bool {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune(" '()+,-./:=?", r):
		default:
			return false
		}
	}
	return true
}
