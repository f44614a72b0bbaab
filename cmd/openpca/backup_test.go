package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/server"
)

// TestBackupAndRestore backs up a running server's data folder, restores
// it into a new one, and serves from that: what was issued before the
// backup is there, what came after is not, and the CAs' next CRLs are
// numbered past those published in between.
func TestBackupAndRestore(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	ctx := t.Context()
	caARN := activeCAWithCRLs(t, env)
	issue := func(e *testenv.Env) string {
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
		return e.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM})
	}
	before := issue(env)

	if _, err := runOpenpca(t, "backup", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "--to is required") {
		t.Errorf("a backup to nowhere: %v", err)
	}
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Backed up") || !strings.Contains(out, "1 CAs") || !strings.Contains(out, "master key is not in it") {
		t.Errorf("backup said:\n%s", out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup: %v, %v", fi, err)
	}
	after := issue(env)
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a backup over another: %v\n%s", err, out)
	}
	if out, _ := runOpenpca(t, "operator-log", "--data-dir", data); !strings.Contains(out, "backed up to "+backup) {
		t.Errorf("the operator log has no backup:\n%s", out)
	}
	// Copied into a data folder as the database, as SQLite's files are
	// often restored, the backup is refused, by servers and commands:
	// served as it was, its CAs signed CRLs under numbers used since,
	// without the revocations since.
	copied := t.TempDir()
	for from, to := range map[string]string{backup: "openpca.db", filepath.Join(data, "master.key"): "master.key"} {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(filepath.Join(copied, to), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runOpenpca(t, "keys", "list", "--data-dir", copied); err == nil || !strings.Contains(err.Error(), "is a backup") || !strings.Contains(err.Error(), "openpca restore") {
		t.Errorf("a backup copied into place as the database: %v\n%s", err, out)
	}
	// Refused as it was found: still a backup restore takes, not turned to
	// a server's database (WAL mode), which it refuses.
	if out, err := runOpenpca(t, "restore", "--from", filepath.Join(copied, "openpca.db"), "--data-dir", filepath.Join(t.TempDir(), "r"),
		"--master-key-file", filepath.Join(data, "master.key")); err != nil {
		t.Errorf("a restore of the backup copied into place, once refused: %v\n%s", err, out)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	masterKey := filepath.Join(data, "master.key")
	foreign := make([]byte, 32)
	rand.Read(foreign)
	out, err = runOpenpca(t, "restore", "--from", backup, "--data-dir", restored, "--master-key", base64.StdEncoding.EncodeToString(foreign))
	if err == nil || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("a restore with a foreign master key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(restored, "openpca.db")); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left a database: %v", err)
	}
	restoredAt := time.Now()
	out, err = runOpenpca(t, "restore", "--from", backup, "--data-dir", restored, "--master-key-file", masterKey)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Restored", "revoke those certificates again", "they refuse it as another history", "Access keys revoked since are active again",
		"are now DISABLED", "  " + caARN + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore said no %q:\n%s", want, out)
		}
	}
	if out, err := runOpenpca(t, "restore", "--from", backup, "--data-dir", restored, "--master-key-file", masterKey); err == nil || !strings.Contains(err.Error(), "nothing was restored") {
		t.Errorf("a restore over a database: %v, want nothing restored\n%s", err, out)
	}
	if out, _ := runOpenpca(t, "operator-log", "--data-dir", restored, "--master-key-file", masterKey); !strings.Contains(out, "restored from "+backup) {
		t.Errorf("the operator log has no restore:\n%s", out)
	}

	// Local buckets are copied apart, as the README says.
	if err := os.MkdirAll(filepath.Join(restored, "s3", "crls"), 0o700); err != nil {
		t.Fatal(err)
	}
	env2 := testenv.Start(t, func(c *app.Config) { c.DataDir, c.MasterKeyFile = restored, masterKey })
	if _, err := env2.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &before}); err != nil {
		t.Errorf("a certificate issued before the backup: %v", err)
	}
	_, err = env2.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &after})
	testenv.WantError(t, err, "ResourceNotFoundException")
	// The CA active at the backup issues only once its account enables
	// it again.
	_, err = env2.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidStateException")
	if _, err := env2.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN, Status: types.CertificateAuthorityStatusActive}); err != nil {
		t.Fatal(err)
	}
	issue(env2)

	// With --keep-status, it stays active, and the restore says so;
	// --sole-copy is in the operator log.
	kept := filepath.Join(t.TempDir(), "kept")
	out, err = runOpenpca(t, "restore", "--from", backup, "--data-dir", kept, "--master-key-file", masterKey, "--keep-status", "--sole-copy")
	if err != nil || !strings.Contains(out, "are active again (--keep-status)") || !strings.Contains(out, "  "+caARN+"\n") {
		t.Errorf("a restore with --keep-status: %v\n%s", err, out)
	}
	if out, _ := runOpenpca(t, "operator-log", "--data-dir", kept, "--master-key-file", masterKey); !strings.Contains(out, "the sole copy (--sole-copy)") {
		t.Errorf("the operator log has no restore as the sole copy:\n%s", out)
	}
	if out, err := runOpenpca(t, "cas", "list", "--data-dir", kept, "--master-key-file", masterKey); err != nil || !strings.Contains(out, "ACTIVE") {
		t.Errorf("the CA after a restore with --keep-status: %v\n%s", err, out)
	}

	serial := before[strings.LastIndex(before, "/")+1:]
	if _, err := env2.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(serial), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	crlPath := filepath.Join(restored, "s3", "crls", "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		env2.Clock.CatchUp() // the CRL waits for the second after the last CRL's
		der, err := os.ReadFile(crlPath)
		if err == nil {
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(crl.RevokedCertificateEntries) == 1 {
				if crl.Number.Int64() < restoredAt.UnixMilli() {
					t.Errorf("the restored CA's CRL is number %d; want %d or more", crl.Number.Int64(), restoredAt.UnixMilli())
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CRL with the revocation: %v", err)
		}
	}
}

// backupAndRestore backs up env's data folder, its server running, and
// restores the backup into a new folder, saying what restore said.
func backupAndRestore(t *testing.T, env *testenv.Env) (string, error) {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", env.Config.DataDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return runOpenpca(t, "restore", "--from", backup, "--data-dir", filepath.Join(t.TempDir(), "restored"),
		"--master-key-file", filepath.Join(env.Config.DataDir, "master.key"))
}

