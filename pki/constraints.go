package pki

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DirectoryNameConstraints are the directory-name subtrees of a CA
// certificate's name constraints (RFC 5280, 4.2.1.10). Go's crypto/x509
// reads the other forms a CA uses (DNS names, email addresses, IP
// addresses, URIs) and checks them in Verify; it reads no directory name,
// and takes a critical extension that has one as unhandled.
type DirectoryNameConstraints struct {
	permitted, excluded [][]rdnSET
	by                  string // the constraining certificate's subject, for errors
}

// ReadDirectoryNameConstraints returns the directory-name subtrees of c's
// name constraints, nil if it has none, and c as Go's verifier is to take
// it: when directory names were all in the extension that Go could not
// read, a copy of c that no longer counts it as unhandled, since Check
// checks them. A subtree of a form neither reads (otherName, x400Address,
// ediPartyName, registeredID) leaves the extension unhandled.
func ReadDirectoryNameConstraints(c *x509.Certificate) (*DirectoryNameConstraints, *x509.Certificate, error) {
	i := slices.IndexFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(OIDNameConstraints) })
	if i < 0 {
		return nil, c, nil
	}
	dc := &DirectoryNameConstraints{by: c.Subject.String()}
	unread := false
	in := cryptobyte.String(c.Extensions[i].Value)
	var nc cryptobyte.String
	if !in.ReadASN1(&nc, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, nil, fmt.Errorf("its name constraints are not a SEQUENCE")
	}
	for _, part := range []struct {
		tag   cbasn1.Tag
		names *[][]rdnSET
	}{{cbasn1.Tag(0).ContextSpecific().Constructed(), &dc.permitted}, {cbasn1.Tag(1).ContextSpecific().Constructed(), &dc.excluded}} {
		var subtrees cryptobyte.String
		var present bool
		if !nc.ReadOptionalASN1(&subtrees, &present, part.tag) {
			return nil, nil, fmt.Errorf("its name constraints are malformed")
		}
		for !subtrees.Empty() {
			var subtree, base cryptobyte.String
			var tag cbasn1.Tag
			if !subtrees.ReadASN1(&subtree, cbasn1.SEQUENCE) || !subtree.ReadAnyASN1(&base, &tag) {
				return nil, nil, fmt.Errorf("a subtree of its name constraints is malformed")
			}
			switch tag {
			case cbasn1.Tag(tagDirectoryName).ContextSpecific().Constructed():
				// RFC 5280 fixes minimum at 0 and leaves maximum out;
				// what other distances would mean, this does not guess.
				// (Go ignores them in the forms it reads.)
				if !subtree.Empty() && !bytes.Equal(subtree, []byte{0x80, 0x01, 0x00}) {
					return nil, nil, fmt.Errorf("a directory-name subtree of its name constraints sets a minimum or maximum distance, which RFC 5280 forbids")
				}
				name, err := parseName(base)
				if err != nil {
					return nil, nil, fmt.Errorf("a directory name of its name constraints: %v", err)
				}
				*part.names = append(*part.names, name)
			case cbasn1.Tag(tagRFC822Name).ContextSpecific(), cbasn1.Tag(tagDNSName).ContextSpecific(),
				cbasn1.Tag(tagURI).ContextSpecific(), cbasn1.Tag(tagIPAddress).ContextSpecific():
				// Go's
			default:
				unread = true
			}
		}
	}
	if !nc.Empty() {
		return nil, nil, fmt.Errorf("its name constraints have data after the excluded subtrees")
	}
	if len(dc.permitted)+len(dc.excluded) == 0 {
		return nil, c, nil
	}
	if !unread && slices.ContainsFunc(c.UnhandledCriticalExtensions, func(id asn1.ObjectIdentifier) bool { return id.Equal(OIDNameConstraints) }) {
		handled := *c
		handled.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(c.UnhandledCriticalExtensions), func(id asn1.ObjectIdentifier) bool { return id.Equal(OIDNameConstraints) })
		c = &handled
	}
	return dc, c, nil
}

// MaxNameComparisons bounds the work of comparing a certificate's names
// with the name constraints of its path, as Go's verifier bounds its own
// (to 250,000 comparisons): a chain of thousands of subtrees and a
// certificate of thousands of names cost an issuance 30 s of CPU. The
// unit is a comparison of a name with a constraint, and of two values
// within them, with one more for every 16 bytes they hold (a comparison
// reads and folds its values, and a common name of 20 KB took 13 s).
const MaxNameComparisons = 1_000_000

// Spend takes n comparisons from budget, and reports an error once it has
// none left.
func Spend(budget *int, n int) error {
	*budget -= n
	if *budget < 0 {
		return fmt.Errorf("checking its names against the name constraints of its path would take more than %d comparisons", MaxNameComparisons)
	}
	return nil
}

// Cost is the comparisons that comparing values of lengths a and b
// counts for.
func Cost(a, b int) int { return 1 + (a+b)/16 }

