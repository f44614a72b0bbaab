package pki

import (
	"crypto/rand"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// rfc2253Keywords are the attribute types that RFC 2253 (and Java's
// X500Principal, which AWS Private CA's reports follow) print by name. Any
// other type is printed as its dotted OID with the value as #hex DER.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rdnSET []attribute

// FormatSubject prints a DER distinguished name as AWS Private CA's audit
// reports do (RFC 2253): most specific RDN first, comma-separated, values
// of the types RFC 2253 names as escaped strings, and of other types as
// OID=#hex of their DER encoding.
func FormatSubject(der []byte) (string, error) {
	var rdns []rdnSET
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil {
		return "", err
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("trailing data after the name")
	}
	parts := make([]string, 0, len(rdns))
	for i := len(rdns) - 1; i >= 0; i-- {
		avas := make([]string, len(rdns[i]))
		for j, a := range rdns[i] {
			avas[j] = formatAttribute(a)
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	return strings.Join(parts, ","), nil
}

func formatAttribute(a attribute) string {
	if name, ok := rfc2253Keywords[a.Type.String()]; ok {
		// A T61String is read as Latin-1, as Go's x509 and OpenSSL read
		// it: printed as its bytes, each byte past ASCII that is not
		// UTF-8 was U+FFFD (café and cafè alike), and one of UTF-8 bytes
		// another name than Go and OpenSSL show. A UniversalString is
		// printed as #hex, as Java's X500Principal prints it.
		if s, ok := latin1String(a.Value); ok && a.Value.Tag != tagUniversalString {
			return name + "=" + escapeRFC2253(s)
		}
		return name + "=#" + hex.EncodeToString(a.Value.FullBytes)
	}
	return a.Type.String() + "=#" + hex.EncodeToString(a.Value.FullBytes)
}

// tagUniversalString is the universal tag of a UniversalString, which
// encoding/asn1 names no constant for.
const tagUniversalString = 28

// directoryString decodes the string types a DirectoryString may take,
// and IA5String (of emailAddress and domainComponent): a value that
// decodes compares with one of another type as a string.
func directoryString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String:
		return string(v.Bytes), true
	case tagUniversalString:
		// UTF-32BE, four bytes a character: an excluded O=Secret let the
		// same value in a UniversalString through, compared by its bytes.
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(v.Bytes)/4)
		for i := range r {
			c := binary.BigEndian.Uint32(v.Bytes[4*i:])
			if !utf8.ValidRune(rune(c)) { // a rune of 2^31 or more is negative
				return "", false
			}
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}

// escapeRFC2253 escapes a value as RFC 2253, section 2.4, requires.
func escapeRFC2253(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(`,+"\<>;`, r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NewSerial returns a serial number of 16 bytes: the time now, in
// milliseconds since 1970 in 6 bytes, then 80 random bits (more than the
// 64 the CA/Browser Forum asks for, so that no one can foresee a serial).
// Serials so ordered by time are written to the end of the store's index
// of them rather than anywhere in it. The first byte is not zero from
// 2005 on, and below 0x80 until the year 6400: the number is positive,
// and its hex form has 32 digits.
func NewSerial(now time.Time) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b[6:]); err != nil {
		return nil, err
	}
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i], ms = byte(ms), ms>>8
	}
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 1
	}
	return new(big.Int).SetBytes(b), nil
}

// SerialHex writes a serial number as AWS certificate ARNs end: lowercase
// hex without colons.
func SerialHex(n *big.Int) string {
	return hex.EncodeToString(n.Bytes())
}

// ParseSerial reads a serial number written in hex, with or without colons
// between bytes, in either case, and returns it in SerialHex form.
func ParseSerial(s string) (string, error) {
	h := strings.ToLower(strings.ReplaceAll(s, ":", ""))
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || h == "" || strings.HasPrefix(h, "-") || strings.HasPrefix(h, "+") {
		return "", fmt.Errorf("%q is not a hexadecimal serial number", s)
	}
	return SerialHex(n), nil
}
