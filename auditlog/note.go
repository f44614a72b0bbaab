package auditlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// OpenNote is note.Open that also verifies a second line of a key it knows.
// note.Open drops such a line unverified, where c2sp.org/signed-note says
// "If the key name and ID match a known key, verifiers MUST verify the
// signature", and c2sp.org/tlog-witness answers a checkpoint with such a
// line that fails with 403.
func OpenNote(msg []byte, known ...note.Verifier) (*note.Note, error) {
	n, err := note.Open(msg, note.VerifierList(known...))
	if err != nil {
		return nil, err
	}
	// note.Open checked the form of every line, and verified the first of
	// each key it knows. Each signature is verified once: a note may
	// repeat a valid line up to note.Open's 100 (in base64 that differs in
	// the bits its last character leaves unused, too), and anyone who
	// holds one signed checkpoint could make each request cost 100
	// verifications.
	verified := map[string]bool{}
	for _, s := range n.Sigs {
		if sig, err := base64.StdEncoding.DecodeString(s.Base64); err == nil {
			verified[s.Name+" "+string(sig)] = true
		}
	}
	for line := range bytes.Lines(msg[len(n.Text)+1:]) {
		name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line), "— "), "\n"), " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) < 5 {
			return nil, &note.InvalidSignatureError{Name: name}
		}
		if verified[name+" "+string(sig)] {
			continue
		}
		verified[name+" "+string(sig)] = true
		hash := binary.BigEndian.Uint32(sig)
		for _, v := range known {
			if v.Name() == name && v.KeyHash() == hash && !v.Verify([]byte(n.Text), sig[4:]) {
				return nil, &note.InvalidSignatureError{Name: name, Hash: hash}
			}
		}
	}
	return n, nil
}
