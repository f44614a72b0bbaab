package awsjson

import "testing"

// TestLoneSurrogate: a \u escape of half a surrogate pair is found in a
// string, and only there; whole pairs, escaped backslashes and other
// escapes are not halves.
func TestLoneSurrogate(t *testing.T) {
	for _, tc := range []struct {
		body string
		lone bool
	}{
		{`{"a":"\ud83d\ude00"}`, false},
		{`{"a":"\uD83D\uDE00 and \u00e9"}`, false},
		{`{"a":"\\ud800"}`, false}, // a backslash, then "ud800"
		{`{"a":"\"\\","b":"x"}`, false},
		{`{"\ud800":"a"}`, true},
		{`{"a":"\ud800"}`, true},
		{`{"a":"\ud800\u0041"}`, true},
		{`{"a":"\ud800x"}`, true},
		{`{"a":"\udfff"}`, true},
		{`{"a":"\\\udc00"}`, true},
	} {
		if got := loneSurrogate([]byte(tc.body)); got != tc.lone {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.lone)
		}
	}
}
