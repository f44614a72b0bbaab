package pki

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/openpca/openpca"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// GeneralName tags (RFC 5280, 4.2.1.6).
const (
	tagOtherName     = 0
	tagRFC822Name    = 1
	tagDNSName       = 2
	tagDirectoryName = 4
	tagEDIPartyName  = 5
	tagURI           = 6
	tagIPAddress     = 7
	tagRegisteredID  = 8
)

// MarshalGeneralName encodes a GeneralName, of which exactly one member
// must be set.
func MarshalGeneralName(g openpca.GeneralName) (asn1.RawValue, error) {
	var out []asn1.RawValue
	ctx := func(tag int, compound bool, b []byte) {
		out = append(out, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: b})
	}
	if g.OtherName != nil {
		oid, err := LongOID(g.OtherName.TypeId)
		if err != nil {
			return asn1.RawValue{}, fmt.Errorf("OtherName.TypeId: %w", err)
		}
		value, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
			Bytes: mustMarshal(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(g.OtherName.Value)})})
		if err != nil {
			return asn1.RawValue{}, err
		}
		ctx(tagOtherName, true, append(oid, value...))
	}
	if g.Rfc822Name != "" {
		if err := CheckName(g.Rfc822Name); err != nil {
			return asn1.RawValue{}, fmt.Errorf("Rfc822Name: %w", err)
		}
		ctx(tagRFC822Name, false, []byte(g.Rfc822Name))
	}
	if g.DnsName != "" {
		if err := CheckName(g.DnsName); err != nil {
			return asn1.RawValue{}, fmt.Errorf("DnsName: %w", err)
		}
		ctx(tagDNSName, false, []byte(g.DnsName))
	}
	if g.DirectoryName != nil {
		name, err := MarshalSubject(g.DirectoryName)
		// Empty, or with a control character: an entry AWS refuses as it
		// does such a directory name of a CSR (CheckAltNames).
		if errors.Is(err, errNoAttributes) || errors.Is(err, errControl) {
			err = &EntryError{err.Error()}
		}
		if err != nil {
			return asn1.RawValue{}, fmt.Errorf("DirectoryName: %w", err)
		}
		ctx(tagDirectoryName, true, name)
	}
	if g.EdiPartyName != nil {
		var b []byte
		if g.EdiPartyName.NameAssigner != "" {
			if err := checkEntry(g.EdiPartyName.NameAssigner); err != nil {
				return asn1.RawValue{}, fmt.Errorf("EdiPartyName.NameAssigner: %w", err)
			}
			b = append(b, explicitUTF8(0, g.EdiPartyName.NameAssigner)...)
		}
		if err := checkEntry(g.EdiPartyName.PartyName); err != nil {
			return asn1.RawValue{}, fmt.Errorf("EdiPartyName.PartyName: %w", err)
		}
		b = append(b, explicitUTF8(1, g.EdiPartyName.PartyName)...)
		ctx(tagEDIPartyName, true, b)
	}
	if g.UniformResourceIdentifier != "" {
		if err := checkURI(g.UniformResourceIdentifier); err != nil {
			return asn1.RawValue{}, fmt.Errorf("UniformResourceIdentifier: %w", err)
		}
		ctx(tagURI, false, []byte(g.UniformResourceIdentifier))
	}
	if g.IpAddress != "" {
		ip, err := netip.ParseAddr(g.IpAddress)
		if err != nil || ip.Zone() != "" {
			return asn1.RawValue{}, fmt.Errorf("IpAddress %q is not an IPv4 or IPv6 address", g.IpAddress)
		}
		ctx(tagIPAddress, false, ip.AsSlice())
	}
	if g.RegisteredId != "" {
		oid, err := LongOID(g.RegisteredId)
		if err != nil {
			return asn1.RawValue{}, fmt.Errorf("RegisteredId: %w", err)
		}
		var raw asn1.RawValue
		if _, err := asn1.Unmarshal(oid, &raw); err != nil {
			return asn1.RawValue{}, err
		}
		ctx(tagRegisteredID, false, raw.Bytes)
	}
	if len(out) != 1 {
		return asn1.RawValue{}, fmt.Errorf("a GeneralName must have exactly one member set, not %d", len(out))
	}
	return out[0], nil
}

