package authority

import "testing"

func TestCommonNameRules(t *testing.T) {
	for _, tc := range []struct {
		name, domain string
		in           bool
	}{
		{"corp.example", "corp.example", true},
		{"app.corp.example", "corp.example", true},
		{"APP.Corp.Example", "corp.EXAMPLE", true},
		{"evilcorp.example", "corp.example", false},
		{"corp.example", ".corp.example", false},
		{"app.corp.example", ".corp.example", true},
		{"anything.example", "", true},
	} {
		if got := inDomain(tc.name, tc.domain); got != tc.in {
			t.Errorf("inDomain(%q, %q) = %v", tc.name, tc.domain, got)
		}
	}
	for name, want := range map[string]bool{"app.example": true, "a-b.c9.example": true, "localhost": false, "a..example": false,
		"-a.example": false, "a-.example": false, "a b.example": false, "a_b.example": false, "Payments Service": false, "": false} {
		if got := hostName(name); got != want {
			t.Errorf("hostName(%q) = %v", name, got)
		}
	}
}
