package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

func TestMarshalSubjectOrderAndTypes(t *testing.T) {
	der, err := MarshalSubject(&openpca.ASN1Subject{
		CommonName: "www.example.com", Locality: "Seattle", State: "WA", OrganizationalUnit: "Sales",
		Organization: "Example Corp", Country: "US", SerialNumber: "A1", GenerationQualifier: "Jr",
	})
	if err != nil {
		t.Fatal(err)
	}
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &rdns); err != nil {
		t.Fatal(err)
	}
	// The order of the API's ASN1Subject, as AWS's example CSR shows.
	var order []string
	for _, rdn := range rdns {
		order = append(order, rdn[0].Type.String())
	}
	if got, want := strings.Join(order, " "), "2.5.4.6 2.5.4.10 2.5.4.11 2.5.4.8 2.5.4.3 2.5.4.5 2.5.4.7 2.5.4.44"; got != want {
		t.Errorf("attribute order %s, want %s", got, want)
	}
	// Country and serial number are PrintableString, the rest UTF8String.
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type rawRDNSET []atv
	var raw []rawRDNSET
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		t.Fatal(err)
	}
	for _, rdn := range raw {
		want := asn1.TagUTF8String
		if rdn[0].Type.Equal(oidCountry) || rdn[0].Type.Equal(oidSerialNumber) {
			want = asn1.TagPrintableString
		}
		if rdn[0].Value.Tag != want {
			t.Errorf("attribute %s has tag %d, want %d", rdn[0].Type, rdn[0].Value.Tag, want)
		}
	}
}