func explicitUTF8(tag int, s string) []byte {
	return mustMarshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true,
		Bytes: mustMarshal(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)})})
}

// mustMarshal encodes values that cannot fail to encode: object identifiers
// already parsed and raw values.
func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic("pki: " + err.Error())
	}
	return b
}

// CheckName checks a name a certificate gives as an IA5String (a DNS
// name, an email address, a URI): ASCII, not blank, and without a control
// character, with which a name can read as another to some readers
// ("bank.example\x00.evil.example").
func CheckName(s string) error {
	if !isIA5(s) {
		return fmt.Errorf("%q must be ASCII", s)
	}
	return checkEntry(s)
}

// checkEntry refuses a name that is blank (of spaces and characters that
// show nothing, such as U+200B) or has a control character.
func checkEntry(s string) error {
	if strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }) == "" {
		return &EntryError{fmt.Sprintf("%q is blank", s)}
	}
	if strings.ContainsFunc(s, isControl) {
		return &EntryError{fmt.Sprintf("%q has a control character", s)}
	}
	return nil
}

// checkURI checks a URI name (CheckName), which RFC 5280 (4.2.1.6) wants
// absolute: with a scheme, and something after it. "not a uri" was
// issued as it came.
func checkURI(s string) error {
	if err := CheckName(s); err != nil {
		return err
	}
	if u, err := url.Parse(s); err != nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" && u.Path == "" {
		return &EntryError{fmt.Sprintf("%q is not an absolute URI, with a scheme (RFC 5280, 4.2.1.6)", s)}
	}
	return nil
}

// EntryError refuses a subject alternative name entry that is empty,
// blank or has a control character, which AWS Private CA answers with a
// MalformedCSRException whether the CSR or the API passthrough gives it
// ("Certificate request validation" in its user guide).
type EntryError struct{ msg string }

func (e *EntryError) Error() string { return e.msg }

func isIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var (
	oidExtKeyUsage                 = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtSubjectInformationAccess = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 11}
)

// Access methods for AccessMethodType (RFC 5280, RFC 6487, RFC 8182).
var accessMethods = map[openpca.AccessMethodType]asn1.ObjectIdentifier{
	openpca.AccessMethodTypeCaRepository:        {1, 3, 6, 1, 5, 5, 7, 48, 5},
	openpca.AccessMethodTypeResourcePkiManifest: {1, 3, 6, 1, 5, 5, 7, 48, 10},
	openpca.AccessMethodTypeResourcePkiNotify:   {1, 3, 6, 1, 5, 5, 7, 48, 13},
}

// KeyUsageExtension encodes a KeyUsage as a critical X.509 extension.
func KeyUsageExtension(ku *openpca.KeyUsage) (pkix.Extension, error) {
	bits := []bool{ku.DigitalSignature, ku.NonRepudiation, ku.KeyEncipherment, ku.DataEncipherment,
		ku.KeyAgreement, ku.KeyCertSign, ku.CRLSign, ku.EncipherOnly, ku.DecipherOnly}
	n := 0 // bits up to the last one set: DER drops trailing zero bits
	for i, set := range bits {
		if set {
			n = i + 1
		}
	}
	if n == 0 {
		return pkix.Extension{}, fmt.Errorf("KeyUsage sets no usage")
	}
	bs := asn1.BitString{Bytes: make([]byte, (n+7)/8), BitLength: n}
	for i := 0; i < n; i++ {
		if bits[i] {
			bs.Bytes[i/8] |= 0x80 >> (i % 8)
		}
	}
	v, err := asn1.Marshal(bs)
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}, err
}

// mldsaForbiddenUsages are the key usages, by bit, that RFC 9881 (section
// 5) forbids in a certificate of an ML-DSA key, which only signs.
var mldsaForbiddenUsages = map[int]string{2: "KeyEncipherment", 3: "DataEncipherment", 4: "KeyAgreement", 7: "EncipherOnly", 8: "DecipherOnly"}