// Check reports an error if a directory name of cert, its subject unless
// it is empty or one in its subject alternative names, is outside the
// permitted subtrees (when there are any) or within an excluded one. Its
// comparisons come out of budget (see MaxNameComparisons).
func (dc *DirectoryNameConstraints) Check(cert *x509.Certificate, budget *int) error {
	var names [][]rdnSET
	subject, err := parseName(cert.RawSubject)
	if err != nil {
		return fmt.Errorf("the subject: %v", err)
	}
	if len(subject) > 0 {
		names = append(names, subject)
	}
	for _, e := range cert.Extensions {
		if !e.Id.Equal(OIDSubjectAltName) {
			continue
		}
		err := eachAltName(e.Value, func(tag cbasn1.Tag, v []byte) error {
			if tag != cbasn1.Tag(tagDirectoryName).ContextSpecific().Constructed() {
				return nil
			}
			name, err := parseName(v)
			if err != nil {
				return fmt.Errorf("a directory name of the subject alternative names: %v", err)
			}
			names = append(names, name)
			return nil
		})
		if err != nil {
			return err
		}
	}
	// A T61String's bytes are Latin-1 to OpenSSL and may be UTF-8 to
	// another verifier: a name must be permitted however it is read, and
	// is excluded if any reading puts it in an excluded subtree.
	readings := []func(asn1.RawValue) (string, bool){withNumeric(directoryString), withNumeric(latin1String)}
	// Every comparison of a name with a subtree, and of two attributes
	// within them, comes out of the budget: a multi-valued RDN's
	// attributes compare each with each.
	spent := func() error { return Spend(budget, 0) }
	for _, name := range names {
		permitted := func(base []rdnSET) bool {
			for _, read := range readings {
				if !withinSubtree(name, base, canonical, read, budget) {
					return false
				}
			}
			return true
		}
		if ok := len(dc.permitted) == 0 || slices.ContainsFunc(dc.permitted, permitted); spent() != nil {
			return spent()
		} else if !ok {
			return fmt.Errorf("the directory name %q is not within one that %s permits", formatName(name), dc.by)
		}
		// An exclusion takes more names in, folding case beyond ASCII as
		// RFC 4518 does: refusing a name another verifier would take is
		// the safe side.
		excluded := func(base []rdnSET) bool {
			return slices.ContainsFunc(readings, func(read func(asn1.RawValue) (string, bool)) bool {
				return withinSubtree(name, base, folded, read, budget)
			})
		}
		if out := slices.ContainsFunc(dc.excluded, excluded); spent() != nil {
			return spent()
		} else if out {
			return fmt.Errorf("the directory name %q is within one that %s excludes", formatName(name), dc.by)
		}
	}
	return nil
}

// parseName parses a DER Name (an RDNSequence).
func parseName(der []byte) ([]rdnSET, error) {
	var name []rdnSET
	rest, err := asn1.Unmarshal(der, &name)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("data after the name")
	}
	return name, nil
}

func formatName(name []rdnSET) string {
	der, err := asn1.Marshal(name)
	if err != nil {
		return "?"
	}
	s, err := FormatSubject(der)
	if err != nil {
		return "?"
	}
	return s
}

// withinSubtree reports whether name begins with the RDNs of base (RFC
// 5280, 4.2.1.10), string values read with read and compared after fold.
// It takes one from budget, and each comparison of two attributes its
// Cost; with none left it reports false, and the caller must look at the
// budget.
func withinSubtree(name, base []rdnSET, fold func(string) string, read func(asn1.RawValue) (string, bool), budget *int) bool {
	if *budget--; *budget < 0 || len(name) < len(base) {
		return false
	}
	for i, rdn := range base {
		if !equalRDN(name[i], rdn, fold, read, budget) {
			return false
		}
	}
	return true
}

// equalRDN reports whether two RDNs hold the same attributes, in any
// order.
func equalRDN(a, b rdnSET, fold func(string) string, read func(asn1.RawValue) (string, bool), budget *int) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y attribute) bool {
			if *budget -= Cost(len(x.Value.FullBytes), len(y.Value.FullBytes)); *budget < 0 {
				return false
			}
			return equalAttribute(x, y, fold, read)
		}) {
			return false
		}
	}
	return true
}

// equalAttribute compares two attributes as RFC 5280, 7.1, asks: string
// values of any string type after fold; other values by their encoding.
func equalAttribute(a, b attribute, fold func(string) string, read func(asn1.RawValue) (string, bool)) bool {
	if !a.Type.Equal(b.Type) {
		return false
	}
	sa, okA := read(a.Value)
	sb, okB := read(b.Value)
	if okA && okB {
		return fold(sa) == fold(sb)
	}
	return bytes.Equal(a.Value.FullBytes, b.Value.FullBytes)
}

// withNumeric returns read, but reading a NumericString (digits and
// spaces), which no DirectoryString is but Go's parser takes in a
// subject, as the text it is: compared by its bytes, an excluded OU=12345
// let the same value in a NumericString through.
func withNumeric(read func(asn1.RawValue) (string, bool)) func(asn1.RawValue) (string, bool) {
	return func(v asn1.RawValue) (string, bool) {
		if v.Class == asn1.ClassUniversal && v.Tag == asn1.TagNumericString {
			return string(v.Bytes), true
		}
		return read(v)
	}
}

// latin1String is directoryString, but reads a T61String as Latin-1, as
// OpenSSL does when it compares names: "caf" then 0xE9 is the UTF8String
// "café" to it. (Subjects are printed so too.)
func latin1String(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagT61String {
		return directoryString(v)
	}
	r := make([]rune, len(v.Bytes))
	for i, b := range v.Bytes {
		r[i] = rune(b)
	}
	return string(r), true
}

// folded folds the case of every letter and spaces of s, as RFC 4518 does
// in the simplified form of its case folding.
func folded(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// canonical folds the case of ASCII letters and ASCII spaces of s, as
// OpenSSL does: folding more in permitted subtrees would let a name pass
// that OpenSSL refuses.
func canonical(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.Trim(s, " \t\n\r\v\f") {
		switch {
		case strings.ContainsRune(" \t\n\r\v\f", r):
			space = true
			continue
		case space:
			b.WriteByte(' ')
			space = false
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
