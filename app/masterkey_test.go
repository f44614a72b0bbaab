package app_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/console"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/sqlstore"
)

// rotationFixture is a server over HTTPS with a CA in the software store,
// a second account's key, and what must still work after a rotation.
type rotationFixture struct {
	env    *testenv.Env
	ca     string
	other  aws.Credentials // of the other account's key
	audit  string          // the audit log's public key
	tlsCA  string          // the local TLS CA's bundle
	leaf   []byte
	master string // the master key file
}

func newRotationFixture(t *testing.T, opts ...testenv.Option) *rotationFixture {
	f := &rotationFixture{env: testenv.Start(t, append(opts, func(c *app.Config) { c.TLSSelfSigned = true })...)}
	f.master = filepath.Join(f.env.Config.DataDir, "master.key")
	f.ca, _ = f.env.NewActiveRoot(t, "Rotated")
	client, _ := f.env.NewAccount(t, "222233334444")
	var err error
	if f.other, err = client.Options().Credentials.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.leaf = testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "rotated.example"}}).CSRPEM
	f.audit = auditKey(t, f.env)
	f.tlsCA = readFile(t, filepath.Join(f.env.Config.DataDir, "tls", "ca.pem"))
	return f
}

func auditKey(t *testing.T, env *testenv.Env) string {
	t.Helper()
	res, err := (&http.Client{Transport: env.Transport()}).Get(env.URL + "/audit-log/public-key")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return string(body)
}

