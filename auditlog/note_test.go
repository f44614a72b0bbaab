package auditlog

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// countingVerifier counts the signatures a verifier checks.
type countingVerifier struct {
	note.Verifier
	n *int
}

func (v countingVerifier) Verify(msg, sig []byte) bool {
	*v.n++
	return v.Verifier.Verify(msg, sig)
}

// TestOpenNoteVerifiesEachLineOnce: a note that repeats its one valid
// signature line, up to the 100 lines note.Open takes, costs one
// verification, not one a line; a second, different line of the key is
// still verified, and refused if it does not verify.
func TestOpenNoteVerifiesEachLineOnce(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	signed, err := note.Sign(&note.Note{Text: "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(signed, []byte("\n\n")) + 2
	line := string(signed[i:])
	forged := strings.Replace(line, line[len(line)-6:len(line)-1], "AAAA=", 1)
	// The line in the four base64 spellings of its signature: its last
	// character before the padding has two bits unused.
	var spellings string
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := strings.IndexByte(alphabet, line[len(line)-3])
	for k := range 4 {
		spellings += line[:len(line)-3] + string(alphabet[last&^3|k]) + line[len(line)-2:]
	}
	for _, tt := range []struct {
		name   string
		lines  string
		ok     bool
		checks int
	}{
		{"one line", line, true, 1},
		{"the line 100 times", strings.Repeat(line, 100), true, 1},
		{"its four spellings 25 times", strings.Repeat(spellings, 25), true, 1},
		{"then another of the key that does not verify", strings.Repeat(line, 99) + forged, false, 2},
	} {
		var n int
		_, err := OpenNote(append(signed[:i:i], tt.lines...), countingVerifier{verifier, &n})
		if (err == nil) != tt.ok || n != tt.checks {
			t.Errorf("%s: %v after %d verifications; want ok %v after %d", tt.name, err, n, tt.ok, tt.checks)
		}
	}
}
