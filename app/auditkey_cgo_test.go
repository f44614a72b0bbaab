//go:build cgo

package app_test

import (
	"crypto/ed25519"
	"encoding/asn1"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pkcs11"
)

// TestLooseAuditKeyWarned: a server whose audit key in the token allows
// more than signing (made by an earlier version, with the token's default
// attributes) says so, and what it allows, at each start.
func TestLooseAuditKeyWarned(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	env := testenv.Start(t, hsm.Use(), func(c *app.Config) { c.AuditKeyStore = pkcs11.Name })
	env.Stop(t)
	// The store's login first: it initializes the module, which it could
	// not once another has.
	token, err := pkcs11.Open(hsm.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer token.Close()
	edPair(t, hsm, "old")
	key, err := token.Ed25519("old", false)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey(auditlog.KeyName, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	value, _ := json.Marshal(map[string]string{"verifierKey": vkey, "keyStore": pkcs11.Name, "keyLabel": "old"})
	if _, err := env.DB(t).Exec(`UPDATE settings SET value = ? WHERE name = ?`, value, auditlog.KeySetting); err != nil {
		t.Fatal(err)
	}
	token.Close()
	var logs testenv.SyncBuffer
	env.Config.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	env.Restart(t)
	if got := logs.String(); !strings.Contains(got, "allows more than signing checkpoints") || !strings.Contains(got, `label=old allows="modifiable, decrypt, unwrap"`) {
		t.Errorf("no warning of the audit key that allows more than signing:\n%s", got)
	}
}

// edPair makes an Ed25519 key pair in hsm's token under label, with the
// attributes an earlier version gave the audit key (the token's defaults
// for the rest), through a session of the test's own.
func edPair(t *testing.T, hsm *testenv.SoftHSM, label string) {
	t.Helper()
	m := p11.New(testenv.SoftHSMModule)
	defer m.Destroy()
	slots, err := m.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		if info, err := m.GetTokenInfo(slot); err != nil || info.Label != hsm.Label {
			continue
		}
		session, err := m.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer m.CloseSession(session)
		params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 112})
		common := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_ID, []byte(label))}
		if _, _, err := m.GenerateKeyPair(session, []*p11.Mechanism{p11.NewMechanism(0x1055, nil)}, // CKM_EC_EDWARDS_KEY_PAIR_GEN
			append(common, p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_PARAMS, params)),
			append(common, p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_PRIVATE, true), p11.NewAttribute(p11.CKA_SENSITIVE, true),
				p11.NewAttribute(p11.CKA_EXTRACTABLE, false))); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no token %q", hsm.Label)
}