// CheckKeyUsage refuses, in ext, the key usage extension of a certificate
// or CSR of a key of alg that sets none of the nine usages RFC 5280
// defines (it requires one at least: a usage of bits it does not name, or
// of none, tells relying parties nothing the key may do), or a usage the
// key cannot have: for an ML-DSA key, one RFC 9881 forbids, which relying
// parties that follow it refuse. (RFC 9881 also requires one of the
// signing usages, which the rest are: with one usage set and none
// forbidden, it holds.) For EC keys, which RFC 8813 forbids key and data
// encipherment, AWS's templates that pass usages through take them all
// the same, and so does this server. AWS refuses a key usage only if it
// cannot parse it: one of no usage is refused here, as RFC 5280 says.
func CheckKeyUsage(alg openpca.KeyAlgorithm, ext pkix.Extension) error {
	bits, err := keyUsageBits(ext.Value)
	if err != nil {
		return err
	}
	some := false
	for i := range min(bits.BitLength, keyUsages) {
		if bits.At(i) == 0 {
			continue
		}
		some = true
		if name, ok := mldsaForbiddenUsages[i]; ok && IsMLDSA(alg) {
			return fmt.Errorf("KeyUsage %s: an %s key only signs, and RFC 9881 forbids the usage in its certificates", name, alg)
		}
	}
	if !some {
		return fmt.Errorf("the key usage extension sets none of the usages RFC 5280 defines, one of which it requires")
	}
	return nil
}

// keyUsages is how many usages RFC 5280 names in the key usage
// extension, digitalSignature (bit 0) to decipherOnly (bit 8).
const keyUsages = 9

// CheckExtKeyUsage refuses an extended key usage extension's value that
// is not a SEQUENCE of object identifiers alone: Go's parser takes one
// with data after it, which AWS Private CA refuses ("An extended key usage
// extension with three or more bytes of extra data after its encoded
// value", "Certificate request validation"), and which is not DER.
func CheckExtKeyUsage(value []byte) error {
	in := cryptobyte.String(value)
	var oids cryptobyte.String
	if !in.ReadASN1(&oids, cbasn1.SEQUENCE) || !in.Empty() {
		return fmt.Errorf("the extended key usage extension is not a SEQUENCE of object identifiers alone")
	}
	for !oids.Empty() {
		var oid asn1.ObjectIdentifier
		if !oids.ReadASN1ObjectIdentifier(&oid) {
			return fmt.Errorf("the extended key usage extension has an entry that is not an object identifier")
		}
	}
	return nil
}

// CheckKeyUsageValue refuses a key usage extension's value that is not a
// BIT STRING alone, which AWS Private CA refuses ("A key usage ... extension
// ... that can't be parsed").
func CheckKeyUsageValue(value []byte) error {
	_, err := keyUsageBits(value)
	return err
}

// keyUsageBits reads a key usage extension's value: one BIT STRING.
func keyUsageBits(value []byte) (asn1.BitString, error) {
	var bits asn1.BitString
	if rest, err := asn1.Unmarshal(value, &bits); err != nil || len(rest) > 0 {
		return bits, fmt.Errorf("the key usage extension is not a BIT STRING")
	}
	return bits, nil
}