// readFrom reads one value from the database at dsn, in a session of its
// own that is closed before it returns.
func readFrom(t *testing.T, dsn, query string, v any) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(t.Context(), query).Scan(v); err != nil {
		t.Fatal(err)
	}
}

// activeCAWithCRLs makes the bucket "crls" and an active root CA whose
// CRLs go to it, on env's server, and returns the CA's ARN.
func activeCAWithCRLs(t *testing.T, env *testenv.Env) string {
	t.Helper()
	args := []string{"buckets", "create", "crls", "--account", app.DefaultAccountID, "--data-dir", env.Config.DataDir}
	if env.Config.Database != "" {
		args = append(args, "--database", env.Config.Database)
	}
	if out, err := runOpenpca(t, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	created, err := env.Client.CreateCertificateAuthority(t.Context(), &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Backed Up"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
			Enabled: aws.Bool(true), S3BucketName: aws.String("crls")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env.ActivateRoot(t, *created.CertificateAuthorityArn)
	return *created.CertificateAuthorityArn
}

// TestCommandsNeedADatabase: an operator's command on a data folder
// without a database (a mistyped --data-dir, or a cron job's working
// folder where the default leads) refuses, and makes neither the folder
// nor a database: a backup of it succeeded with nothing in it.
func TestCommandsNeedADatabase(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"backup", "--to", filepath.Join(t.TempDir(), "b.db"), "--master-key", key, "--data-dir", empty},
		{"backup", "--to", filepath.Join(t.TempDir(), "b.db"), "--master-key", key, "--data-dir", missing},
		{"keys", "list", "--master-key", key, "--data-dir", missing},
		{"master-key", "rotate", "--master-key", key, "--data-dir", empty},
	} {
		out, err := runOpenpca(t, args...)
		if err == nil || !strings.Contains(err.Error(), "has no database") {
			t.Errorf("openpca %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "openpca.db")); !os.IsNotExist(err) {
		t.Errorf("a command made a database in a folder that had none: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a command made a data folder: %v", err)
	}
}

// TestPostgresRestore: a PostgreSQL database restored with PostgreSQL's
// tools is settled by "openpca restore --database" as a restored SQLite
// database is: its active CAs disabled and listed, its CRLs numbered past
// those published since, its console sessions ended. The command refuses
// a backup to restore itself, and a database that others are connected
// to, as a running server always is.
func TestPostgresRestore(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	env := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore = dsn, "local" })
	ctx := t.Context()
	masterKey := filepath.Join(env.Config.DataDir, "master.key")
	caARN := activeCAWithCRLs(t, env)
	leaf := func() []byte {
		return testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
	}
	before := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf()})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO console_sessions (id_hash, key_id, csrf, created_at, expires_at) VALUES ('\x01', 'k', 'c', 0, 9223372036854775807)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// pg_restore forgotten: an empty database is refused, not given a
	// schema that a server would then take for the restored database.
	empty := testenv.NewPostgresDB(t)
	if out, err := runOpenpca(t, "restore", "--database", empty, "--master-key-file", masterKey); err == nil || !strings.Contains(err.Error(), "no OpenPCA schema") {
		t.Errorf("a restore on an empty database: %v\n%s", err, out)
	}
	var tables int
	readFrom(t, empty, `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'`, &tables)
	if tables != 0 {
		t.Errorf("a refused restore made %d tables in an empty database", tables)
	}

	// Nor is one that holds a trigger, which would run at every change
	// servers make (here at the settings' first write, which opening the
	// database for the restore makes), or a default that calls another
	// schema's function: refused before the restore writes. An
	// extension's views are no refusal.
	triggered := testenv.RestorePostgresDB(t, dsn)
	triggerDB, err := sql.Open("pgx", triggered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := triggerDB.ExecContext(ctx, `CREATE EXTENSION pg_buffercache;
		CREATE SCHEMA spy; CREATE TABLE spy.ran (at timestamptz);
		CREATE FUNCTION spy.f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spy.ran VALUES (now()); RETURN NULL; END $$;
		CREATE TRIGGER spy AFTER INSERT OR UPDATE OR DELETE ON settings FOR EACH STATEMENT EXECUTE FUNCTION spy.f();
		CREATE FUNCTION spy.policies() RETURNS text LANGUAGE sql AS 'SELECT ''[]''::text';
		ALTER TABLE access_keys ALTER COLUMN policies SET DEFAULT spy.policies()`); err != nil {
		t.Fatal(err)
	}
	triggerDB.Close()
	refused, err := runOpenpca(t, "restore", "--database", triggered, "--master-key-file", masterKey)
	for _, want := range []string{"nothing was settled: the restored database holds what OpenPCA makes none of", "trigger spy on public.settings",
		"default of column policies of table public.access_keys, which is no constant", "function spy.policies"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a restore of a database with a trigger: %v\n%s\nwant an error with %q", err, refused, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "pg_buffercache") {
		t.Errorf("an extension's view refused: %v", err)
	}
	var ran int
	readFrom(t, triggered, `SELECT COUNT(*) FROM spy.ran`, &ran)
	if ran != 0 {
		t.Errorf("a refused restore ran the trigger it refused %d times", ran)
	}

	// Nor is one whose tables were changed: here a CA's serials no
	// longer unique.
	reshaped := testenv.RestorePostgresDB(t, dsn)
	reshapeDB, err := sql.Open("pgx", reshaped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reshapeDB.ExecContext(ctx, `DROP INDEX certificates_by_serial`); err != nil {
		t.Fatal(err)
	}
	reshapeDB.Close()
	want := "nothing was settled: the restored database's schema is not OpenPCA's: it lacks the index certificates_by_serial of table certificates"
	if out, err := runOpenpca(t, "restore", "--database", reshaped, "--master-key-file", masterKey); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a restore of a database without a unique index: %v\n%s\nwant an error with %q", err, out, want)
	}
	var begun int
	readFrom(t, reshaped, `SELECT COUNT(*) FROM settings WHERE name = 'restore-begun'`, &begun)
	if begun != 0 {
		t.Error("a restore refused for its schema wrote its record")
	}

	// A dump whose log was changed is not settled.
	tampered := testenv.RestorePostgresDB(t, dsn)
	tamperDB, err := sql.Open("pgx", tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tamperDB.ExecContext(ctx, `UPDATE certificates SET subject = 'CN=forged.example'`); err != nil {
		t.Fatal(err)
	}
	tamperDB.Close()
	if out, err := runOpenpca(t, "restore", "--database", tampered, "--master-key-file", masterKey); err == nil || !strings.Contains(err.Error(), "nothing was settled: the backup's key-use logs do not verify") {
		t.Errorf("a restore of a changed log: %v\n%s", err, out)
	}
	var status string
	readFrom(t, tampered, `SELECT status FROM certificate_authorities`, &status)
	if status != "ACTIVE" {
		t.Errorf("a refused restore changed the CA: %s", status)
	}
	// Nor does a server start on it, as on a database being restored; nor
	// does it migrate it first (its latest migration taken back here).
	var latest int
	readFrom(t, tampered, `SELECT MAX(version) FROM schema_migrations`, &latest)
	if tamperDB, err = sql.Open("pgx", tampered); err != nil {
		t.Fatal(err)
	}
	if _, err := tamperDB.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = $1`, latest); err != nil {
		t.Fatal(err)
	}
	tamperDB.Close()
	unsettled := env.Config
	unsettled.Database, unsettled.DataDir, unsettled.MasterKeyFile = tampered, t.TempDir(), masterKey
	if s, err := app.Open(ctx, unsettled); err == nil || !strings.Contains(err.Error(), "has not settled it") {
		if err == nil {
			s.Close()
		}
		t.Errorf("a server on a database whose restore was refused: %v", err)
	}
	var migrated int
	readFrom(t, tampered, `SELECT MAX(version) FROM schema_migrations`, &migrated)
	if migrated == latest {
		t.Error("a server refused by a restore's record migrated the database first")
	}

	restoredDSN := testenv.RestorePostgresDB(t, dsn)
	restore := func(extra ...string) (string, error) {
		return runOpenpca(t, append([]string{"restore", "--database", restoredDSN, "--master-key-file", masterKey}, extra...)...)
	}
	if out, err := restore("--from", "/tmp/openpca.backup"); err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Errorf("a restore from a file on PostgreSQL: %v\n%s", err, out)
	}
	restored, err := sql.Open("pgx", restoredDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := restore(); err == nil || !strings.Contains(err.Error(), "other sessions") {
		t.Errorf("a restore beside another session: %v\n%s", err, out)
	}
	restored.Close()
	read := func(q string, v any) { readFrom(t, restoredDSN, q, v) }
	// A database in use is no restored one: servers still start on it.
	read(`SELECT COUNT(*) FROM settings WHERE name = 'restore-begun'`, &begun)
	if begun != 0 {
		t.Error("a restore refused beside a session left its record, which servers refuse")
	}
	read(`SELECT status FROM certificate_authorities`, &status)
	if status != "ACTIVE" {
		t.Fatalf("a refused restore changed the CA: %s", status)
	}
	var publications int
	read(`SELECT COUNT(*) FROM crl_publications`, &publications)
	if publications != 1 {
		t.Fatalf("the CA with CRLs has %d CRL publications", publications)
	}

	// A server that began to start before the restore recorded itself,
	// refused once it reads the record, is waited for: it is no server
	// that uses the database.
	starting, err := sql.Open("pgx", restoredDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer starting.Close()
	if err := starting.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	restoredAt := time.Now()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := restore()
		done <- result{out, err}
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var begun bool
		if err := starting.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM settings WHERE name = 'restore-begun')`).Scan(&begun); err != nil {
			t.Fatal(err)
		}
		if begun {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore not recorded after a minute")
		}
	}
	time.Sleep(time.Second) // the restore's first look, which finds the session
	starting.Close()
	r := <-done
	out, err := r.out, r.err
	if err != nil {
		t.Fatalf("a restore beside a server refused as it starts: %v\n%s", err, out)
	}
	for _, want := range []string{"Settled the restored database: 1 CAs", "revoke those certificates again", "are now DISABLED", "  " + caARN + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore said no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Local buckets") {
		t.Errorf("restore spoke of a data folder's buckets on PostgreSQL:\n%s", out)
	}
	var number, sessions int64
	read(`SELECT MIN(number) FROM crl_publications`, &number)
	if number < restoredAt.UnixMilli()-1 {
		t.Errorf("the restored CA's next CRL number is %d; want %d or more", number+1, restoredAt.UnixMilli())
	}
	read(`SELECT COUNT(*) FROM console_sessions`, &sessions)
	if sessions != 0 {
		t.Errorf("%d console sessions after the restore", sessions)
	}
	if out, _ := runOpenpca(t, "operator-log", "--database", restoredDSN, "--master-key-file", masterKey); !strings.Contains(out, "restored by PostgreSQL's tools settled") {
		t.Errorf("the operator log has no restore:\n%s", out)
	}

	env2 := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore, c.MasterKeyFile = restoredDSN, "local", masterKey })
	if _, err := env2.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &before}); err != nil {
		t.Errorf("a certificate issued before the dump: %v", err)
	}
	_, err = env2.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf(),
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidStateException")
	// A database a server runs on is no restored one.
	if out, err := restore(); err == nil || !strings.Contains(err.Error(), "other sessions") || !strings.Contains(err.Error(), "openpca") {
		t.Errorf("a restore beside a running server: %v\n%s", err, out)
	}
}

