package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/race"
)

// subtree is a GeneralSubtree of a given base GeneralName; rest is what
// follows the base (a minimum or maximum distance).
func subtree(base asn1.RawValue, rest ...byte) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: append(mustMarshal(base), rest...)}
}

func dirName(t *testing.T, rdns ...pkix.AttributeTypeAndValue) asn1.RawValue {
	t.Helper()
	var seq pkix.RDNSequence
	for _, a := range rdns {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{a})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDirectoryName, IsCompound: true, Bytes: der}
}

func dnsName(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDNSName, Bytes: []byte(s)}
}

// nameConstraints encodes a critical name constraints extension.
func nameConstraints(permitted, excluded []asn1.RawValue) pkix.Extension {
	var b []byte
	for i, subtrees := range [][]asn1.RawValue{permitted, excluded} {
		if len(subtrees) == 0 {
			continue
		}
		var inner []byte
		for _, s := range subtrees {
			inner = append(inner, mustMarshal(s)...)
		}
		b = append(b, mustMarshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: i, IsCompound: true, Bytes: inner})...)
	}
	return pkix.Extension{Id: OIDNameConstraints, Critical: true, Value: mustMarshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})}
}

var (
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
)

func atv(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

// selfSigned makes a CA certificate with the given extensions and
// subject, as Go parses it.
func selfSigned(t *testing.T, subject pkix.RDNSequence, exts ...pkix.Extension) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := asn1.Marshal(subject)
	if err != nil {
		t.Fatal(err)
	}
	return signSelf(t, &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: raw, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, ExtraExtensions: exts}, key)
}

// signSelf makes the certificate of tmpl that key signs, as Go parses it.
func signSelf(t *testing.T, tmpl *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadDirectoryNameConstraints(t *testing.T) {
	corp := dirName(t, atv(oidC, "US"), atv(oidO, "Example Corp"))
	other := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagOtherName, IsCompound: true,
		Bytes: append(mustMarshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}), mustMarshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: mustMarshal("x")})...)}
	for _, tc := range []struct {
		name     string
		exts     []pkix.Extension
		want     bool // directory-name constraints read
		handled  bool // Go's verifier takes the extension as handled after
		wantErr  string
		unparsed bool // Go itself refuses the certificate
	}{
		{name: "none", handled: true},
		{name: "DNS only", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(dnsName("corp.example"))}, nil)}, handled: true},
		{name: "directory name", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(corp)}, nil)}, want: true, handled: true},
		{name: "excluded directory name and DNS", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(dnsName("corp.example"))}, []asn1.RawValue{subtree(corp)})}, want: true, handled: true},
		{name: "directory name and otherName", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(corp), subtree(other)}, nil)}, want: true},
		{name: "explicit minimum 0", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(corp, 0x80, 0x01, 0x00)}, nil)}, want: true, handled: true},
		{name: "minimum 1", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(corp, 0x80, 0x01, 0x01)}, nil)}, wantErr: "minimum or maximum"},
		{name: "maximum", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(corp, 0x81, 0x01, 0x02)}, nil)}, wantErr: "minimum or maximum"},
		{name: "DNS with a maximum, as Go reads it", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(dnsName("corp.example"), 0x81, 0x01, 0x02)}, nil)}, handled: true},
		{name: "directory name not a Name", exts: []pkix.Extension{nameConstraints([]asn1.RawValue{subtree(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDirectoryName, IsCompound: true, Bytes: []byte{0x04, 0x00}})}, nil)}, wantErr: "directory name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := selfSigned(t, pkix.RDNSequence{{atv(oidCN, "CA")}}, tc.exts...)
			dc, verify, err := ReadDirectoryNameConstraints(c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (dc != nil) != tc.want {
				t.Errorf("constraints read: %v, want %v", dc != nil, tc.want)
			}
			unhandled := slices.ContainsFunc(verify.UnhandledCriticalExtensions, func(id asn1.ObjectIdentifier) bool { return id.Equal(OIDNameConstraints) })
			if unhandled == tc.handled {
				t.Errorf("unhandled for the verifier: %v, want %v", unhandled, !tc.handled)
			}
			if len(c.UnhandledCriticalExtensions) == 0 && verify != c {
				t.Error("a copy of a certificate Go handles whole")
			}
		})
	}
}

func utf8String(s string) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)}
}

// t61 is a T61String of s's Latin-1 bytes.
func t61(s string) asn1.RawValue {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return asn1.RawValue{Tag: asn1.TagT61String, Bytes: b}
}

// universalString is a UniversalString of s: UTF-32BE.
func universalString(s string) asn1.RawValue {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return asn1.RawValue{Tag: tagUniversalString, Bytes: b}
}

