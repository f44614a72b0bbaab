package console

import (
	"strings"
	"testing"
)

// TestVisible: a name shows, as escapes, the characters a browser draws
// as nothing or as blank, and the spaces HTML drops or that look like
// none (at its start or end, after another), so that no two names look
// alike once a browser collapses their white space.
func TestVisible(t *testing.T) {
	for _, tc := range []struct{ name, shown string }{
		{"Prod Root", "Prod Root"},
		{"Prod  Root", `Prod \u0020Root`},
		{" Prod Root", `\u0020Prod Root`},
		{"Prod Root ", `Prod Root\u0020`},
		{"Prod\u00a0Root", "Prod\u00a0Root"},
		{"Prod Root\u00a0", `Prod Root\u00A0`},
		{"Prod \u3000Root", `Prod \u3000Root`},
		{" ", `\u0020`},
		{"bulk-1\u3164\u2800", `bulk-1\u3164\u2800`},
		{"\u202emoc.knab", `\u202Emoc.knab`},
		{"a\U000E0001", `a\U000E0001`},
		{`Prod \u0020Root`, `Prod \\u0020Root`},
		{`a\U000E0001`, `a\\U000E0001`},
		{`CN=a\,b`, `CN=a\,b`},
		{"Prod\\ ", `Prod\\\u0020`},
		{"Prod \\\u200bRoot", `Prod \\\u200BRoot`},
		{`a\`, `a\`},
		{"", ""},
	} {
		if got := visible(tc.name); got != tc.shown {
			t.Errorf("visible(%q) = %q, want %q", tc.name, got, tc.shown)
		}
	}
	// What a browser shows of each: HTML's white space (ASCII's)
	// collapsed, and dropped at the ends.
	seen := map[string]string{}
	for _, name := range []string{"Prod Root", "Prod  Root", " Prod Root", "Prod Root ", "Prod Root\u00a0", "Prod\u3000 Root", "Prod Root\u3164", `Prod \u0020Root`, "Prod\\ ", `Prod\u0020`, "Prod \\\u200bRoot", `Prod \u200BRoot`} {
		shown := strings.Join(strings.FieldsFunc(visible(name), func(r rune) bool { return strings.ContainsRune(" \t\n\f\r", r) }), " ")
		if other, ok := seen[shown]; ok {
			t.Errorf("%q looks like %q: %q", name, other, shown)
		}
		seen[shown] = name
	}
}