// SubjectInformationAccessExtension encodes access descriptions as the
// subject information access extension.
func SubjectInformationAccessExtension(list []openpca.AccessDescription) (pkix.Extension, error) {
	type accessDescription struct {
		Method   asn1.ObjectIdentifier
		Location asn1.RawValue
	}
	var ads []accessDescription
	for i, ad := range list {
		var method asn1.ObjectIdentifier
		switch {
		case ad.AccessMethod == nil || (ad.AccessMethod.CustomObjectIdentifier == "") == (ad.AccessMethod.AccessMethodType == ""):
			return pkix.Extension{}, fmt.Errorf("access description %d: AccessMethod must set exactly one of CustomObjectIdentifier and AccessMethodType", i+1)
		case ad.AccessMethod.CustomObjectIdentifier != "":
			oid, err := ParseOID(ad.AccessMethod.CustomObjectIdentifier)
			if err != nil {
				return pkix.Extension{}, fmt.Errorf("access description %d: %w", i+1, err)
			}
			method = oid
		default:
			method = accessMethods[ad.AccessMethod.AccessMethodType]
		}
		if ad.AccessLocation == nil {
			return pkix.Extension{}, fmt.Errorf("access description %d: AccessLocation is missing", i+1)
		}
		loc, err := MarshalGeneralName(*ad.AccessLocation)
		if err != nil {
			return pkix.Extension{}, fmt.Errorf("access description %d: %w", i+1, err)
		}
		ads = append(ads, accessDescription{method, loc})
	}
	v, err := asn1.Marshal(ads)
	return pkix.Extension{Id: oidExtSubjectInformationAccess, Value: v}, err
}

// eachAltName calls fn with the tag and contents of each GeneralName of a
// DER subject alternative name extension's value, until fn fails; a value
// that is not a SEQUENCE of them is an error, after the names before the
// fault.
func eachAltName(value []byte, fn func(tag cbasn1.Tag, v []byte) error) error {
	in := cryptobyte.String(value)
	var names cryptobyte.String
	if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
		return fmt.Errorf("the subject alternative names are not a SEQUENCE of GeneralName")
	}
	for !names.Empty() {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return fmt.Errorf("a subject alternative name is malformed")
		}
		if err := fn(tag, name); err != nil {
			return err
		}
	}
	return nil
}

// AltNames lists the DNS names, email addresses, URIs and IP addresses of
// a subject alternative name extension's value, space-separated, for
// searching: the console finds certificates by them.
func AltNames(value []byte) string {
	var names []string
	eachAltName(value, func(tag cbasn1.Tag, v []byte) error { // a malformed value lists the names before the fault
		switch tag {
		case cbasn1.Tag(1).ContextSpecific(), cbasn1.Tag(2).ContextSpecific(), cbasn1.Tag(6).ContextSpecific(): // rfc822Name, dNSName, URI
			names = append(names, string(v))
		case cbasn1.Tag(7).ContextSpecific(): // iPAddress
			if len(v) == net.IPv4len || len(v) == net.IPv6len {
				names = append(names, net.IP(v).String())
			}
		}
		return nil
	})
	return strings.Join(names, " ")
}

// oidSmtpUTF8Mailbox is the otherName type of an internationalized
// email address (RFC 9598).
var oidSmtpUTF8Mailbox = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 9}

// SmtpUTF8Mailboxes returns the SmtpUTF8Mailbox names of a DER subject
// alternative name extension's value, which Go's parser skips as it does
// every otherName; one that is not a UTF8String is an error.
func SmtpUTF8Mailboxes(value []byte) ([]string, error) {
	var boxes []string
	err := eachAltName(value, func(tag cbasn1.Tag, v []byte) error {
		if tag != cbasn1.Tag(tagOtherName).ContextSpecific().Constructed() {
			return nil
		}
		in := cryptobyte.String(v)
		var oid asn1.ObjectIdentifier
		if !in.ReadASN1ObjectIdentifier(&oid) {
			return fmt.Errorf("an otherName of the subject alternative names is malformed")
		}
		if !oid.Equal(oidSmtpUTF8Mailbox) {
			return nil
		}
		var explicit, box cryptobyte.String
		if !in.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !in.Empty() ||
			!explicit.ReadASN1(&box, cbasn1.UTF8String) || !explicit.Empty() || !utf8.Valid(box) {
			return fmt.Errorf("a SmtpUTF8Mailbox of the subject alternative names is not a UTF8String")
		}
		boxes = append(boxes, string(box))
		return nil
	})
	return boxes, err
}

