package policy_test

import (
	"strings"
	"testing"

	"github.com/openpca/openpca/policy"
)

// TestFoldKey: two keys fold to one exactly when strings.EqualFold takes
// them as the same, and ASCII letters fold to lower case.
func TestFoldKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"aws:ResourceTag/Env", "aws:resourcetag/env"},
		{"environment", "envİronment"}, // U+0130, which strings.ToLower makes "i"
		{"kind", "\u212Aind"},          // the Kelvin sign, which EqualFold takes as k
		{"ÉTAT", "état"},
		{"ΣΟΦΙΑ", "σοφια"},
		{"σ", "ς"},
		{"straße", "STRASSE"}, // not by simple folding
	} {
		same := policy.FoldKey(tc.a) == policy.FoldKey(tc.b)
		if same != strings.EqualFold(tc.a, tc.b) {
			t.Errorf("%q and %q fold to %q and %q; EqualFold says %v", tc.a, tc.b, policy.FoldKey(tc.a), policy.FoldKey(tc.b), strings.EqualFold(tc.a, tc.b))
		}
	}
	for _, key := range []string{"aws:ResourceTag/Team", "AWS:RESOURCETAG/TEAM", "awſ:resourcetag/team"} { // U+017F, the long s, folds to s
		if got := policy.FoldKey(key); got != "aws:resourcetag/team" {
			t.Errorf("%q folds to %q", key, got)
		}
	}
	if got := policy.FoldKey("aws:ResourceTag/Team"); got != "aws:resourcetag/team" {
		t.Errorf("ASCII folds to %q", got)
	}
}
