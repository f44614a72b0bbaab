package console

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/pki"
)

// caCert makes a CA certificate of key for name, signed by signer as
// issuer (itself if nil), with the key identifiers given.
func caCert(t *testing.T, name string, key *ecdsa.PrivateKey, issuer string, signer crypto.Signer, ski, aki []byte) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: ski, AuthorityKeyId: aki}
	parent := tmpl
	if signer == nil {
		signer = key
	} else {
		parent = &x509.Certificate{Subject: pkix.Name{CommonName: issuer}, SubjectKeyId: aki}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// shape renders a forest as name(children...) in order.
func shape(nodes []*caNode) string {
	var parts []string
	for _, n := range nodes {
		s := n.Cert.Subject.CommonName
		if len(n.Children) > 0 {
			s += "(" + shape(n.Children) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// TestHierarchy: a CA is put under the CA whose key signed its
// certificate, not under whichever claims the key identifier it names; a
// decoy that claims another CA's identifiers moves nothing and hides
// nothing; and CAs that sign each other are each shown once.
func TestHierarchy(t *testing.T) {
	rootKey, subKey, decoyKey, outsideKey, xKey, yKey := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	root := caCert(t, "root", rootKey, "", nil, []byte("root"), nil)
	sub := caCert(t, "sub", subKey, "root", rootKey, []byte("sub"), []byte("root"))
	leafCA := caCert(t, "leafca", newKey(t), "sub", subKey, []byte("leafca"), []byte("sub"))
	// Another account's imported CA: it claims the root's key identifier
	// as its own, and the subordinate's as its issuer's, and names the
	// subordinate as its issuer, but an outside key signed it.
	decoy := caCert(t, "decoy", decoyKey, "sub", outsideKey, []byte("root"), []byte("sub"))
	x := caCert(t, "x", xKey, "y", yKey, []byte("x"), []byte("y"))
	y := caCert(t, "y", yKey, "x", xKey, []byte("y"), []byte("x"))

	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		want  string
	}{
		{"a chain", []*x509.Certificate{leafCA, sub, root}, "root(sub(leafca))"},
		{"a decoy shared after them", []*x509.Certificate{root, sub, leafCA, decoy}, "root(sub(leafca)) decoy"},
		{"a decoy first", []*x509.Certificate{decoy, root, sub, leafCA}, "decoy root(sub(leafca))"},
		{"a ring", []*x509.Certificate{x, y}, "x(y)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []*caNode
			for _, c := range tc.certs {
				nodes = append(nodes, &caNode{Cert: c})
			}
			roots := hierarchy(nodes, pki.CheckSignatureFrom)
			if got := shape(roots); got != tc.want {
				t.Errorf("%s, want %s", got, tc.want)
			}
			count := 0
			var walk func([]*caNode)
			walk = func(ns []*caNode) {
				for _, n := range ns {
					count++
					walk(n.Children)
				}
			}
			walk(roots)
			if count != len(nodes) || slices.Contains(roots, nil) {
				t.Errorf("%d CAs shown, want %d", count, len(nodes))
			}
		})
	}
}

// TestHierarchyBounded: CAs another account shares that all claim one
// key identifier and one another's names, none of them signed by another,
// cost at most a signature check per CA and a few more (each was checked
// against each), and the caller's own CAs, shared after, are still put in
// their tree.
func TestHierarchyBounded(t *testing.T) {
	rootKey, subKey, outside := newKey(t), newKey(t), newKey(t)
	var nodes []*caNode
	for i := range 80 {
		name, issuer := "twin-1", "twin-2"
		if i%2 == 1 {
			name, issuer = issuer, name
		}
		nodes = append(nodes, &caNode{Cert: caCert(t, name, newKey(t), issuer, outside, []byte("twin"), []byte("twin")), SharedBy: "444455556666"})
	}
	root := caCert(t, "root", rootKey, "", nil, []byte("root"), nil)
	sub := caCert(t, "sub", subKey, "root", rootKey, []byte("sub"), []byte("root"))
	leafCA := caCert(t, "leafca", newKey(t), "sub", subKey, []byte("leafca"), []byte("sub"))
	nodes = append(nodes, &caNode{Cert: leafCA}, &caNode{Cert: sub}, &caNode{Cert: root})
	checks := 0
	roots := hierarchy(nodes, func(c, parent *x509.Certificate) error {
		checks++
		return pki.CheckSignatureFrom(c, parent)
	})
	if max := len(nodes) + parentChecksSpare; checks > max {
		t.Errorf("%d signatures checked for %d CAs, want %d at most", checks, len(nodes), max)
	}
	if got := shape(roots[len(roots)-1:]); got != "root(sub(leafca))" {
		t.Errorf("the caller's own CAs: %s", got)
	}
	if len(roots) != 81 {
		t.Errorf("%d roots, want the 80 shared and the caller's", len(roots))
	}
}

// TestHierarchyDecoys: another account's CAs that claim the key
// identifier and name of a parent shared by a third are tried once per
// account, however many are listed before the parent (four of them
// used a CA's tries up); and a CA tries at most four of its own
// account's.
func TestHierarchyDecoys(t *testing.T) {
	bKey, subKey, outside := newKey(t), newKey(t), newKey(t)
	bRoot := caCert(t, "B Root", bKey, "", nil, []byte("broot"), nil)
	sub := caCert(t, "sub", subKey, "B Root", bKey, []byte("sub"), []byte("broot"))
	nodes := []*caNode{{Cert: sub}}
	for range 6 {
		nodes = append(nodes, &caNode{Cert: caCert(t, "B Root", newKey(t), "Other", outside, []byte("broot"), []byte("other")), SharedBy: "666677778888"})
	}
	nodes = append(nodes, &caNode{Cert: bRoot, SharedBy: "555566667777"})
	checks := 0
	verify := func(c, parent *x509.Certificate) error {
		checks++
		return pki.CheckSignatureFrom(c, parent)
	}
	if got := shape(hierarchy(nodes, verify)); !strings.HasSuffix(got, "B Root(sub)") || checks != 2 {
		t.Errorf("%s after %d checks, want the subordinate under its root after 2", got, checks)
	}

	// Ten of the caller's own that claim a parent's identifiers.
	nodes, checks = []*caNode{{Cert: sub}}, 0
	for range 10 {
		nodes = append(nodes, &caNode{Cert: caCert(t, "B Root", newKey(t), "Other", outside, []byte("broot"), []byte("other"))})
	}
	hierarchy(nodes, verify)
	if checks != maxParentTries {
		t.Errorf("%d checks, want %d", checks, maxParentTries)
	}
}

// TestCheckpointSigners: the CA page names each signature's signer, and a
// signature line without a name names none rather than failing the page.
func TestCheckpointSigners(t *testing.T) {
	note := "example.com/log\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-12-01T00:00:00Z\n\n— openpca-audit AAAA\n— \n— witness.example BBBB\n"
	cp := checkpointOf([]byte(note))
	if cp == nil || strings.Join(cp.Signers, ",") != "openpca-audit,witness.example" {
		t.Errorf("signers %+v", cp)
	}
}

// TestSignaturesRemembered: the CA page's signature checks are remembered
// by the pair of certificates, whether they held or not, so that loading
// the page again checks none: each check of a P-521 key is about 2 ms of
// CPU, for each CA at each load. A certificate made again (a renewal of
// the same key) is checked again.
func TestSignaturesRemembered(t *testing.T) {
	rootKey, subKey, otherKey := newKey(t), newKey(t), newKey(t)
	ski := []byte{1}
	root := caCert(t, "Root", rootKey, "", nil, ski, nil)
	other := caCert(t, "Root", otherKey, "", nil, ski, nil)
	sub := caCert(t, "Sub", subKey, "Root", rootKey, []byte{2}, ski)
	renewed := caCert(t, "Sub", subKey, "Root", rootKey, []byte{2}, ski)
	s := newSignatures()
	checks := 0
	s.check = func(c, parent *x509.Certificate) error {
		checks++
		return pki.CheckSignatureFrom(c, parent)
	}
	for _, tc := range []struct {
		name      string
		c, parent *x509.Certificate
		signed    bool
		checks    int // in all, after it
	}{
		{"the parent", sub, root, true, 1},
		{"the parent again", sub, root, true, 1},
		{"a decoy", sub, other, false, 2},
		{"the decoy again", sub, other, false, 2},
		{"a certificate made again", renewed, root, true, 3},
		{"the first once more", sub, root, true, 3},
	} {
		if err := s.verify(tc.c, tc.parent); (err == nil) != tc.signed || checks != tc.checks {
			t.Errorf("%s: %v after %d checks, want signed %v after %d", tc.name, err, checks, tc.signed, tc.checks)
		}
	}
}