// CheckAltNames checks the names of a DER subject alternative name
// extension's value, whether a CSR or a CustomExtension gives it: those
// that are IA5Strings (DNS names, email addresses, URIs) with CheckName,
// and directory names, which must name something, have no control
// character (CheckSubject), and values of DirectoryString types alone
// (checkDirectoryString). AWS Private CA refuses "a SAN entry that's
// empty, that contains only whitespace, or that contains a control
// character", and RFC 5280 (4.2.1.6) any empty GeneralName.
func CheckAltNames(value []byte) error {
	return eachAltName(value, func(tag cbasn1.Tag, v []byte) error {
		switch tag {
		case cbasn1.Tag(1).ContextSpecific(), cbasn1.Tag(2).ContextSpecific(): // rfc822Name, dNSName
			if err := CheckName(string(v)); err != nil {
				return fmt.Errorf("a subject alternative name: %w", err)
			}
		case cbasn1.Tag(6).ContextSpecific(): // uniformResourceIdentifier
			if err := checkURI(string(v)); err != nil {
				return fmt.Errorf("a subject alternative name: %w", err)
			}
		case cbasn1.Tag(5).ContextSpecific().Constructed(): // ediPartyName: [5] IMPLICIT EDIPartyName
			// nameAssigner [0] and partyName [1], each an EXPLICIT
			// DirectoryString: the party must be named.
			in := cryptobyte.String(v)
			var party, value cryptobyte.String
			var tag cbasn1.Tag
			if !in.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) || !in.ReadASN1(&party, cbasn1.Tag(1).ContextSpecific().Constructed()) ||
				!in.Empty() || !party.ReadAnyASN1(&value, &tag) || !party.Empty() {
				return fmt.Errorf("a subject alternative name: an EDI party name is malformed")
			}
			// Blank: spaces alone, in one byte each or, in a BMPString or
			// UniversalString, between zero bytes (a zero character is
			// a control, refused too).
			if len(bytes.TrimSpace(bytes.ReplaceAll(value, []byte{0}, nil))) == 0 || hasControl(tag, value) {
				return &EntryError{"a subject alternative name: an EDI party name is blank or has a control character"}
			}
		case cbasn1.Tag(7).ContextSpecific(): // iPAddress
			// AWS refuses "A SAN IP address that isn't 4 or 16 bytes
			// long" ("Certificate request validation").
			if len(v) != net.IPv4len && len(v) != net.IPv6len {
				return &EntryError{fmt.Sprintf("a subject alternative name: an IP address of %d bytes; it must be 4 or 16", len(v))}
			}
		case cbasn1.Tag(4).ContextSpecific().Constructed(): // directoryName: [4] EXPLICIT Name
			name := cryptobyte.String(v)
			var rdns cryptobyte.String
			if !name.ReadASN1Element(&rdns, cbasn1.SEQUENCE) || !name.Empty() {
				return fmt.Errorf("a subject alternative name: a directory name is not a Name")
			}
			if bytes.Equal(rdns, []byte{0x30, 0}) {
				return &EntryError{"a subject alternative name: a directory name is empty"}
			}
			if err := CheckSubject(rdns); err != nil {
				return &EntryError{"a subject alternative name: a directory name: " + err.Error()}
			}
			if err := eachAttribute(rdns, checkDirectoryString); err != nil {
				return &EntryError{"a subject alternative name: a directory name: " + err.Error()}
			}
		}
		return nil
	})
}

// CheckSubject refuses a DER subject with a control character (C0, DEL or
// C1) in an attribute's string value: "bank.example\x00.evil.example"
// reads as another name to some readers of a common name.
func CheckSubject(raw []byte) error {
	return eachAttribute(raw, func(oid asn1.ObjectIdentifier, tag cbasn1.Tag, value []byte) error {
		if hasControl(tag, value) {
			return fmt.Errorf("the subject's attribute %s %w", oid, errControl)
		}
		return nil
	})
}