func TestMarshalSubjectErrors(t *testing.T) {
	tests := map[string]*openpca.ASN1Subject{
		"nil":          nil,
		"empty":        {},
		"mixed":        {CommonName: "x", CustomAttributes: []openpca.CustomAttribute{{ObjectIdentifier: "2.5.4.3", Value: "y"}}},
		"bad OID":      {CustomAttributes: []openpca.CustomAttribute{{ObjectIdentifier: "3.1", Value: "y"}}},
		"huge OID arc": {CustomAttributes: []openpca.CustomAttribute{{ObjectIdentifier: "1.2.99999999999999", Value: "y"}}},
		"country UTF8": {Country: "Ü1"},
	}
	for name, s := range tests {
		if _, err := MarshalSubject(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	der, err := MarshalSubject(&openpca.ASN1Subject{CustomAttributes: []openpca.CustomAttribute{
		{ObjectIdentifier: "2.5.4.3", Value: "custom cn"}, {ObjectIdentifier: "1.3.6.1.4.1.99.1", Value: "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(der, []byte("custom cn")) {
		t.Error("custom attribute missing")
	}
}

func TestMarshalGeneralName(t *testing.T) {
	tests := []struct {
		name string
		in   openpca.GeneralName
		hex  string // DER of the GeneralName
	}{
		{"dns", openpca.GeneralName{DnsName: "a.io"}, "820461" + hex.EncodeToString([]byte(".io"))},
		{"email", openpca.GeneralName{Rfc822Name: "a@b"}, "8103614062"},
		{"uri", openpca.GeneralName{UniformResourceIdentifier: "u:x"}, "8603753a78"},
		{"ipv4", openpca.GeneralName{IpAddress: "10.0.0.1"}, "87040a000001"},
		{"ipv6", openpca.GeneralName{IpAddress: "::1"}, "871000000000000000000000000000000001"},
		{"registered id", openpca.GeneralName{RegisteredId: "1.2.3"}, "88022a03"},
		{"other name", openpca.GeneralName{OtherName: &openpca.OtherName{TypeId: "1.2.3", Value: "v"}}, "a00906022a03a0030c0176"},
		{"edi party", openpca.GeneralName{EdiPartyName: &openpca.EdiPartyName{PartyName: "p"}}, "a505a1030c0170"},
		{"directory", openpca.GeneralName{DirectoryName: &openpca.ASN1Subject{CommonName: "c"}}, "a40e300c310a300806035504030c0163"},
	}
	for _, tt := range tests {
		raw, err := MarshalGeneralName(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		der, _ := asn1.Marshal(raw)
		if got := hex.EncodeToString(der); got != tt.hex {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.hex)
		}
	}
	// x509 reads back what a certificate would carry.
	for _, bad := range []openpca.GeneralName{{}, {DnsName: "a", IpAddress: "1.2.3.4"}, {IpAddress: "300.1.1.1"}, {DnsName: "ü.example"}, {RegisteredId: "9.9"},
		{EdiPartyName: &openpca.EdiPartyName{}}, {EdiPartyName: &openpca.EdiPartyName{PartyName: " \t"}},
		{EdiPartyName: &openpca.EdiPartyName{PartyName: "p\x00"}}, {EdiPartyName: &openpca.EdiPartyName{PartyName: "\u200b\u00a0"}}, {EdiPartyName: &openpca.EdiPartyName{PartyName: "p", NameAssigner: " "}},
		{UniformResourceIdentifier: "not a uri"}, {UniformResourceIdentifier: "relative/path"}, {UniformResourceIdentifier: "//host/path"},
		{UniformResourceIdentifier: "http:"}, {UniformResourceIdentifier: "http://[::1"}} {
		if _, err := MarshalGeneralName(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	for _, good := range []string{"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "spiffe://example.org/ns/a", "mailto:a@b", "https://a.example/x?y#z"} {
		if _, err := MarshalGeneralName(openpca.GeneralName{UniformResourceIdentifier: good}); err != nil {
			t.Errorf("URI %s: %v", good, err)
		}
	}
}

// dirNameHex is, in hex, a subject alternative name extension's value of
// one directory name, of one attribute of type oid whose value has the
// universal tag given.
func dirNameHex(t *testing.T, oid asn1.ObjectIdentifier, tag int, value []byte) string {
	return hex.EncodeToString(mustMarshal([]asn1.RawValue{dirName(t, atv(oid, asn1.RawValue{Tag: tag, Bytes: value}))}))
}

// TestCheckAltNames: the names of a subject alternative name extension a
// CSR or a custom extension gives are checked as the API's are.
func TestCheckAltNames(t *testing.T) {
	for _, c := range []struct {
		name string
		hex  string // the extension's value
		ok   bool
	}{
		{"a DNS name", "30048202" + hex.EncodeToString([]byte("a.")), true},
		{"an absolute URI", "30058603" + hex.EncodeToString([]byte("u:x")), true},
		{"a URI not absolute", "300b8609" + hex.EncodeToString([]byte("not a uri")), false},
		{"an EDI party", "3007a505a1030c0170", true},
		{"an EDI party with its assigner", "300ca50aa0030c0161a1030c0170", true},
		{"an EDI party empty", "3006a504a1020c00", false},
		{"an EDI party of spaces", "3008a506a1040c022020", false},
		{"an EDI party of BMP spaces", "300aa508a1061e0400200020", false},
		{"an EDI party with a control", "3008a506a1040c027001", false},
		{"an EDI party without its party", "3007a505a0030c0161", false},
		{"an EDI party with more after", "3009a507a1030c01700500", false},
		// A directory name's values are DirectoryStrings: name
		// constraints compare no other type as a string.
		{"a directory name in a UTF8String", dirNameHex(t, oidO, asn1.TagUTF8String, []byte("Secret")), true},
		{"a directory name in a PrintableString", dirNameHex(t, oidO, asn1.TagPrintableString, []byte("Secret")), true},
		{"a directory name in a TeletexString", dirNameHex(t, oidO, asn1.TagT61String, []byte("Secret")), true},
		{"a directory name in a BMPString", dirNameHex(t, oidO, asn1.TagBMPString, []byte("\x00S\x00e")), true},
		{"a directory name in a UniversalString", dirNameHex(t, oidO, tagUniversalString, universalString("Secret").Bytes), true},
		{"a directory name in a VisibleString", dirNameHex(t, oidO, 26, []byte("Secret")), false},
		{"a directory name in a NumericString", dirNameHex(t, oidO, asn1.TagNumericString, []byte("123")), false},
		{"a directory name's organization in an IA5String", dirNameHex(t, oidO, asn1.TagIA5String, []byte("Secret")), false},
		{"a directory name's email address in an IA5String", dirNameHex(t, oidEmailAddress, asn1.TagIA5String, []byte("a@corp.example")), true},
		{"a directory name's domain component in an IA5String", dirNameHex(t, oidDomainComponent, asn1.TagIA5String, []byte("corp")), true},
		{"a directory name in an INTEGER", dirNameHex(t, oidO, asn1.TagInteger, []byte{1}), false},
		{"a directory name in a UniversalString of 3 bytes", dirNameHex(t, oidO, tagUniversalString, []byte{0, 0, 'S'}), false},
		{"a directory name in a UniversalString past U+10FFFF", dirNameHex(t, oidO, tagUniversalString, []byte{0, 0x11, 0, 0}), false},
	} {
		value, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckAltNames(value); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestKeyUsageExtension(t *testing.T) {
	tests := []struct {
		ku   openpca.KeyUsage
		want x509.KeyUsage
	}{
		{openpca.KeyUsage{DigitalSignature: true}, x509.KeyUsageDigitalSignature},
		{openpca.KeyUsage{KeyCertSign: true, CRLSign: true}, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{openpca.KeyUsage{DecipherOnly: true, KeyAgreement: true}, x509.KeyUsageDecipherOnly | x509.KeyUsageKeyAgreement},
	}
	for _, tt := range tests {
		ext, err := KeyUsageExtension(&tt.ku)
		if err != nil {
			t.Fatal(err)
		}
		// Round-trip through a certificate parse.
		var bs asn1.BitString
		if _, err := asn1.Unmarshal(ext.Value, &bs); err != nil {
			t.Fatal(err)
		}
		var got x509.KeyUsage
		for i := 0; i < 9; i++ {
			if bs.At(i) != 0 {
				got |= 1 << i
			}
		}
		if got != tt.want || !ext.Critical {
			t.Errorf("%+v: got %v (critical %v), want %v", tt.ku, got, ext.Critical, tt.want)
		}
		if bs.BitLength > 0 && bs.At(bs.BitLength-1) == 0 {
			t.Errorf("%+v: trailing zero bits are not DER", tt.ku)
		}
	}
	if _, err := KeyUsageExtension(&openpca.KeyUsage{}); err == nil {
		t.Error("empty key usage accepted")
	}
}

func TestFormatSerial(t *testing.T) {
	n, _ := new(big.Int).SetString("822e39aae54044e551010e64919961d2", 16)
	if got := FormatSerial(n); got != "82:2e:39:aa:e5:40:44:e5:51:01:0e:64:91:99:61:d2" {
		t.Errorf("FormatSerial = %s", got)
	}
	if got := FormatSerial(big.NewInt(0)); got != "00" {
		t.Errorf("FormatSerial(0) = %s", got)
	}
}

func TestSignatureAlgorithm(t *testing.T) {
	for _, key := range openpca.KeyAlgorithm("").Values() {
		for _, sig := range openpca.SigningAlgorithm("").Values() {
			_, err := SignatureAlgorithm(key, sig)
			rsaKey, ecKey := strings.HasPrefix(string(key), "RSA"), strings.HasPrefix(string(key), "EC_")
			fits := (rsaKey && strings.HasSuffix(string(sig), "WITHRSA")) || (ecKey && strings.HasSuffix(string(sig), "WITHECDSA")) ||
				(strings.HasPrefix(string(key), "ML_DSA") && string(sig) == string(key)) || (key == "SM2" && sig == "SM3WITHSM2")
			if fits != (err == nil) {
				t.Errorf("%s with %s: %v", key, sig, err)
			}
		}
	}
}

// TestNewSerial: serials are positive, 32 hex digits long, ordered by the
// time they are made, and differ within one millisecond.
func TestNewSerial(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var last string
	seen := map[string]bool{}
	for i := range 1000 {
		n, err := NewSerial(at.Add(time.Duration(i/10) * time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		h := SerialHex(n)
		if n.Sign() <= 0 || len(h) != 32 || seen[h] {
			t.Fatalf("serial %s", h)
		}
		if i%10 == 0 && h <= last {
			t.Errorf("serial %s made after %s sorts before it", h, last)
		}
		seen[h], last = true, h
	}
}

// TestCheckSubject: a subject passes unless a string value has a control
// character, in every string type a subject's values come in.
func TestCheckSubject(t *testing.T) {
	bmp := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>8), byte(r))
		}
		return b
	}
	universal := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		tag   int
		value []byte
		ok    bool
	}{
		{"UTF8String", asn1.TagUTF8String, []byte("Zürich ☃"), true},
		{"UTF8String with a NUL", asn1.TagUTF8String, []byte("a\x00b"), false},
		{"PrintableString with DEL", asn1.TagPrintableString, []byte("a\x7fb"), false},
		{"IA5String with a line break", asn1.TagIA5String, []byte("a\nb"), false},
		{"BMPString", asn1.TagBMPString, bmp("Zürich"), true},
		{"BMPString with a NUL", asn1.TagBMPString, bmp("a\x00b"), false},
		{"BMPString of a character whose bytes are 0x00 0x0a", asn1.TagBMPString, bmp("a\u0a00b"), true},
		{"UniversalString with a tab", 28, universal("a\tb"), false},
		{"UTF8String with NEL (C1)", asn1.TagUTF8String, []byte("a\u0085b"), false},
		{"BMPString with CSI (C1)", asn1.TagBMPString, bmp("a\u009bb"), false},
		{"T61String with a C1 byte", asn1.TagT61String, []byte("a\x9bb"), false},
		{"an OCTET STRING", asn1.TagOctetString, []byte{0}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdn := pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: asn1.RawValue{Tag: tc.tag, Bytes: tc.value}}}}
			raw, err := asn1.Marshal(rdn)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckSubject(raw); (err == nil) != tc.ok {
				t.Errorf("CheckSubject: %v, want ok %v", err, tc.ok)
			}
		})
	}
	if err := CheckSubject([]byte{0x30, 0x03, 0x31, 0x01, 0x00}); err == nil {
		t.Error("a malformed subject passed")
	}
}

func TestKeyMadeID(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sha1ID, err := SubjectKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		id   []byte // nil: Go's own
		want bool
	}{
		{"SHA-1 of the key", sha1ID, true},
		{"Go's, SHA-256 cut to 160 bits", nil, true},
		{"SHA-1 of the key, changed", append(bytes.Clone(sha1ID[:19]), sha1ID[19]^1), false},
		{"a random one", []byte("0123456789abcdefghij"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := signSelf(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, SubjectKeyId: tt.id,
				NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}, key)
			if got := KeyMadeID(c); got != tt.want {
				t.Errorf("KeyMadeID = %v for %x, want %v", got, c.SubjectKeyId, tt.want)
			}
		})
	}
}

// TestAPIExtKeyUsagesOnce: a purpose the API names twice, by its type and
// by its OID or twice the same way, is listed once, in the order of its
// first naming.
func TestAPIExtKeyUsagesOnce(t *testing.T) {
	oids, err := APIExtKeyUsages([]openpca.ExtendedKeyUsage{
		{ExtendedKeyUsageType: openpca.ExtendedKeyUsageTypeSmartCardLogin},
		{ExtendedKeyUsageObjectIdentifier: "1.2.3"},
		{ExtendedKeyUsageObjectIdentifier: "1.3.6.1.4.1.311.20.2.2"},
		{ExtendedKeyUsageObjectIdentifier: "1.2.03"},
		{ExtendedKeyUsageType: openpca.ExtendedKeyUsageTypeSmartCardLogin},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(oids) != "[1.3.6.1.4.1.311.20.2.2 1.2.3]" {
		t.Errorf("%v, want each purpose once", oids)
	}
}
