package auditlog_test

import (
	"bytes"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/auditlog"
)

// TestKeyDestruction: a key destruction signed by the audit key opens as
// it was signed, with and without a key id; one altered, signed by
// another key, of another kind, or written otherwise than a server
// writes it, does not; and one that could not be read back is not
// signed.
func TestKeyDestruction(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, auditlog.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	_, otherKey, _ := note.GenerateKey(rand.Reader, auditlog.KeyName)
	log := auditlog.NewLog(nil, signer, vkey, time.Now)
	deleted := auditlog.KeyDestruction{Reason: auditlog.DestructionDeleted, CAID: "0194-ca", CAARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/0194-ca",
		Store: "pkcs11", KeyHandle: []byte{0, 1, '\n', 0xff}, KeyID: "9a0b", From: time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)}
	deleted.Until = deleted.From.Add(7 * 24 * time.Hour)
	made := deleted
	made.Reason, made.KeyID, made.From = auditlog.DestructionNeverStored, "", deleted.From.Add(time.Hour)
	for _, d := range []auditlog.KeyDestruction{deleted, made} {
		signed, err := log.SignKeyDestruction(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := auditlog.OpenKeyDestruction(signed, vkey); err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("OpenKeyDestruction = %+v, %v; want %+v", got, err, d)
		}
	}
	signed, _ := log.SignKeyDestruction(deleted)
	sign := func(text string) []byte {
		n, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	text, _ := deleted.Text()
	checkpoint, _ := auditlog.Checkpoint{Origin: "o", Size: 1, Time: deleted.From}.Sign(signer)
	for _, tt := range []struct {
		name   string
		signed []byte
		key    string
		want   string
	}{
		{"other key", signed, otherKey, "signed by another key"},
		{"altered", bytes.Replace(signed, []byte("\n0194-ca\n"), []byte("\n0195-ca\n"), 1), vkey, "signature is not valid"},
		{"a checkpoint", checkpoint, vkey, "is not one"},
		{"a time written otherwise", sign(strings.Replace(text, ".123456Z", ".123456000Z", 1)), vkey, "not written as a server writes them"},
		{"a key handle written otherwise", sign(strings.Replace(text, "AAEK/w==", "AAEK/w", 1)), vkey, "not base64"},
		{"another reason", sign(strings.Replace(text, "\ndeleted\n", "\nrevoked\n", 1)), vkey, "not written as a server writes them"},
		{"a key id of none written as such", sign(strings.Replace(text, "\n9a0b\n", "\n\n", 1)), vkey, "not written as a server writes them"},
	} {
		if _, err := auditlog.OpenKeyDestruction(tt.signed, tt.key); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	for _, bad := range []auditlog.KeyDestruction{
		{Reason: "revoked", CAID: "a", CAARN: "b", Store: "kms"},
		{Reason: auditlog.DestructionDeleted, CAARN: "b", Store: "kms"},
		{Reason: auditlog.DestructionDeleted, CAID: "a", CAARN: "b\nc", Store: "kms"},
		{Reason: auditlog.DestructionDeleted, CAID: "a", CAARN: "b", Store: "kms", KeyID: "-\n"},
		{Reason: auditlog.DestructionDeleted, CAID: "a", CAARN: "b", Store: "kms", From: deleted.From, Until: deleted.From},
	} {
		if signed, err := log.SignKeyDestruction(bad); err == nil {
			t.Errorf("signed %+v:\n%s", bad, signed)
		}
	}
}