// eachAttribute calls fn with the type, and the tag and contents of the
// value, of each attribute of a DER Name, until fn fails; a Name that is
// not a SEQUENCE of non-empty SETs of attributes is an error.
func eachAttribute(raw []byte, fn func(oid asn1.ObjectIdentifier, tag cbasn1.Tag, value []byte) error) error {
	in := cryptobyte.String(raw)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return fmt.Errorf("the subject is not a SEQUENCE of RDNs")
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return fmt.Errorf("the subject has a malformed RDN")
		}
		if set.Empty() {
			return fmt.Errorf("the subject has an empty RDN")
		}
		for !set.Empty() {
			var atv, value cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&value, &tag) || !atv.Empty() {
				return fmt.Errorf("the subject has a malformed attribute")
			}
			if err := fn(oid, tag, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// errControl is CheckSubject's refusal of an attribute with a control
// character.
var errControl = errors.New("has a control character")

// hasControl reports whether a string of ASN.1 type tag has a control
// character: below 0x20, or from DEL to 0x9f. UTF8String is read as
// UTF-8; the one-byte strings spell each character in a byte, BMPString in
// two and UniversalString in four. Other types are not strings.
func hasControl(tag cbasn1.Tag, value []byte) bool {
	width := 0
	switch tag {
	case cbasn1.UTF8String:
		return strings.ContainsFunc(string(value), isControl)
	case cbasn1.PrintableString, cbasn1.IA5String, cbasn1.T61String, cbasn1.Tag(26): // VisibleString
		width = 1
	case cbasn1.Tag(asn1.TagBMPString):
		width = 2
	case cbasn1.Tag(tagUniversalString):
		width = 4
	default:
		return false
	}
	for i := 0; i+width <= len(value); i += width {
		c := rune(0)
		for _, b := range value[i : i+width] {
			c = c<<8 | rune(b)
		}
		if isControl(c) {
			return true
		}
	}
	return false
}

// isControl reports whether r is a C0 or C1 control character, or DEL.
func isControl(r rune) bool { return r < 0x20 || 0x7f <= r && r <= 0x9f }

// String types of ASN.1 (X.680) by their universal tags, for errors.
var stringTypes = map[cbasn1.Tag]string{cbasn1.UTF8String: "UTF8String", cbasn1.Tag(18): "NumericString", cbasn1.PrintableString: "PrintableString",
	cbasn1.T61String: "TeletexString", cbasn1.IA5String: "IA5String", cbasn1.Tag(26): "VisibleString", cbasn1.Tag(27): "GeneralString",
	cbasn1.Tag(tagUniversalString): "UniversalString", cbasn1.Tag(asn1.TagBMPString): "BMPString"}

// checkDirectoryString refuses an attribute value of a directory name
// that is not a DirectoryString (RFC 5280, 4.1.2.4: UTF8String,
// PrintableString, TeletexString, UniversalString, BMPString), nor an
// IA5String of an emailAddress or domainComponent, the two attributes
// RFC 5280 gives that type; or one that does not decode. Name
// constraints compare values of another type by their bytes: an
// excluded O=Secret let O=Secret in a VisibleString through, which
// OpenSSL cannot even decode.
func checkDirectoryString(oid asn1.ObjectIdentifier, tag cbasn1.Tag, value []byte) error {
	name := oid.String()
	if k, ok := rfc2253Keywords[name]; ok {
		name = k + " (" + name + ")"
	}
	switch {
	case tag == cbasn1.UTF8String, tag == cbasn1.PrintableString, tag == cbasn1.T61String, tag == cbasn1.Tag(tagUniversalString), tag == cbasn1.Tag(asn1.TagBMPString):
	case tag == cbasn1.IA5String && (oid.Equal(oidEmailAddress) || oid.Equal(oidDomainComponent)):
	default:
		what := fmt.Sprintf("has a value whose ASN.1 tag byte is %#x", uint8(tag))
		if t, ok := stringTypes[tag]; ok {
			what = "is a " + t
		}
		return fmt.Errorf("the attribute %s %s, not a DirectoryString (UTF8String, PrintableString, TeletexString, UniversalString or BMPString; "+
			"IA5String for emailAddress and domainComponent alone), as RFC 5280 asks", name, what)
	}
	if _, ok := directoryString(asn1.RawValue{Class: asn1.ClassUniversal, Tag: int(tag), Bytes: value}); !ok {
		return fmt.Errorf("the attribute %s is a %s that does not decode", name, stringTypes[tag])
	}
	return nil
}
