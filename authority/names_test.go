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
		"-a.example": false, "a-.example": false, "a b.example": false, "a_b.example": true, "Payments Service": false, "": false} {
		if got := hostName(name); got != want {
			t.Errorf("hostName(%q) = %v", name, got)
		}
	}
	for _, tc := range []struct {
		cn       string
		host     string
		wildcard bool
	}{
		{"app.example", "app.example", false},
		{"app.example.", "app.example", false},
		{"*.app.example", "app.example", true},
		{"w*.app.example", "app.example", true},
		{"*.example", "example", true},
		{"*", "", false},
		{"a.*.example", "", false},
		{"* Team.example", "", false},
		{"Payments Service", "", false},
	} {
		if host, wildcard := hostPattern(tc.cn); host != tc.host || wildcard != tc.wildcard {
			t.Errorf("hostPattern(%q) = %q, %v; want %q, %v", tc.cn, host, wildcard, tc.host, tc.wildcard)
		}
	}
	// A wildcard is permitted where every name it matches is, and excluded
	// where any is.
	for _, tc := range []struct {
		domain            string
		permits, excludes bool
	}{
		{"corp.example", true, true},
		{".corp.example", true, true},
		{"app.corp.example", false, true},
		{".app.corp.example", false, false},
		{"a.app.corp.example", false, false},
		{"example", true, true},
		{"bank.example", false, false},
	} {
		if got := domainHolds("corp.example", true, tc.domain); got != tc.permits {
			t.Errorf("a constraint %q permits *.corp.example: %v", tc.domain, got)
		}
		if got := domainTouches("corp.example", true, tc.domain); got != tc.excludes {
			t.Errorf("a constraint %q excludes part of *.corp.example: %v", tc.domain, got)
		}
	}
}