func TestDirectoryNameConstraintsCheck(t *testing.T) {
	ca := selfSigned(t, pkix.RDNSequence{{atv(oidCN, "CA")}}, nameConstraints(
		[]asn1.RawValue{subtree(dirName(t, atv(oidC, "US"), atv(oidO, "Example  Corp"))), subtree(dirName(t, atv(oidC, "FR"), atv(oidO, utf8String("Société"))))},
		[]asn1.RawValue{subtree(dirName(t, atv(oidC, "US"), atv(oidO, "Example Corp"), atv(oidOU, "Blocked"))), subtree(dirName(t, atv(oidC, "FR"), atv(oidO, utf8String("Société")), atv(oidOU, utf8String("Bloqué")))),
			subtree(dirName(t, atv(oidC, "US"), atv(oidO, "Example Corp"), atv(oidOU, "12345")))}))
	dc, _, err := ReadDirectoryNameConstraints(ca)
	if err != nil || dc == nil {
		t.Fatal(dc, err)
	}
	san := func(names ...asn1.RawValue) pkix.Extension {
		var b []byte
		for _, n := range names {
			b = append(b, mustMarshal(n)...)
		}
		return pkix.Extension{Id: OIDSubjectAltName, Value: mustMarshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})}
	}
	for _, tc := range []struct {
		name    string
		subject pkix.RDNSequence
		exts    []pkix.Extension
		ok      bool
	}{
		{name: "within", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}, {atv(oidCN, "leaf")}}, ok: true},
		{name: "the subtree itself", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}}, ok: true},
		{name: "case, spaces and string type", subject: pkix.RDNSequence{{atv(oidC, "us")}, {atv(oidO, utf8String("  example   CORP "))}, {atv(oidCN, "leaf")}}, ok: true},
		{name: "another organization", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corporation")}, {atv(oidCN, "leaf")}}},
		{name: "shorter than the subtree", subject: pkix.RDNSequence{{atv(oidC, "US")}}},
		{name: "RDNs in another order", subject: pkix.RDNSequence{{atv(oidO, "Example Corp")}, {atv(oidC, "US")}, {atv(oidCN, "leaf")}}},
		{name: "multi-valued RDN", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp"), atv(oidOU, "x")}, {atv(oidCN, "leaf")}}},
		{name: "excluded, in another case beyond ASCII", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}, {atv(oidOU, utf8String("BLOCKED"))}}},
		{name: "excluded", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}, {atv(oidOU, "blocked")}, {atv(oidCN, "leaf")}}},
		{name: "an ASCII T61String", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, t61("Example Corp"))}, {atv(oidCN, "leaf")}}, ok: true},
		{name: "a Latin-1 T61String, permitted as OpenSSL reads it only", subject: pkix.RDNSequence{{atv(oidC, "FR")}, {atv(oidO, t61("Société"))}, {atv(oidCN, "leaf")}}},
		{name: "a UTF-8 T61String, permitted as its bytes read only", subject: pkix.RDNSequence{{atv(oidC, "FR")}, {atv(oidO, asn1.RawValue{Tag: asn1.TagT61String, Bytes: []byte("Société")})}, {atv(oidCN, "leaf")}}},
		{name: "excluded, in a Latin-1 T61String", subject: pkix.RDNSequence{{atv(oidC, "FR")}, {atv(oidO, "Soci\u00e9t\u00e9")}, {atv(oidOU, t61("BLOQUÉ"))}}},
		{name: "excluded, in a UTF-8 T61String", subject: pkix.RDNSequence{{atv(oidC, "FR")}, {atv(oidO, "Soci\u00e9t\u00e9")}, {atv(oidOU, asn1.RawValue{Tag: asn1.TagT61String, Bytes: []byte("Bloqué")})}}},
		{name: "within, beside a T61String", subject: pkix.RDNSequence{{atv(oidC, "FR")}, {atv(oidO, "Soci\u00e9t\u00e9")}, {atv(oidOU, t61("Ouvert"))}}, ok: true},
		// Go's parser takes a NumericString in a subject: read as its
		// digits, not compared by its bytes.
		{name: "excluded, in a NumericString", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}, {atv(oidOU, asn1.RawValue{Tag: asn1.TagNumericString, Bytes: []byte("12345")})}}},
		{name: "within, in a NumericString", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}, {atv(oidOU, asn1.RawValue{Tag: asn1.TagNumericString, Bytes: []byte("67890")})}}, ok: true},
		{name: "empty subject is not checked", subject: pkix.RDNSequence{}, exts: []pkix.Extension{san(dnsName("a.example"))}, ok: true},
		{name: "directory name in the SAN", subject: pkix.RDNSequence{}, exts: []pkix.Extension{san(dnsName("a.example"), dirName(t, atv(oidC, "US"), atv(oidO, "Other")))}},
		{name: "permitted directory name in the SAN", subject: pkix.RDNSequence{{atv(oidC, "US")}, {atv(oidO, "Example Corp")}},
			exts: []pkix.Extension{san(dirName(t, atv(oidC, "US"), atv(oidO, "Example Corp"), atv(oidCN, "x")))}, ok: true},
		// Go's parser refuses a subject with a UniversalString; a
		// directory name in the SAN may have one.
		{name: "permitted, in a UniversalString", subject: pkix.RDNSequence{},
			exts: []pkix.Extension{san(dirName(t, atv(oidC, "US"), atv(oidO, universalString("Example Corp")), atv(oidCN, "x")))}, ok: true},
		{name: "excluded, in a UniversalString", subject: pkix.RDNSequence{},
			exts: []pkix.Extension{san(dirName(t, atv(oidC, "US"), atv(oidO, "Example Corp"), atv(oidOU, universalString("Blocked"))))}},
		{name: "excluded, in a UniversalString beyond ASCII", subject: pkix.RDNSequence{},
			exts: []pkix.Extension{san(dirName(t, atv(oidC, "FR"), atv(oidO, universalString("Société")), atv(oidOU, universalString("BLOQUÉ"))))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			budget := MaxNameComparisons
			err := dc.Check(selfSigned(t, tc.subject, tc.exts...), &budget)
			if (err == nil) != tc.ok {
				t.Errorf("Check: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestDirectoryNameConstraintsBudget: a check that would compare more
// names with subtrees than its budget holds fails before it compares any,
// and takes what it compares from the budget.
func TestDirectoryNameConstraintsBudget(t *testing.T) {
	race.Skip(t)
	var excluded, names []asn1.RawValue
	for i := range 1000 {
		excluded = append(excluded, subtree(dirName(t, atv(oidC, "US"), atv(oidO, fmt.Sprintf("Blocked %d", i)))))
	}
	for i := range 200 {
		names = append(names, dirName(t, atv(oidC, "US"), atv(oidO, fmt.Sprintf("Name %d", i))))
	}
	dc, _, err := ReadDirectoryNameConstraints(selfSigned(t, pkix.RDNSequence{{atv(oidCN, "CA")}}, nameConstraints(nil, excluded)))
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, n := range names {
		b = append(b, mustMarshal(n)...)
	}
	leaf := selfSigned(t, pkix.RDNSequence{}, pkix.Extension{Id: OIDSubjectAltName, Value: mustMarshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})})
	for _, tc := range []struct {
		budget, left int
		ok           bool
	}{
		// 200 names, 1,000 subtrees, two readings: 400,000 pairs, and in
		// each reading two attributes compared: C (1) then O (2, as the
		// two values hold 19 to 23 bytes).
		{MaxNameComparisons, 0, false},
		{1_599_999, 0, false},
		{1_600_000, 0, true},
		{1_700_000, 100_000, true},
	} {
		budget := tc.budget
		err := dc.Check(leaf, &budget)
		if (err == nil) != tc.ok || tc.ok && budget != tc.left || !tc.ok && !strings.Contains(err.Error(), "comparisons") {
			t.Errorf("a budget of %d: %v, %d left; want ok %v, %d left", tc.budget, err, budget, tc.ok, tc.left)
		}
	}
	// One pair of RDNs of 1,800 attributes each, which compare each with
	// each: millions of comparisons for one name and one subtree.
	var wide, reversed pkix.RelativeDistinguishedNameSET
	for i := range 1800 {
		wide = append(wide, atv(oidOU, fmt.Sprintf("unit %d", i)))
	}
	for i := range wide {
		reversed = append(reversed, wide[len(wide)-1-i])
	}
	base := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDirectoryName, IsCompound: true, Bytes: mustMarshal(pkix.RDNSequence{wide})}
	dc, _, err = ReadDirectoryNameConstraints(selfSigned(t, pkix.RDNSequence{{atv(oidCN, "CA")}}, nameConstraints(nil, []asn1.RawValue{subtree(base)})))
	if err != nil {
		t.Fatal(err)
	}
	budget := MaxNameComparisons
	if err := dc.Check(selfSigned(t, pkix.RDNSequence{reversed}), &budget); err == nil || !strings.Contains(err.Error(), "comparisons") {
		t.Errorf("a multi-valued RDN of 1,800 attributes: %v; want the budget spent", err)
	}
	// A long value costs as long as it is to read and fold: a common name
	// of 20 KB against 1,600 subtrees.
	var short []asn1.RawValue
	for range 1600 {
		short = append(short, subtree(dirName(t, atv(oidCN, "a"))))
	}
	dc, _, err = ReadDirectoryNameConstraints(selfSigned(t, pkix.RDNSequence{{atv(oidCN, "CA")}}, nameConstraints(nil, short)))
	if err != nil {
		t.Fatal(err)
	}
	budget = MaxNameComparisons
	if err := dc.Check(selfSigned(t, pkix.RDNSequence{{atv(oidCN, strings.Repeat("a ", 10240))}}), &budget); err == nil || !strings.Contains(err.Error(), "comparisons") {
		t.Errorf("a common name of 20 KB against 1,600 subtrees: %v; want the budget spent", err)
	}
}

// TestCanonical: ASCII letters' case and ASCII spaces fold, as OpenSSL
// folds them; other letters' case does not.
func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		a, b         string
		same, folded bool // by canonical, by folded
	}{
		{"  Example \t  CORP ", "example corp", true, true},
		{"Société", "société", true, true},
		{"Société", "SOCIÉTÉ", false, true},
		{"a b", "ab", false, false},
	} {
		if got := canonical(tc.a) == canonical(tc.b); got != tc.same {
			t.Errorf("%q and %q: the same %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if got := folded(tc.a) == folded(tc.b); got != tc.folded {
			t.Errorf("%q and %q: the same folded %v, want %v", tc.a, tc.b, got, tc.folded)
		}
	}
}
