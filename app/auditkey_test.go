package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/server"
)

// TestAuditKeyInToken makes the audit log's key in a PKCS#11 token: the
// checkpoints verify with it, the database names the key and holds none
// of it, the token will not give it out, a master key rotation leaves it
// where it is, and a server without the token refuses to start rather than
// make another key.
func TestAuditKeyInToken(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	inToken := func(c *app.Config) { c.AuditKeyStore = pkcs11.Name }
	f := newRotationFixture(t, hsm.Use(), inToken)
	checkpoint := func(size int64) {
		t.Helper()
		status, _, body := f.env.Get(t, server.PathCheckpoint+"?certificateAuthorityArn="+url.QueryEscape(f.ca))
		if status != 200 {
			t.Fatalf("checkpoint: %d %s", status, body)
		}
		if c, err := auditlog.OpenCheckpoint(body, f.audit); err != nil || c.Size < size {
			t.Fatalf("the checkpoint signed in the token: %+v, %v", c, err)
		}
	}
	checkpoint(2)
	f.env.Stop(t)

	var value []byte
	if err := f.env.DB(t).QueryRow(`SELECT value FROM settings WHERE name = ?`, auditlog.KeySetting).Scan(&value); err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal(value, &stored); err != nil {
		t.Fatal(err)
	}
	label, _ := stored["keyLabel"].(string)
	if stored["keyStore"] != pkcs11.Name || !strings.HasPrefix(label, "openpca-audit-") || stored["sealedSignerKey"] != nil {
		t.Fatalf("the database's audit key setting: %s", value)
	}
	token, err := pkcs11.Open(hsm.Config())
	if err != nil {
		t.Fatal(err)
	}
	key, err := token.Ed25519(label, false)
	if err != nil {
		t.Fatal(err)
	}
	if vkey, err := note.NewEd25519VerifierKey(auditlog.KeyName, key.Public().(ed25519.PublicKey)); err != nil || vkey != strings.TrimSpace(f.audit) {
		t.Errorf("the token's key %x is not the audit key %s", key.Public(), f.audit)
	}
	extractable, sensitive, err := key.(interface{ Extractable() (bool, bool, error) }).Extractable()
	if err != nil || extractable || !sensitive {
		t.Errorf("CKA_EXTRACTABLE %v, CKA_SENSITIVE %v (%v); want false, true", extractable, sensitive, err)
	}
	token.Close()

	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	f.env.Restart(t)
	f.works(t)
	checkpoint(3)
	f.env.Stop(t)

	without := f.env.Config
	without.KeyStore, without.PKCS11, without.AuditKeyStore = "software", pkcs11.Config{}, "software"
	if a, err := app.Open(context.Background(), without); err == nil {
		a.Close()
		t.Fatal("a server without the token started")
	} else if !strings.Contains(err.Error(), label) {
		t.Errorf("the refusal does not name the key: %v", err)
	}
}

// TestAuditKeyStaysWhereItIs: a database whose audit key is sealed in it
// keeps that key when the server is later told to make new keys in a
// token.
func TestAuditKeyStaysWhereItIs(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	f := newRotationFixture(t, hsm.Use())
	f.env.Stop(t)
	f.env.Config.AuditKeyStore = pkcs11.Name
	f.env.Restart(t)
	f.works(t)
}

// TestAuditKeyInHungToken: with the token that keeps the audit key hung
// mid-call (a network HSM that stopped answering), a checkpoint is
// ServiceUnavailable within its wait, for the signature and for the calls
// queued behind it, rather than a request held for good; once the token
// answers again, checkpoints are signed.
func TestAuditKeyInHungToken(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	env := testenv.Start(t, hsm.Use(), func(c *app.Config) { c.AuditKeyStore = pkcs11.Name })
	caARN, _ := env.NewActiveRoot(t, "Hung audit key")
	path := server.PathCheckpoint + "?certificateAuthorityArn=" + url.QueryEscape(caARN)
	release := hsm.Hang(t)
	statuses := make(chan int)
	for range 2 {
		go func() {
			status, _, _ := env.Get(t, path)
			statuses <- status
		}()
	}
	for range 2 {
		select {
		case status := <-statuses:
			if status != http.StatusServiceUnavailable {
				t.Errorf("a checkpoint while the audit key's token hangs: %d, want 503", status)
			}
		case <-time.After(time.Minute):
			t.Fatal("a checkpoint still waits for the hung token after a minute")
		}
	}
	release()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		status, _, body := env.Get(t, path)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint a minute after the token answers again: %d %s", status, body)
		}
	}
}
