package openpca_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openpca/openpca"
)

// TestErrorCause: an error's cause is in its text, which logs show (a CRL
// that KMS kept from being signed was logged without why), and not in
// what a client is told.
func TestErrorCause(t *testing.T) {
	cause := errors.New("dial tcp 10.9.8.7:443: connection refused")
	err := fmt.Errorf("signing a CRL: %w", &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "KMS cannot be reached.", Cause: cause})
	if !strings.Contains(err.Error(), "10.9.8.7") || !errors.Is(err, cause) {
		t.Errorf("the error's text %q lacks its cause", err)
	}
	if got := openpca.ClientMessage(err); got != "ServiceUnavailableException: KMS cannot be reached." {
		t.Errorf("a client is told %q", got)
	}
	if got := openpca.ClientMessage(errors.New("s3: Put http://s3.internal:9000/: no such host")); strings.Contains(got, "s3.internal") || !strings.HasPrefix(got, "InternalFailure") {
		t.Errorf("a client is told %q of another error", got)
	}
}

// TestCutText: text is cut at most at n bytes, never within a character,
// and what is before the cut stays as it was, UTF-8 or not.
func TestCutText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
		cut  bool
	}{
		{"short", 10, "short", false},
		{"exact", 5, "exact", false},
		{"abcdef", 3, "abc", true},
		{"abé", 3, "ab", true},                                  // é is 2 bytes: the cut would split it
		{"ab€cd", 4, "ab", true},                                // € is 3 bytes
		{"a😀b", 4, "a", true},                                   // 😀 is 4 bytes
		{"a😀b", 5, "a😀", true},                                  // the cut falls after it
		{"\xff\xfeabc", 3, "\xff\xfea", true},                   // bytes that are not UTF-8 stay
		{"a\x80\x80\x80\x80\x80", 5, "a\x80\x80\x80\x80", true}, // continuation bytes of no character
		{"😀\x80", 4, "😀", true},                                 // a character followed by a stray continuation byte
		{"€\x80\x80", 4, "€\x80", true},
		{"a😀\x80\x80", 6, "a😀\x80", true},
		{"é\x80", 2, "é", true},
		{"\xe2\x82\xe2\x82\xac", 3, "\xe2\x82", true}, // a character cut short, then a whole one the cut would split
	} {
		got, cut := openpca.CutText(tc.s, tc.n)
		if got != tc.want || cut != tc.cut {
			t.Errorf("CutText(%q, %d) = %q, %v; want %q, %v", tc.s, tc.n, got, cut, tc.want, tc.cut)
		}
	}
}