// TestRestoreRecordTakenBack: a restore interrupted while it waits for a
// session from before its record (a running server's) takes its record
// back, which would otherwise refuse every server that starts; and a
// restore beside another restore leaves that one's record, which servers
// must keep refusing until that one settles the database.
func TestRestoreRecordTakenBack(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	env := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore = dsn, "local" })
	masterKey := filepath.Join(env.Config.DataDir, "master.key")
	activeCAWithCRLs(t, env)
	restoredDSN := testenv.RestorePostgresDB(t, dsn)
	begun := func() (n int) {
		readFrom(t, restoredDSN, `SELECT COUNT(*) FROM settings WHERE name = 'restore-begun'`, &n)
		return n
	}
	restore := func(ctx context.Context) error {
		var out bytes.Buffer
		return run(ctx, []string{"restore", "--database", restoredDSN, "--master-key-file", masterKey}, &out, &out, func(string) (string, bool) { return "", false })
	}
	session := func(name string) *sql.DB {
		db, err := sql.Open("pgx", restoredDSN+"&application_name="+name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		return db
	}

	server := session("openpca")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- restore(ctx) }()
	for deadline := time.Now().Add(time.Minute); begun() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restore not recorded after a minute")
		}
	}
	time.Sleep(500 * time.Millisecond) // within its wait for the session
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "nothing was settled") {
		t.Errorf("an interrupted restore: %v", err)
	}
	if n := begun(); n != 0 {
		t.Error("a restore interrupted beside a server left its record, which servers refuse")
	}
	server.Close()

	// Another restore, checking the logs: its record, and its session.
	other := session(postgres.CommandSession("restore"))
	if _, err := other.ExecContext(t.Context(), `INSERT INTO settings (name, value) VALUES ('restore-begun', '2026-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if err := restore(t.Context()); err == nil || !strings.Contains(err.Error(), "another restore runs on it") {
		t.Errorf("a restore beside another: %v", err)
	}
	if n := begun(); n != 1 {
		t.Error("a restore beside another took that one's record back")
	}
}

// TestRestoreKeepsItsRecord: a session that appears on a restored
// database after the restore's first look for sessions (a server being
// refused, an operator's psql) makes the settling refuse, and the database
// stays recorded as being restored: servers still refuse it, rather than
// serve it unsettled. The test moves the restore along with the advisory
// lock that opening and migrating the schema take.
func TestRestoreKeepsItsRecord(t *testing.T) {
	const migrationLock int64 = 0x6f70656e706361 // package postgres's
	dsn := testenv.NewPostgresDB(t)
	env := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore = dsn, "local" })
	ctx := t.Context()
	masterKey := filepath.Join(env.Config.DataDir, "master.key")
	activeCAWithCRLs(t, env)
	restoredDSN := testenv.RestorePostgresDB(t, dsn)
	pool, err := sql.Open("pgx", restoredDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var holders [2]*sql.Conn
	for i := range holders {
		if holders[i], err = pool.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		defer holders[i].Close()
	}
	exec := func(c *sql.Conn, q string, args ...any) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what, q string, args ...any) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			var yes bool
			if err := holders[0].QueryRowContext(ctx, q, args...).Scan(&yes); err != nil {
				t.Fatal(err)
			}
			if yes {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after a minute", what)
			}
		}
	}
	exec(holders[0], `SELECT pg_advisory_lock($1)`, migrationLock)
	restored := make(chan error, 1)
	go func() {
		_, err := runOpenpca(t, "restore", "--database", restoredDSN, "--master-key-file", masterKey)
		restored <- err
	}()
	// The restore opens the database, and waits for the lock.
	var name string
	waitFor("the restore waits to open", `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name LIKE 'openpca-restore-%' AND wait_event_type = 'Lock')`)
	if err := holders[0].QueryRowContext(ctx, `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'openpca-restore-%' LIMIT 1`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	// The holders pass for the restore's own sessions, which it does not
	// count; the second queues for the lock behind the restore.
	for _, c := range holders {
		exec(c, `SELECT set_config('application_name', $1, false)`, name)
	}
	second := make(chan error, 1)
	go func() {
		_, err := holders[1].ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock)
		second <- err
	}()
	waitFor("the second holder queues", `SELECT COUNT(*) >= 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
	exec(holders[0], `SELECT pg_advisory_unlock($1)`, migrationLock)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	// The restore has recorded itself, looked for sessions, and waits to
	// migrate: a session appears.
	waitFor("the restore waits to migrate", `SELECT EXISTS (SELECT FROM settings WHERE name = 'restore-begun')
		AND EXISTS (SELECT FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock')`, name)
	other, err := sql.Open("pgx", restoredDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	exec(holders[1], `SELECT pg_advisory_unlock($1)`, migrationLock)
	if err := <-restored; err == nil || !strings.Contains(err.Error(), "other sessions") {
		t.Fatalf("a restore with a session at its settling: %v", err)
	}
	other.Close()
	unsettled := env.Config
	unsettled.Database, unsettled.DataDir, unsettled.MasterKeyFile = restoredDSN, t.TempDir(), masterKey
	if s, err := app.Open(ctx, unsettled); err == nil || !strings.Contains(err.Error(), "has not settled it") {
		if err == nil {
			s.Close()
		}
		t.Errorf("a server on a restored database whose settling was refused: %v", err)
	}
}

