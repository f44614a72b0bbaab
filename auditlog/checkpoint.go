package auditlog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the head of one CA's log tree at a size: the body of a
// signed note in the C2SP tlog-checkpoint format, whose one extension line
// says when the server signed it.
//
//	openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/…
//	1024
//	<base64 root hash>
//	time 2026-11-23T10:00:00Z
type Checkpoint struct {
	Origin string // Origin(the CA's ARN)
	Size   int64
	Root   tlog.Hash
	Time   time.Time
}

// Origin is the origin line of the checkpoints of a CA's log.
func Origin(caARN string) string { return "openpca/" + caARN }

// KeyName is the name of the server's audit signing key in its notes.
const KeyName = "openpca-audit"

// Text formats the checkpoint as a note's text.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]), c.Time.UTC().Format(time.RFC3339))
}

// MaxTreeSize bounds the size of the trees whose checkpoints and proofs
// are read: x/mod's tlog, which checks the proofs, loops for ever on a
// tree of more than 2^62 entries (its maxpow2), and no log comes near.
const MaxTreeSize = 1 << 62

// ParseCheckpoint parses a note's text as a Checkpoint, written as a
// server writes them (Text), and no other way: two texts of one
// checkpoint would be two notes, each signed or cosigned apart.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if !strings.HasSuffix(text, "\n") || len(lines) != 4 {
		return c, errors.New("a checkpoint has four lines: origin, size, root hash, time")
	}
	c.Origin = lines[0]
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint size %q is not a number", lines[1])
	}
	if size > MaxTreeSize {
		return c, fmt.Errorf("checkpoint size %d is past the largest a log can have, %d", size, int64(MaxTreeSize))
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return c, fmt.Errorf("checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(c.Root[:], root)
	at, ok := strings.CutPrefix(lines[3], "time ")
	if c.Time, err = time.Parse(time.RFC3339, at); !ok || err != nil {
		return c, fmt.Errorf("checkpoint time line %q is not \"time <RFC 3339>\"", lines[3])
	}
	if c.Text() != text {
		return c, errors.New("the checkpoint is not written as a server writes them (its root hash's base64, or its time)")
	}
	return c, nil
}

// Sign signs the checkpoint with the server's audit key.
func (c Checkpoint) Sign(s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// OpenCheckpoint checks that signed is a checkpoint signed by the key of
// verifierKey, and parses it.
func OpenCheckpoint(signed []byte, verifierKey string) (Checkpoint, error) {
	text, err := openSigned(signed, verifierKey, "the checkpoint")
	if err != nil {
		return Checkpoint{}, err
	}
	return ParseCheckpoint(text)
}

// openStatement checks that signed, what is named, is a note signed by
// the key of verifierKey whose text is n lines, each ended, the first
// title, and returns them.
func openStatement(signed []byte, verifierKey, what, title string, n int) ([]string, error) {
	text, err := openSigned(signed, verifierKey, what)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if !strings.HasSuffix(text, "\n") || len(lines) != n || lines[0] != title {
		return nil, fmt.Errorf("%s is not one: it has %d lines, the first %s", what, n, title)
	}
	return lines, nil
}

// openSigned checks that signed, what is named, is a note signed by the key
// of verifierKey, and returns its text.
func openSigned(signed []byte, verifierKey, what string) (string, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", fmt.Errorf("the public key %q is not an audit verifier key: %v", verifierKey, err)
	}
	n, err := OpenNote(signed, v)
	if err != nil {
		if _, ok := errors.AsType[*note.UnverifiedNoteError](err); ok {
			return "", fmt.Errorf("%s is not signed by the key %s (it was signed by another key)", what, verifierKey)
		}
		if _, ok := errors.AsType[*note.InvalidSignatureError](err); ok {
			return "", fmt.Errorf("%s's signature is not valid: %s was altered", what, what)
		}
		return "", fmt.Errorf("%s is not a signed note: %v", what, err)
	}
	return n.Text, nil
}