// works checks that everything the master key seals still opens: the CA's
// key signs, both accounts' keys authenticate, HTTPS serves with the same
// local CA, and the audit key is the same.
func (f *rotationFixture) works(t *testing.T) {
	t.Helper()
	f.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &f.ca, Csr: f.leaf})
	other := testenv.NewClientWith(f.env.URL, f.env.Transport(), f.other.AccessKeyID, f.other.SecretAccessKey)
	if _, err := other.ListCertificateAuthorities(context.Background(), &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("the other account's key: %v", err)
	}
	if got := auditKey(t, f.env); got != f.audit {
		t.Errorf("the audit key changed: %s, was %s", got, f.audit)
	}
	if readFile(t, filepath.Join(f.env.Config.DataDir, "tls", "ca.pem")) != f.tlsCA {
		t.Error("the local TLS CA was made anew")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMasterKeyRotation rotates the master key of a stopped server: it
// starts again with the new key, everything works, and the old key no
// longer opens the database. A running server keeps the rotation out.
func TestMasterKeyRotation(t *testing.T) {
	f := newRotationFixture(t)
	old := readFile(t, f.master)
	next, err := app.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err == nil {
		t.Fatal("rotated the master key under a running server")
	}
	f.env.Stop(t)
	sessionKey := func() []byte {
		t.Helper()
		a, err := app.OpenAdmin(context.Background(), f.env.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		sealed, err := a.Store.Setting(context.Background(), console.SessionKeySetting)
		if err != nil {
			t.Fatal(err)
		}
		key, err := a.Sealer.Open(sealed, []byte(console.SessionKeySetting))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	before := sessionKey()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	// A rotation because the master key leaked ends what it let be
	// forged: the console's sessions.
	if bytes.Equal(sessionKey(), before) {
		t.Error("the console's sessions' key is the same after the rotation")
	}
	if got := readFile(t, f.master); got == old || got != next+"\n" {
		t.Fatalf("the master key file holds %q after the rotation", got)
	}
	f.env.Restart(t)
	f.works(t)
	oldCfg := f.env.Config
	oldCfg.MasterKey = old
	if a, err := app.OpenAdmin(context.Background(), oldCfg); err == nil {
		a.Close()
		t.Error("the old master key still opens the database")
	}
}

// TestInterruptedMasterKeyRotation leaves a rotation as a crash would at
// each point where it could, and starts the server: it settles on the key
// the database is sealed with, and loses nothing. So it does when the
// start also upgrades the database from before 2026-12, whose access
// keys' secrets it binds to their accounts, each with the key that
// sealed it.
func TestInterruptedMasterKeyRotation(t *testing.T) {
	for _, upgrade := range []bool{false, true} {
		suffix := ""
		if upgrade {
			suffix = ", with an upgrade"
		}
		t.Run("before the database was resealed"+suffix, func(t *testing.T) {
			f := newRotationFixture(t)
			f.env.Stop(t)
			old := readFile(t, f.master)
			next, _ := app.NewMasterKey()
			os.WriteFile(f.master+".new", []byte(next+"\n"), 0o600)
			if upgrade {
				f.unbind(t, old)
			}
			f.env.Restart(t)
			f.works(t)
			if got := readFile(t, f.master); got != old {
				t.Error("the master key changed")
			}
			if _, err := os.Stat(f.master + ".new"); !os.IsNotExist(err) {
				t.Errorf("the new key's file is still there: %v", err)
			}
		})
		for _, settler := range []string{"the server", "an operator's command"} {
			if upgrade && settler != "the server" { // a command upgrades no database
				continue
			}
			t.Run("after the database was resealed, before the key file was renamed, settled by "+settler+suffix, func(t *testing.T) {
				f := newRotationFixture(t)
				f.env.Stop(t)
				old := readFile(t, f.master)
				tlsKey := filepath.Join(f.env.Config.DataDir, "tls", "ca.key.sealed")
				oldTLSKey := readFile(t, tlsKey)
				next, _ := app.NewMasterKey()
				if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
					t.Fatal(err)
				}
				// Put the files back as they were before the TLS CA's key was
				// resealed and the key file renamed.
				os.Rename(f.master, f.master+".new")
				os.WriteFile(f.master, []byte(old), 0o600)
				os.WriteFile(tlsKey, []byte(oldTLSKey), 0o600)
				if upgrade {
					f.unbind(t, next)
				}
				if settler != "the server" {
					a, err := app.OpenAdmin(context.Background(), f.env.Config)
					if err != nil {
						t.Fatal(err)
					}
					a.Close()
				}
				f.env.Restart(t)
				f.works(t)
				if got := readFile(t, f.master); got != next+"\n" {
					t.Errorf("the master key file holds %q, want the new key", got)
				}
			})
		}
	}
}

// unbind has the other account's key's secret sealed with key (base64)
// as versions before 2026-12 sealed it, bound to its id alone, and the
// database of such a version, without the migration that binds it.
func (f *rotationFixture) unbind(t *testing.T, key string) {
	t.Helper()
	k, err := seal.ParseKey(strings.TrimSpace(key))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	unbound, err := sealer.Seal([]byte(f.other.SecretAccessKey), auth.UnboundAssociatedData(f.other.AccessKeyID))
	if err != nil {
		t.Fatal(err)
	}
	db := f.env.DB(t)
	if _, err := db.Exec(`UPDATE access_keys SET sealed_secret = ? WHERE id = ?`, unbound, f.other.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 33`); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedRotationOfAGivenKey: a rotation of a master key given
// in OPENPCA_MASTER_KEY, stopped after the database was resealed and
// before the TLS CA's key was, leaves no file for a start to settle it
// by. The server started with the new key says how to end it: with
// --tls-self-signed it refuses to start, without it warns (the key is
// kept for a later --tls-self-signed). Started with the old key as the
// previous one, with or without --tls-self-signed, it reseals the TLS
// CA's key; after that the new key alone starts it.
func TestInterruptedRotationOfAGivenKey(t *testing.T) {
	old, err := app.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	f := newRotationFixture(t, func(c *app.Config) { c.MasterKey = old })
	f.env.Stop(t)
	tlsKey := filepath.Join(f.env.Config.DataDir, "tls", "ca.key.sealed")
	oldTLSKey := readFile(t, tlsKey)
	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(t.Context(), f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tlsKey, []byte(oldTLSKey), 0o600) // as before its reseal
	f.env.Config.MasterKey = next
	if a, err := app.Open(t.Context(), f.env.Config); err == nil || !strings.Contains(err.Error(), "start once with the old key as the previous one") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("a start with the new key alone: %v", err)
	}
	var logs testenv.SyncBuffer
	f.env.Config.TLSSelfSigned, f.env.Config.Logger = false, slog.New(slog.NewTextHandler(&logs, nil))
	f.env.Restart(t)
	f.env.Stop(t)
	if !strings.Contains(logs.String(), "start once with the old key as the previous one") {
		t.Errorf("a start without --tls-self-signed did not warn of the TLS CA's key:\n%s", logs.String())
	}
	f.env.Config.PreviousMasterKeys = []string{old}
	f.env.Restart(t)
	f.env.Stop(t)
	f.env.Config.TLSSelfSigned, f.env.Config.PreviousMasterKeys = true, nil
	f.env.Restart(t)
	f.works(t)
}

// TestRotationCutAnywhere: a rotation whose command is stopped (SIGINT or
// SIGTERM cancel its context) at any point leaves a data folder that opens
// with its own key files: the database is never left sealed with a key
// the rotation removed.
func TestRotationCutAnywhere(t *testing.T) {
	f := newRotationFixture(t)
	f.env.Stop(t)
	start := time.Now()
	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	whole := time.Since(start)
	cut, done := 0, 0
	for i := range 60 {
		next, _ := app.NewMasterKey()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Duration(i)*whole/40, cancel)
		if err := app.RotateMasterKey(ctx, f.env.Config, next); err != nil {
			cut++
		} else {
			done++
		}
		cancel()
		a, err := app.OpenAdmin(context.Background(), f.env.Config)
		if err != nil {
			t.Fatalf("after a rotation cut at %v of %v: the folder does not open: %v", time.Duration(i)*whole/40, whole, err)
		}
		a.Close()
	}
	t.Logf("%d rotations cut, %d done", cut, done)
	f.env.Restart(t)
	f.works(t)
}

// backupOf backs up the data folder of env, and returns the backup's path.
func backupOf(t *testing.T, env *testenv.Env) string {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	a, _, err := app.Backup(context.Background(), env.Config, backup)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return backup
}

// TestRestoreSettlesInterruptedRotation restores a backup into a folder
// that kept the master key files of an interrupted rotation (the new
// key's file beside the old): the restore settles the rotation on the key
// the backup is sealed with, rather than failing on its own lock.
func TestRestoreSettlesInterruptedRotation(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	key := readFile(t, filepath.Join(env.Config.DataDir, "master.key"))
	other, _ := app.NewMasterKey()
	for _, tc := range []struct {
		name, master, pending string
	}{
		{"before the database was resealed", key, other + "\n"},
		{"after the database was resealed", other + "\n", key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := env.Config
			cfg.DataDir = t.TempDir()
			cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
			os.WriteFile(cfg.MasterKeyFile, []byte(tc.master), 0o600)
			os.WriteFile(cfg.MasterKeyFile+".new", []byte(tc.pending), 0o600)
			a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			if got := readFile(t, cfg.MasterKeyFile); got != key {
				t.Errorf("the master key file holds %q, want the backup's key", got)
			}
			if _, err := os.Stat(cfg.MasterKeyFile + ".new"); !os.IsNotExist(err) {
				t.Errorf("the new key's file is still there: %v", err)
			}
		})
	}
}

// TestUpgradeByCommand: a database of a version before 2026-12 that a
// restore (of its backup) or a master key rotation brings up to date has
// its access keys' secrets bound to their accounts, as a server's start
// would. A rotation given the wrong master key binds nothing, and leaves
// the upgrade to the start with the right one: recorded done, it would
// never bind them.
func TestUpgradeByCommand(t *testing.T) {
	bound := func(t *testing.T, cfg app.Config, f *rotationFixture) {
		t.Helper()
		a, err := app.OpenAdmin(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		key, err := a.Store.FindAccessKey(context.Background(), f.other.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		if secret, err := a.Sealer.Open(key.SealedSecret, auth.AssociatedData(key.AccountID, key.ID)); err != nil || string(secret) != f.other.SecretAccessKey {
			t.Errorf("the key's secret, bound to its account: %q, %v", secret, err)
		}
	}
	t.Run("restore", func(t *testing.T) {
		f := newRotationFixture(t)
		f.env.Stop(t)
		f.unbind(t, readFile(t, f.master))
		backup := backupOf(t, f.env)
		cfg := f.env.Config
		cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), ""
		os.WriteFile(filepath.Join(cfg.DataDir, "master.key"), []byte(readFile(t, f.master)), 0o600)
		a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
		if err != nil {
			t.Fatalf("restoring a backup of a version before 2026-12: %v", err)
		}
		a.Close()
		bound(t, cfg, f)
	})
	t.Run("rotate", func(t *testing.T) {
		f := newRotationFixture(t)
		f.env.Stop(t)
		f.unbind(t, readFile(t, f.master))
		next, _ := app.NewMasterKey()
		wrong := f.env.Config
		wrong.MasterKey, _ = app.NewMasterKey()
		if err := app.RotateMasterKey(context.Background(), wrong, next); err == nil || !strings.Contains(err.Error(), "not the one this database was set up with") {
			t.Errorf("a rotation given the wrong master key: %v", err)
		}
		if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
			t.Fatal(err)
		}
		bound(t, f.env.Config, f)
		f.env.Restart(t)
		f.works(t)
	})
}

// TestRotationNamesAMovedKey: an access key's row moved by hand to
// another account, whose secret then opens for none, fails a master key
// rotation, which names the key for the operator.
func TestRotationNamesAMovedKey(t *testing.T) {
	f := newRotationFixture(t)
	f.env.Stop(t)
	if _, err := f.env.DB(t).Exec(`UPDATE access_keys SET account_id = ? WHERE id = ?`, app.DefaultAccountID, f.other.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err == nil || !strings.Contains(err.Error(), f.other.AccessKeyID) {
		t.Errorf("a rotation with a key moved to another account: %v, want the key named", err)
	}
}

// TestRestoreFindsTheKeyInTheFolder: a restore without a master key file
// named takes the folder's own, as every command does.
func TestRestoreFindsTheKeyInTheFolder(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	cfg := env.Config
	cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), ""
	os.WriteFile(filepath.Join(cfg.DataDir, "master.key"), []byte(readFile(t, filepath.Join(env.Config.DataDir, "master.key"))), 0o600)
	a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
	if err != nil {
		t.Fatalf("a restore with the key in the folder: %v", err)
	}
	a.Close()
}

// TestRestoreWithoutAKey: a restore without a master key asks for the
// backup's, and leaves the folder empty (the advice a missing key gets
// elsewhere, to start a server on the folder, would put a new database
// and key in the restore's way).
func TestRestoreWithoutAKey(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	cfg := env.Config
	cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), ""
	if _, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{}); err == nil || !strings.Contains(err.Error(), "give the master key the backup was made with") {
		t.Errorf("a restore without a master key: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) > 0 {
		t.Errorf("the refused restore left %v", entries)
	}
}

// TestRestoreWithPreviousKey: a restore given a new master key and the
// backup's as previous is refused, naming what to do, and leaves the
// folder empty: it was kept sealed with the previous key, which no server
// given the new key alone then opened.
func TestRestoreWithPreviousKey(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	newKey, _ := app.NewMasterKey()
	cfg := env.Config
	cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), ""
	cfg.MasterKey, cfg.PreviousMasterKeys = newKey, []string{readFile(t, filepath.Join(env.Config.DataDir, "master.key"))}
	if _, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{}); err == nil || !strings.Contains(err.Error(), "give that rotation's old key as the master key") {
		t.Errorf("a restore with the backup's key as previous: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) > 0 {
		t.Errorf("the refused restore left %v", entries)
	}
}

// TestRestoredNeedsItsKey: a server started on a restored folder without
// the master key the database was set up with (the restore read it from
// elsewhere) refuses, saying which key is missing, and makes no new key
// beside the database.
func TestRestoredNeedsItsKey(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	cfg := env.Config
	cfg.DataDir = t.TempDir()
	cfg.MasterKeyFile = filepath.Join(env.Config.DataDir, "master.key")
	a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	cfg.MasterKeyFile = ""
	cfg.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if s, err := app.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "is missing") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("a server on a restored folder without its key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("a new master key was made beside the restored database: %v", err)
	}
}

// TestMasterKeyNotWritten: a new data folder whose master key's file
// cannot be written is refused, not served with a key nothing keeps (its
// CA keys then open no more after a restart).
func TestMasterKeyNotWritten(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Stdout, cfg.Logger = t.TempDir(), io.Discard, slog.New(slog.DiscardHandler)
	// Its wrapping by a KMS key that does not exist fails (a full disk
	// would too, which a test run as root cannot make).
	k := testenv.StartKMS(t)
	k.Credentials(t)
	cfg.MasterKeyKMSKey, cfg.KMSEndpoint = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000", k.URL
	a, err := app.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "master key") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("a server whose master key could not be written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("the master key's file: %v", err)
	}
}

// TestMasterKeyFileWarnings: a server warns of a master key file that
// others can read, and of one in the clear when a KMS key to wrap it is
// named.
func TestMasterKeyFileWarnings(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t)
	env.Stop(t)
	master := filepath.Join(env.Config.DataDir, "master.key")
	if err := os.Chmod(master, 0o644); err != nil {
		t.Fatal(err)
	}
	env.Config.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	env.Config.MasterKeyKMSKey = "arn:aws:kms:us-east-1:111122223333:key/unused"
	env.Restart(t)
	for _, want := range []string{"the master key's file can be read by others than its owner", "the master key's file is in the clear, though a KMS key to wrap it is named"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning %q:\n%s", want, logs.String())
		}
	}
}

// TestMasterKeyFileOthersMayWrite: a master key's file in the data folder
// that users outside the server's user and groups may write to is
// refused, whatever its name, as one outside the folder is: they could
// put their own key in it.
func TestMasterKeyFileOthersMayWrite(t *testing.T) {
	env := testenv.Start(t)
	env.Stop(t)
	for _, name := range []string{"master.key", "mk.b64"} {
		path := filepath.Join(env.Config.DataDir, name)
		if name != "master.key" {
			if err := os.Rename(filepath.Join(env.Config.DataDir, "master.key"), path); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		cfg := env.Config
		cfg.MasterKeyFile = path
		if a, err := app.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "chmod 600 it") {
			if a != nil {
				a.Close()
			}
			t.Errorf("%s of mode 666: %v", name, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommandDuringRotation: an operator's command on a data folder whose
// rotation is under way (its new key's file beside the master key, the
// folder locked) refuses to run, and leaves the new key where it is: it
// may not settle a rotation from under it.
func TestCommandDuringRotation(t *testing.T) {
	f := newRotationFixture(t) // the running server holds the lock, as a rotation does
	next, _ := app.NewMasterKey()
	os.WriteFile(f.master+".new", []byte(next+"\n"), 0o600)
	if a, err := app.OpenAdmin(context.Background(), f.env.Config); err == nil || !strings.Contains(err.Error(), "a master key rotation is under way") {
		if a != nil {
			a.Close()
		}
		t.Errorf("a command during a rotation: %v", err)
	}
	if got := readFile(t, f.master+".new"); got != next+"\n" {
		t.Errorf("the new key's file holds %q", got)
	}
}

// TestRotationExcludesCommands: no operator command runs while a master
// key rotation does, even before the rotation has written its new key's
// file (a command that found none, then one, would settle the rotation
// from under it); and a rotation waits for commands to end.
func TestRotationExcludesCommands(t *testing.T) {
	f := newRotationFixture(t)
	f.env.Stop(t)
	a, err := app.OpenAdmin(context.Background(), f.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err == nil || !strings.Contains(err.Error(), "an operator command is running") {
		t.Errorf("a rotation during a command: %v", err)
	}
	a.Close()
	// A rotation under way holds the rotation lock, on the data folder,
	// alone.
	lock, err := os.Open(f.env.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if a, err := app.OpenAdmin(context.Background(), f.env.Config); err == nil || !strings.Contains(err.Error(), "a master key rotation is under way") {
		if a != nil {
			a.Close()
		}
		t.Errorf("a command during a rotation that has not written its new key yet: %v", err)
	}
	lock.Close()
	if err := app.RotateMasterKey(context.Background(), f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFile(t, f.master)); got != next {
		t.Errorf("the master key after the rotation: %q", got)
	}
	f.env.Restart(t)
	f.works(t)
}

// TestRollingMasterKeyRotation rotates the master key of a PostgreSQL
// database while a server runs on it, as servers sharing one roll: each is
// started with the new key and the old one as previous, the database is
// resealed, and the servers restart with the new key alone.
func TestRollingMasterKeyRotation(t *testing.T) {
	old, _ := app.NewMasterKey()
	next, _ := app.NewMasterKey()
	dsn := testenv.NewPostgresDB(t)
	f := newRotationFixture(t, func(c *app.Config) { c.Database, c.MasterKey, c.ObjectStore = dsn, old, "local" })
	cfg := f.env.Config
	// 1. The server runs with the new key, the old one as previous.
	f.env.Config.MasterKey, f.env.Config.PreviousMasterKeys = next, []string{old}
	f.env.Restart(t)
	f.works(t)
	// 2. The database is resealed, from another data folder (the
	// operator's), while the server runs.
	cfg.DataDir = t.TempDir()
	if err := app.RotateMasterKey(context.Background(), cfg, next); err != nil {
		t.Fatal(err)
	}
	f.works(t)
	// 3. The server restarts with the new key alone.
	f.env.Config.PreviousMasterKeys = nil
	f.env.Restart(t)
	f.works(t)
}

// rotateAlone rotates the master key of cfg's PostgreSQL database to
// next, once the sessions of servers stopped on other keys have ended,
// which PostgreSQL does in its own time.
func rotateAlone(t *testing.T, cfg app.Config, next string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		err := app.RotateMasterKey(context.Background(), cfg, next)
		if err == nil {
			return
		}
		if _, ok := errors.AsType[*postgres.SessionsError](err); !ok || time.Now().After(deadline) {
			t.Fatalf("rotating the master key with every server on the new one: %v", err)
		}
	}
}

// TestRollingRotationWaitsForEveryNode: on PostgreSQL, a rotation is
// refused while a server still seals with the old key (it skipped the
// rolling rotation's step 3), or while one of the version before, whose key
// is not known, runs: what it sealed would open with no key once servers
// drop the old one. Once it is done, the old key is retired: a server or
// command given it as its master key, even with the new one as previous
// (step 2's settings), is refused, and so is the rotation run again.
func TestRollingRotationWaitsForEveryNode(t *testing.T) {
	ctx := context.Background()
	old, _ := app.NewMasterKey()
	next, _ := app.NewMasterKey()
	fingerprint := func(key string) string {
		k, err := seal.ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return seal.Fingerprint(k)
	}
	dsn := testenv.NewPostgresDB(t)
	a := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore, c.MasterKey = dsn, "local", old })
	a.Config.MasterKey, a.Config.PreviousMasterKeys = next, []string{old}
	a.Restart(t)
	behind := func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKey, c.PreviousMasterKeys = dsn, "local", old, []string{next}
		c.RootAccessKeyID, c.RootSecretAccessKey = a.Config.RootAccessKeyID, a.Config.RootSecretAccessKey
	}
	b := testenv.Start(t, behind)
	rotate := a.Config
	rotate.DataDir, rotate.MasterKey, rotate.PreviousMasterKeys = t.TempDir(), old, nil
	err := app.RotateMasterKey(ctx, rotate, next)
	if err == nil || !strings.Contains(err.Error(), postgres.KeySession(fingerprint(old))+" from") ||
		strings.Contains(err.Error(), postgres.KeySession(fingerprint(next))) {
		t.Fatalf("beside a server on the old key, the rotation: %v", err)
	}
	// Nothing was resealed: the server behind makes and uses a CA.
	b.NewActiveRoot(t, "Made before the rotation")
	b.Stop(t)

	// A server of the version before names its sessions "openpca".
	earlier, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := earlier.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	}
	// Named among the sessions, in any order: the stopped server's may
	// not have ended yet (its connections close as it stops), and came
	// first in a CI run.
	if err := app.RotateMasterKey(ctx, rotate, next); err == nil || !strings.Contains(err.Error(), "openpca from") {
		t.Fatalf("beside a server of the version before, the rotation: %v", err)
	}
	earlier.Close()

	rotateAlone(t, rotate, next)
	var log testenv.SyncBuffer
	b.Config.MasterKey, b.Config.PreviousMasterKeys, b.Config.Logger = next, nil, slog.New(slog.NewTextHandler(&log, nil))
	b.Restart(t)
	b.NewActiveRoot(t, "Made after the rotation")
	// Said once it serves, which it does now.
	if !strings.Contains(log.String(), "master_key_fingerprint="+fingerprint(next)) {
		t.Errorf("a server does not log its master key's fingerprint:\n%s", log.String())
	}
	b.Stop(t)

	retired := "(fingerprint " + fingerprint(old) + ") was rotated away from"
	behind(&b.Config)
	if s, err := app.Open(ctx, b.Config); err == nil || !strings.Contains(err.Error(), retired) {
		if err == nil {
			s.Close()
		}
		t.Errorf("a server on the retired key, the new one as previous, started: %v", err)
	}
	if cmd, err := app.OpenAdmin(ctx, b.Config); err == nil || !strings.Contains(err.Error(), retired) {
		if err == nil {
			cmd.Close()
		}
		t.Errorf("a command on the retired key, the new one as previous, ran: %v", err)
	}
	if err := app.RotateMasterKey(ctx, rotate, next); err == nil || !strings.Contains(err.Error(), retired) {
		t.Errorf("the rotation run again: %v", err)
	}
}

// TestRollingRotationUnseenNode: a server on the old key that the
// rotation does not see, because it had no session when the rotation
// looked (a failover, a network cut, pg_terminate_backend), reconnects
// and serves on; what it would seal (a CA's key) it no longer stores,
// since no server would open it once the old key is dropped.
func TestRollingRotationUnseenNode(t *testing.T) {
	ctx := context.Background()
	old, _ := app.NewMasterKey()
	next, _ := app.NewMasterKey()
	oldKey, _ := seal.ParseKey(old)
	dsn := testenv.NewPostgresDB(t)
	a := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore, c.MasterKey = dsn, "local", old })
	a.Config.MasterKey, a.Config.PreviousMasterKeys = next, []string{old}
	a.Restart(t)
	b := testenv.Start(t, func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKey, c.PreviousMasterKeys = dsn, "local", old, []string{next}
		c.RootAccessKeyID, c.RootSecretAccessKey = a.Config.RootAccessKeyID, a.Config.RootSecretAccessKey
	})
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rotate := a.Config
	rotate.DataDir, rotate.MasterKey, rotate.PreviousMasterKeys = t.TempDir(), old, nil
	for tries := 1; ; tries++ {
		if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
			postgres.KeySession(seal.Fingerprint(oldKey))); err != nil {
			t.Fatal(err)
		}
		err := app.RotateMasterKey(ctx, rotate, next)
		if err == nil {
			break
		}
		if _, ok := errors.AsType[*postgres.SessionsError](err); !ok || tries == 100 {
			t.Fatalf("rotating beside a server whose sessions were ended: %v", err)
		}
	}
	// Its connections ended by the test are refused with the same code:
	// the refusal asked for is the retired key's, once it reconnects.
	for tries := 1; ; tries++ {
		_, err = b.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Made on the retired key"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		})
		testenv.WantError(t, err, "ServiceUnavailableException")
		if strings.Contains(err.Error(), "master key was retired") {
			break
		}
		if tries == 20 {
			t.Fatalf("a CA made on the retired key: %v", err)
		}
	}
	a.NewActiveRoot(t, "Made on the new key")
}

// TestRotateToTheSameKey: a rotation to the master key itself (rotate run
// again after the servers took the new key) rotates nothing, and retires
// no key, which would leave no server able to start.
func TestRotateToTheSameKey(t *testing.T) {
	key, _ := app.NewMasterKey()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := testenv.Start(t, func(c *app.Config) {
				c.MasterKey = key
				if dialect == "postgres" {
					c.Database, c.ObjectStore = testenv.NewPostgresDB(t), "local"
				}
			})
			env.Stop(t)
			if err := app.RotateMasterKey(context.Background(), env.Config, key); err == nil || !strings.Contains(err.Error(), "nothing to rotate") {
				t.Errorf("a rotation to the master key itself: %v", err)
			}
			env.Restart(t)
		})
	}
}

// TestRollingRotationKeyFiles: on PostgreSQL, a file named as a
// rotation's new key beside the master key's (the rolling rotation's new
// key, named so by the operator) is the operator's. A server with the old
// key and the new one as previous left it in place, and one started on
// the old key alone after the reseal is refused, rather than rename the
// new key over the old one's file (which the dumps of before need).
func TestRollingRotationKeyFiles(t *testing.T) {
	old, _ := app.NewMasterKey()
	next, _ := app.NewMasterKey()
	dir := t.TempDir()
	oldFile := filepath.Join(dir, "master.key")
	newFile := oldFile + ".new"
	for path, key := range map[string]string{oldFile: old, newFile: next} {
		if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func(when string) {
		t.Helper()
		for path, key := range map[string]string{oldFile: old, newFile: next} {
			if got, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(got)) != key {
				t.Errorf("%s, %s holds %q, %v; want its key", when, filepath.Base(path), got, err)
			}
		}
	}
	dsn := testenv.NewPostgresDB(t)
	f := newRotationFixture(t, func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKeyFile, c.PreviousMasterKeys = dsn, "local", oldFile, []string{next}
	})
	unchanged("with the old key, the new one as previous")
	cfg := f.env.Config
	cfg.DataDir = t.TempDir()
	// It seals with the old key: the rotation waits for it to stop.
	f.env.Stop(t)
	rotateAlone(t, cfg, next)
	f.env.Config.PreviousMasterKeys = nil
	if a, err := app.Open(context.Background(), f.env.Config); err == nil {
		a.Close()
		t.Error("a server started on the old key alone after the reseal")
	}
	unchanged("after a start on the old key alone")
}

// wrappingKMS starts a KMS for the test, with its credentials in the
// environment, and returns it and the ARN of a symmetric key in it.
func wrappingKMS(t *testing.T) (*testenv.KMS, string) {
	t.Helper()
	k := testenv.StartKMS(t)
	k.Credentials(t)
	out, err := k.Client().CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return k, *out.KeyMetadata.Arn
}

// TestMasterKeyWrappedByKMS keeps the master key wrapped by a KMS key: the
// data folder holds no usable key, the server unwraps it at each start,
// and cannot start while KMS cannot be reached. An existing key is wrapped
// in place, and a rotation keeps the new key wrapped.
func TestMasterKeyWrappedByKMS(t *testing.T) {
	ctx := context.Background()
	k, kmsKey := wrappingKMS(t)
	wrapped := func(c *app.Config) { c.MasterKeyKMSKey, c.KMSEndpoint = kmsKey, k.URL }
	isWrapped := func(t *testing.T, path string) {
		t.Helper()
		if b := readFile(t, path); !strings.HasPrefix(b, "kms:") || len(b) < 100 {
			t.Errorf("the master key file holds %q, not a wrapped key", b)
		}
	}

	f := newRotationFixture(t, wrapped)
	isWrapped(t, f.master)
	f.env.Stop(t)
	k.Stop(t)
	if a, err := app.Open(ctx, f.env.Config); err == nil {
		a.Close()
		t.Fatal("the server started without KMS to unwrap its master key")
	} else if !strings.Contains(err.Error(), "unwrapping the master key") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	k.Start(t)
	f.env.Restart(t)
	f.works(t)

	f.env.Stop(t)
	next, _ := app.NewMasterKey()
	unnamed := f.env.Config
	unnamed.MasterKeyKMSKey = ""
	if err := app.RotateMasterKey(ctx, unnamed, next); err == nil || !strings.Contains(err.Error(), "wrapped by KMS") {
		t.Errorf("a rotation of a wrapped key without the KMS key to wrap the new one: %v", err)
	}
	isWrapped(t, f.master)
	if err := app.RotateMasterKey(ctx, f.env.Config, next); err != nil {
		t.Fatal(err)
	}
	isWrapped(t, f.master)
	f.env.Restart(t)
	f.works(t)

	// A plain key file, wrapped in place; not while a rotation, cut
	// short, left its new key beside it (settled after, it would rename
	// that key, in the clear, over the wrapped file).
	plain := newRotationFixture(t)
	plain.env.Stop(t)
	cfg := plain.env.Config
	wrapped(&cfg)
	pending, _ := app.NewMasterKey()
	os.WriteFile(plain.master+".new", []byte(pending+"\n"), 0o600)
	if err := app.WrapMasterKey(ctx, cfg); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("wrapping beside an interrupted rotation's new key: %v", err)
	}
	if b := readFile(t, plain.master); strings.HasPrefix(b, "kms:") {
		t.Error("the key file was wrapped beside an interrupted rotation's new key")
	}
	os.Remove(plain.master + ".new")
	if err := app.WrapMasterKey(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	isWrapped(t, plain.master)
	plain.env.Config = cfg
	plain.env.Restart(t)
	plain.works(t)
}

// TestMasterKeyWrapMustUnwrap: a KMS key that wraps the master key and
// does not unwrap it (the caller was granted kms:Encrypt, not
// kms:Decrypt) is refused before anything is written: the plain key file
// stays, and a rotation leaves the database sealed as it was. Written, the
// key would have been lost with all it seals.
func TestMasterKeyWrapMustUnwrap(t *testing.T) {
	ctx := context.Background()
	k, kmsKey := wrappingKMS(t)
	// The real KMS, as a caller without kms:Decrypt sees it.
	target, err := url.Parse(k.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	noDecrypt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService.Decrypt" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"AccessDeniedException","message":"not authorized to perform kms:Decrypt"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(noDecrypt.Close)

	f := newRotationFixture(t)
	f.env.Stop(t)
	plain := readFile(t, f.master)
	cfg := f.env.Config
	cfg.MasterKeyKMSKey, cfg.KMSEndpoint = kmsKey, noDecrypt.URL
	if err := app.WrapMasterKey(ctx, cfg); err == nil || !strings.Contains(err.Error(), "does not unwrap") {
		t.Errorf("wrapping with a key that does not unwrap: %v", err)
	}
	next, _ := app.NewMasterKey()
	if err := app.RotateMasterKey(ctx, cfg, next); err == nil || !strings.Contains(err.Error(), "does not unwrap") {
		t.Errorf("rotating to a key wrapped so: %v", err)
	}
	if got := readFile(t, f.master); got != plain {
		t.Errorf("the master key file now holds %q", got)
	}
	if _, err := os.Stat(f.master + ".new"); err == nil {
		t.Error("a rotation refused left its new key's file")
	}
	f.env.Restart(t)
	f.works(t)
}

// TestCutRestore: a server refuses a folder without a database where a
// restore left its partial copy, rather than start with no CAs in place
// of the backup's; the restore run again removes the copy and succeeds.
func TestCutRestore(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	cfg := env.Config
	cfg.DataDir = t.TempDir()
	cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
	cfg.Listen = "127.0.0.1:0"
	os.WriteFile(cfg.MasterKeyFile, []byte(readFile(t, filepath.Join(env.Config.DataDir, "master.key"))), 0o600)
	left := filepath.Join(cfg.DataDir, "openpca.db.partial-123456")
	os.Mkdir(left, 0o700)
	os.WriteFile(filepath.Join(left, "db"), []byte(readFile(t, backup)[:4096]), 0o600)
	if s, err := app.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "cut short") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("a server on a folder a restore was cut short in: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "openpca.db")); !os.IsNotExist(err) {
		t.Fatalf("the refused server made a database: %v", err)
	}
	a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the restore run again left the cut one's copy: %v", err)
	}
	s, err := app.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a server on the restored folder: %v", err)
	}
	s.Close()
}

// TestRollingRotationWrappedKeys: on PostgreSQL, the old and the new key
// of a rolling rotation may both be files wrapped by KMS, as a server
// keeps its own: each step takes them as it takes the master key's file.
func TestRollingRotationWrappedKeys(t *testing.T) {
	ctx := context.Background()
	k, kmsKey := wrappingKMS(t)
	store, err := kms.Open(ctx, k.URL, app.DefaultRegion)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrap := func(name string) (path, wrapped string) {
		text, _ := app.NewMasterKey()
		key, err := seal.ParseKey(text)
		if err != nil {
			t.Fatal(err)
		}
		if wrapped, err = store.Wrap(ctx, kmsKey, key); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(wrapped+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, wrapped
	}
	oldFile, old := wrap("old.key")
	newFile, next := wrap("new.key")
	dsn := testenv.NewPostgresDB(t)
	f := newRotationFixture(t, func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKeyFile, c.MasterKeyKMSKey, c.KMSEndpoint = dsn, "local", oldFile, kmsKey, k.URL
	})
	cfg := f.env.Config
	// The server runs with the new key, the old one as previous.
	f.env.Config.MasterKeyFile, f.env.Config.PreviousMasterKeys = newFile, []string{old + "\n"}
	f.env.Restart(t)
	f.works(t)
	// The database is resealed from the operator's folder.
	cfg.DataDir = t.TempDir()
	if err := app.RotateMasterKey(ctx, cfg, next); err != nil {
		t.Fatal(err)
	}
	f.env.Config.PreviousMasterKeys = nil
	f.env.Restart(t)
	f.works(t)
}

// TestRotationFailingAfterResealSaysKeepTheNewKey: a rotation on SQLite
// that fails once the database is resealed (the TLS CA's key cannot be
// rewritten: a full disk, a file in the way) has the database sealed with
// the new key, which is only in master.key.new. Its error must say so, and
// not read as a rotation that changed nothing: an operator who tidies up
// the new key's file after a "failed" rotation loses every sealed secret.
// Of a key given in OPENPCA_MASTER_KEY, with no file to settle by, it must
// also say to keep the old key, which the TLS CA's key is still sealed
// with.
func TestRotationFailingAfterResealSaysKeepTheNewKey(t *testing.T) {
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("key given=%v", given), func(t *testing.T) {
			var opts []testenv.Option
			old, _ := app.NewMasterKey()
			if given {
				opts = append(opts, func(c *app.Config) { c.MasterKey = old })
			}
			f := newRotationFixture(t, opts...)
			f.env.Stop(t)
			tlsKey := filepath.Join(f.env.Config.DataDir, "tls", "ca.key.sealed")
			sealed := readFile(t, tlsKey)
			// A folder in place of the TLS CA's key: its reading fails as
			// an I/O error would, after the database's transaction
			// committed.
			if err := os.Remove(tlsKey); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(tlsKey, 0o700); err != nil {
				t.Fatal(err)
			}
			next, _ := app.NewMasterKey()
			err := app.RotateMasterKey(context.Background(), f.env.Config, next)
			if err == nil {
				t.Fatal("the rotation did not fail")
			}
			want := []string{"sealed with the new master key", f.master + ".new"}
			if given {
				want = []string{"sealed with the new master key", "given as the new master key; keep the old one too"}
			} else if _, statErr := os.Stat(f.master + ".new"); statErr != nil {
				t.Fatalf("the new key's file is gone: %v", statErr)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("a rotation that failed after the database was resealed says only: %v", err)
				}
			}
			os.Remove(tlsKey)
			os.WriteFile(tlsKey, []byte(sealed), 0o600)
			if given {
				f.env.Config.MasterKey, f.env.Config.PreviousMasterKeys = next, []string{old}
			}
			f.env.Restart(t)
			f.works(t)
		})
	}
}