// copyBackup copies the backup file at path, to be tampered with, and
// opens the copy.
func copyBackup(t *testing.T, path string) (string, *sql.DB) {
	t.Helper()
	tampered := filepath.Join(t.TempDir(), "tampered.backup")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tampered, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+tampered)
	if err != nil {
		t.Fatal(err)
	}
	return tampered, db
}

// TestRestoreUpgradeRunAgain: a backup whose record of the migration that
// began logging imports was taken out, its index too, and its CA's
// certificate changed, is migrated again as it is restored; but the
// upgrade logs the certificate of no CA whose log imports one already,
// and the restore is refused. With the import's kind changed as well, so
// that the upgrade logs the certificate, the kind is found. A CA without
// a certificate given one so is restored, and the restore names it.
func TestRestoreUpgradeRunAgain(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Upgraded Root")
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	pendingARN := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Pending Root")
	pendingID := pendingARN[strings.LastIndex(pendingARN, "/")+1:]
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", env.Config.DataDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, tc := range []struct {
		name, edit, want string
		listed           string // the CA the restore says it gave the upgrade's import
	}{
		{"kind kept", `UPDATE certificate_authorities SET certificate = x'3000' WHERE id = '` + caID + `'`,
			"entry 2 of the log of CA " + caID + " is the last import of the CA's certificate, but not of the certificate and chain it holds", ""},
		{"kind changed", `UPDATE key_uses SET kind = 'CSR' WHERE kind = 'IMPORT'; UPDATE certificate_authorities SET certificate = x'3000' WHERE id = '` + caID + `'`,
			`entry 2 of the log of CA ` + caID + ` is stored as an entry of kind "CSR"`, ""},
		{"a certificate for none", `UPDATE certificate_authorities SET certificate = x'3000' WHERE id = '` + pendingID + `'`, "", pendingARN},
		// By a server whose clock ran ahead: the upgrade's alone are listed.
		{"an import dated ahead", `UPDATE key_uses SET at = at + 3600000000 WHERE kind = 'IMPORT'`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tampered, db := copyBackup(t, backup)
			for _, q := range []string{`DELETE FROM schema_migrations WHERE version = 30`, `DROP INDEX key_uses_imports`, tc.edit} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			out, err := runOpenpca(t, "restore", "--from", tampered, "--data-dir", filepath.Join(t.TempDir(), "restored"), "--master-key-file", filepath.Join(env.Config.DataDir, "master.key"))
			listed := regexp.MustCompile(`\(openpca:upgrade\)[^\n]*\n((?:  [^\n]*\n)*)`).FindStringSubmatch(out)
			switch {
			case tc.want == "" && (err != nil || tc.listed == "" && listed != nil || tc.listed != "" && (listed == nil || listed[1] != "  "+tc.listed+"\n")):
				t.Errorf("restore: %v\n%s\nwant it to name %q alone as given the upgrade's import", err, out, tc.listed)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("restore: %v\n%s\nwant an error with %q", err, out, tc.want)
			}
		})
	}
}

