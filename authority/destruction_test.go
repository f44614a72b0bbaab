package authority_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/authority"
)

// TestCheckDestruction: a record of a key to destroy goes on the audit
// key's word alone, for its CA and key, each as the record names them,
// within the word's time; the word names its CA by the CA's own ARN.
func TestCheckDestruction(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, auditlog.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	oskey, _, _ := note.GenerateKey(rand.Reader, auditlog.KeyName)
	other, _ := note.NewSigner(oskey)
	from := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	const id, otherID = "01a25045-a162-7be9-a9cc-5ff3d75890d7", "01a25045-a162-7be9-a9cc-5ff3d75890d8"
	word := auditlog.KeyDestruction{Reason: auditlog.DestructionDeleted, CAID: id, CAARN: openpca.CAARN("us-east-1", "111122223333", id),
		Store: "kms", KeyHandle: []byte("arn:aws:kms:us-east-1:111122223333:key/k"), KeyID: "ab", From: from, Until: from.Add(authority.DestructionWindow)}
	record := func(d auditlog.KeyDestruction) *openpca.CA { // as the CA's row names it
		return &openpca.CA{ID: d.CAID, ARN: d.CAARN, KeyStore: d.Store, KeyHandle: d.KeyHandle, KeyID: d.KeyID}
	}
	sign := func(s note.Signer, d auditlog.KeyDestruction) []byte {
		signed, err := auditlog.NewLog(nil, s, vkey, nil).SignKeyDestruction(d)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	for _, tc := range []struct {
		name   string
		word   func(*auditlog.KeyDestruction)
		record func(*openpca.CA)
		signer note.Signer
		at     time.Time
		want   string // in the error; "" for none
	}{
		{name: "at its time", at: from},
		{name: "the last instant of its time", at: word.Until.Add(-time.Nanosecond)},
		{name: "before its time", at: from.Add(-time.Second), want: authority.ErrNotYet.Error()},
		{name: "lapsed", at: word.Until, want: "lapsed"},
		{name: "no word", record: func(ca *openpca.CA) { ca.Destruction = nil }, at: from, want: "has none"},
		{name: "signed by another key", signer: other, at: from, want: "another key"},
		{name: "another CA's", record: func(ca *openpca.CA) { ca.ID, ca.ARN = otherID, openpca.CAARN("us-east-1", "111122223333", otherID) }, at: from, want: "another CA"},
		{name: "another id, under the CA's ARN", record: func(ca *openpca.CA) { ca.ID = otherID }, at: from, want: "another CA"},
		{name: "another ARN of the CA", record: func(ca *openpca.CA) { ca.ARN = openpca.CAARN("us-east-1", "444455556666", id) }, at: from, want: "another CA"},
		{name: "the ARN of another id, in the record too", word: func(d *auditlog.KeyDestruction) { d.CAARN = openpca.CAARN("us-east-1", "111122223333", otherID) },
			record: func(ca *openpca.CA) { ca.ARN = openpca.CAARN("us-east-1", "111122223333", otherID) }, at: from, want: "another ARN than its own"},
		{name: "another store", record: func(ca *openpca.CA) { ca.KeyStore = "pkcs11" }, at: from, want: "another key"},
		{name: "another handle", record: func(ca *openpca.CA) { ca.KeyHandle = []byte("arn:aws:kms:us-east-1:111122223333:key/other") }, at: from, want: "another key"},
		{name: "another key id", record: func(ca *openpca.CA) { ca.KeyID = "cd" }, at: from, want: "another key"},
		{name: "a key id the word lacks", word: func(d *auditlog.KeyDestruction) { d.KeyID = "" }, at: from, want: "another key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ca := word, record(word)
			if tc.word != nil {
				tc.word(&d)
			}
			s := signer
			if tc.signer != nil {
				s = tc.signer
			}
			ca.Destruction = sign(s, d)
			if tc.record != nil {
				tc.record(ca)
			}
			err := authority.CheckDestruction(ca, vkey, tc.at)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("a word for its CA and key, at %v: %v", tc.at, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%v; want an error saying %q", err, tc.want)
			case tc.want == authority.ErrNotYet.Error() && !errors.Is(err, authority.ErrNotYet):
				t.Errorf("%v; want ErrNotYet", err)
			}
		})
	}
}
