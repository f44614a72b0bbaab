package auditlog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// A KeyDestruction is what the audit key signs to let a server destroy a
// CA's key in a token or KMS, from From until Until: the CA was deleted,
// and its restoration period ends at From; or the key was made for a CA
// that may never be stored, and is past its grace at From. A server
// destroys such a key only on this word, checked against the audit key
// it holds: the database alone (a CA marked deleted in it, or a record
// of a key made written into it) would let whoever can write the
// database have every CA's key destroyed, which no backup brings back.
// Until bounds how long a word taken from a copy of the database (its
// CA restored, or stored, since) serves.
//
//	openpca key destruction
//	<Reason>
//	<CA id>
//	<CA ARN>
//	<key store>
//	<base64 key handle>
//	<key id, or - while the key is not made>
//	<From, RFC 3339>
//	<Until, RFC 3339>
type KeyDestruction struct {
	Reason             string // DestructionDeleted or DestructionNeverStored
	CAID, CAARN, Store string
	KeyHandle          []byte
	KeyID              string
	From, Until        time.Time
}

// The reasons a key may be destroyed for.
const (
	DestructionDeleted     = "deleted"
	DestructionNeverStored = "never-stored"
)

const keyDestructionTitle = "openpca key destruction"

// Text formats the statement as a note's text.
func (d KeyDestruction) Text() (string, error) {
	if d.Reason != DestructionDeleted && d.Reason != DestructionNeverStored {
		return "", fmt.Errorf("auditlog: a key destruction's reason %q is neither %s nor %s", d.Reason, DestructionDeleted, DestructionNeverStored)
	}
	keyID := d.KeyID
	if keyID == "" {
		keyID = "-"
	}
	for _, f := range []string{d.CAID, d.CAARN, d.Store, keyID} {
		if f == "" || strings.ContainsAny(f, "\n") {
			return "", fmt.Errorf("auditlog: a key destruction's field %q is empty or has a line break", f)
		}
	}
	if !d.Until.After(d.From) {
		return "", fmt.Errorf("auditlog: a key destruction's time, from %s until %s, is empty", d.From, d.Until)
	}
	return fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", keyDestructionTitle, d.Reason, d.CAID, d.CAARN, d.Store,
		base64.StdEncoding.EncodeToString(d.KeyHandle), keyID, d.From.UTC().Format(time.RFC3339Nano), d.Until.UTC().Format(time.RFC3339Nano)), nil
}

// SignKeyDestruction signs d with the server's audit key.
func (l *Log) SignKeyDestruction(d KeyDestruction) ([]byte, error) {
	text, err := d.Text()
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: text}, l.signer)
}

// OpenKeyDestruction checks that signed is a key destruction signed by
// the key of verifierKey, and parses it. Only the text a server writes
// (Text) parses.
func OpenKeyDestruction(signed []byte, verifierKey string) (KeyDestruction, error) {
	lines, err := openStatement(signed, verifierKey, "the key destruction", keyDestructionTitle, 9)
	if err != nil {
		return KeyDestruction{}, err
	}
	d := KeyDestruction{Reason: lines[1], CAID: lines[2], CAARN: lines[3], Store: lines[4], KeyID: lines[6]}
	if d.KeyID == "-" {
		d.KeyID = ""
	}
	if d.KeyHandle, err = base64.StdEncoding.DecodeString(lines[5]); err != nil {
		return KeyDestruction{}, fmt.Errorf("the key destruction's key handle %q is not base64", lines[5])
	}
	for i, t := range []*time.Time{&d.From, &d.Until} {
		if *t, err = time.Parse(time.RFC3339Nano, lines[7+i]); err != nil {
			return KeyDestruction{}, fmt.Errorf("the key destruction's time %q is not RFC 3339", lines[7+i])
		}
	}
	if again, err := d.Text(); err != nil || again != strings.Join(lines, "\n")+"\n" {
		return KeyDestruction{}, errors.New("the key destruction is not written as a server writes them")
	}
	return d, nil
}