// TestRestoreNamesBadLogs: a restore refused for logs that do not verify
// names each CA whose log fails, by ARN, up to ten, and how many more,
// not the first alone; and the CAs of no account (its row deleted) are
// checked too.
func TestRestoreNamesBadLogs(t *testing.T) {
	env := testenv.Start(t)
	var arns []string
	for i := range 12 {
		arns = append(arns, env.CreateCA(t, types.CertificateAuthorityTypeRoot, fmt.Sprintf("CA %d", i)))
	}
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", env.Config.DataDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", "file:"+backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE key_uses SET record = CAST('forged' AS BLOB) WHERE seq = 0`, `DELETE FROM accounts`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, err := runOpenpca(t, "restore", "--from", backup, "--data-dir", t.TempDir(), "--master-key-file", filepath.Join(env.Config.DataDir, "master.key"))
	if err == nil {
		t.Fatalf("a backup with a record changed in every log restored:\n%s", out)
	}
	for i, arn := range arns {
		if named := strings.Contains(err.Error(), arn+": "); named != (i < 10) {
			t.Errorf("CA %d of 12 named: %v", i+1, named)
		}
	}
	if !strings.Contains(err.Error(), "and the logs of 2 more CAs") {
		t.Errorf("the CAs past ten not counted: %v", err)
	}
}

// TestRestoreChecksLogs: a backup whose key-use logs were changed, by
// damage or by hand, in ways PRAGMA quick_check cannot see, is refused,
// naming what is wrong, and leaves no database: a record, an entry, a
// revocation, a stored hash, and the logs' agreement with the checkpoints
// witnesses cosigned, which a log rewritten whole, hashes too, breaks.
func TestRestoreChecksLogs(t *testing.T) {
	env := testenv.Start(t)
	ctx := t.Context()
	caARN, _ := env.NewActiveRoot(t, "Restored Root")
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	issue := func() string {
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
		return strings.ToLower(arn[strings.LastIndex(arn, "/")+1:])
	}
	issue()
	first, revoked := issue(), issue()
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(revoked), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	checkpoint := func() []byte {
		status, _, body := env.Get(t, server.PathCheckpoint+"?certificateAuthorityArn="+url.QueryEscape(caARN))
		if status != http.StatusOK {
			t.Fatalf("checkpoint: %d %s", status, body)
		}
		return body
	}
	now := checkpoint()
	backup := filepath.Join(t.TempDir(), "openpca.backup")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", env.Config.DataDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	issue()
	later := checkpoint()
	// A note the server never signed, and one it seems to, whose tree is
	// another: the audit key's setting names the forger's key.
	forgerKey, forgerVerifier, err := note.GenerateKey(rand.Reader, "forger")
	if err != nil {
		t.Fatal(err)
	}
	forger, err := note.NewSigner(forgerKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auditlog.Checkpoint{Origin: auditlog.Origin(caARN), Size: 2, Root: tlog.Hash{1}, Time: time.Now().UTC().Truncate(time.Second)}.Sign(forger)
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint as the server signed it, signed by the forger: the
	// log's own tree, under another key.
	c, err := auditlog.ParseCheckpoint(string(now[:bytes.Index(now, []byte("\n\n"))+1]))
	if err != nil {
		t.Fatal(err)
	}
	forgedAsItWas, err := c.Sign(forger)
	if err != nil {
		t.Fatal(err)
	}
	const witnessed = `INSERT INTO witnessing (ca_id, size, note, cosigners) VALUES (?, 0, ?, 1)`
	const forgersKey = `UPDATE settings SET value = json_set(CAST(value AS TEXT), '$.verifierKey', ?2) WHERE name = 'audit-signing-key' AND ?1 <> ''`
	tests := []struct {
		name   string
		tamper []string // SQL, with the CA's id and args for arguments
		args   []any
		want   string
	}{
		{"record changed", []string{`UPDATE certificates SET subject = 'CN=forged.example' WHERE ca_id = ? AND serial = ?`}, []any{first},
			"does not match the hash the log stored for it"},
		// A deleted CA may be restored, and its log with it.
		{"record changed, CA deleted", []string{`UPDATE certificate_authorities SET status = 'DELETED', restorable_until = last_state_change_at + 3600000000 WHERE id = ? AND ? IS NULL`,
			`UPDATE certificates SET subject = 'CN=forged.example' WHERE ca_id = ? AND serial = ?`}, []any{nil, first},
			"does not match the hash the log stored for it"},
		{"entry removed", []string{`DELETE FROM key_uses WHERE ca_id = ? AND seq = 2 AND ? <> ''`}, []any{first}, "is missing"},
		{"revocation hidden", []string{`UPDATE certificates SET revoked_at = NULL, revocation_reason = '', revoke_seq = NULL WHERE ca_id = ? AND serial = ?`}, []any{revoked},
			"which the certificates' table shows as not revoked"},
		// One that the log's root is made of.
		{"stored hash changed", []string{`UPDATE key_uses SET hashes = substr(hashes, 1, 64) || zeroblob(32) WHERE ca_id = ? AND seq = 3 AND ? <> ''`}, []any{first},
			"entry 3 of the log of CA " + caID + " has hashes of the log's tree stored with it that are not the tree's"},
		// Of entries 0 and 1, which no root of a log this size reads, but
		// proofs do.
		{"interior hash changed", []string{`UPDATE key_uses SET hashes = substr(hashes, 1, 32) || zeroblob(32) WHERE ca_id = ? AND seq = 1 AND ? <> ''`}, []any{first},
			"entry 1 of the log of CA " + caID + " has hashes of the log's tree stored with it that are not the tree's"},
		{"witnessed as it was", []string{witnessed}, []any{now}, ""},
		{"witnessed longer", []string{witnessed}, []any{later}, "is missing: witnesses cosigned"},
		{"witnessed note not the server's", []string{witnessed}, []any{forged}, "whose witnessed checkpoint the server did not sign"},
		{"witnessed another tree", []string{witnessed, forgersKey}, []any{forged, forgerVerifier}, "are not the log that witnesses cosigned"},
		// Only the master key shows which verifier key is the server's.
		{"witnessed as it was, by another key", []string{witnessed, forgersKey}, []any{forgedAsItWas, forgerVerifier},
			"the verifier key stored beside the audit key is not the key's"},
		// A purge claims a CA, then deletes its log a chunk at a time: a
		// backup between two chunks is sound, and the purge ends once
		// restored.
		{"CA half purged", []string{`UPDATE certificate_authorities SET status = 'DELETED', restorable_until = 0 WHERE id = ? AND ? IS NULL`,
			`DELETE FROM key_uses WHERE ca_id = ? AND seq < ?`}, []any{nil, 2}, ""},
		// A log cut short, its size made smaller: its last entry, and the
		// certificate that names it, are past its size.
		{"log cut short", []string{`UPDATE key_use_logs SET size = size - 1 WHERE ca_id = ? AND ? IS NULL`}, []any{nil},
			"those of " + caARN + " hold entries past their size"},
		// What the CA hands out as its certificate and chain, and names as
		// the issuer of what it signs, is what its log last imported.
		{"certificate changed", []string{`UPDATE certificate_authorities SET certificate = ?2 WHERE id = ?1`}, []any{[]byte{0x30, 0}},
			"entry 2 of the log of CA " + caID + " is the last import of the CA's certificate, but not of the certificate and chain it holds"},
		{"chain put in", []string{`UPDATE certificate_authorities SET certificate_chain = ?2 WHERE id = ?1`},
			[]any{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})},
			"is the last import of the CA's certificate, but not of the certificate and chain it holds"},
		{"chain with text", []string{`UPDATE certificate_authorities SET certificate_chain = CAST(?2 AS BLOB) WHERE id = ?1`}, []any{"hello"},
			"its certificate chain is not PEM as a server stores it"},
		{"expiry put off", []string{`UPDATE certificate_authorities SET not_after = not_after + 3600000000 WHERE id = ? AND ? IS NULL`}, []any{nil},
			"imported a certificate valid from"},
		{"serial changed", []string{`UPDATE certificate_authorities SET serial = '4242' WHERE id = ? AND ? IS NULL`}, []any{nil},
			"but the CA's row says 4242"},
		// The kind an entry is stored as, by which the last import is
		// found, is its record's.
		{"import stored as a CSR", []string{`UPDATE key_uses SET kind = 'CSR' WHERE ca_id = ? AND seq = ?`}, []any{2},
			`entry 2 of the log of CA ` + caID + ` is stored as an entry of kind "CSR", which its record is not`},
		// The edge the next append starts from is not checked, but
		// forgotten (see below).
		{"kept edge changed", []string{`UPDATE key_use_logs SET tree_edge = substr(tree_edge, 1, length(tree_edge) - 32) || zeroblob(32) WHERE ca_id = ? AND ? IS NULL`},
			[]any{nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered, db := copyBackup(t, backup)
			for i, q := range tt.tamper {
				res, err := db.Exec(q, caID, tt.args[i])
				if n, _ := res.RowsAffected(); err != nil || n == 0 {
					t.Fatalf("tampering: %d rows, %v", n, err)
				}
			}
			db.Close()
			restored := filepath.Join(t.TempDir(), "restored")
			out, err := runOpenpca(t, "restore", "--from", tampered, "--data-dir", restored, "--master-key-file", filepath.Join(env.Config.DataDir, "master.key"))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("a restore of a sound backup: %v\n%s", err, out)
				}
				// The operator is told of a log checked against itself alone.
				if said := strings.Contains(out, "witnesses cosigned: 1. Their logs were checked against themselves alone"); said == (tt.name == "witnessed as it was") {
					t.Errorf("a restore of a CA whose log witnesses cosigned (%v) said it was unwitnessed (%v):\n%s", tt.name == "witnessed as it was", said, out)
				}
				// Each log's next append rebuilds its edge from the
				// checked hashes.
				db, err := sql.Open("sqlite", "file:"+filepath.Join(restored, "openpca.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				var kept int
				if err := db.QueryRow(`SELECT COUNT(*) FROM key_use_logs WHERE tree_edge IS NOT NULL`).Scan(&kept); err != nil || kept != 0 {
					t.Errorf("the restored logs keep %d edges (%v)", kept, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("restore: %v\n%s\nwant an error with %q", err, out, tt.want)
			}
			if _, err := os.Stat(filepath.Join(restored, "openpca.db")); !os.IsNotExist(err) {
				t.Errorf("a refused restore left a database: %v", err)
			}
		})
	}
}
