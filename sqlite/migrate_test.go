package sqlite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"math/big"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/sqlstore"
)

// TestReadOnlyKeysMigrate opens a database of the version before key
// policies, with a read-only key and a key with every right: after the
// migration, the first has the managed ReadOnly policy, which allows what
// read-only did, and the other none, which allows everything.
func TestReadOnlyKeysMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw := oldDatabase(t, path, 9) // up to 0009, the last without key policies
	for _, q := range []string{
		`INSERT INTO accounts (id, name, created_at) VALUES ('111122223333', 'a', 0)`,
		`INSERT INTO access_keys (id, account_id, sealed_secret, created_at, read_only) VALUES ('OPCAREADER', '111122223333', x'00', 0, TRUE)`,
		`INSERT INTO access_keys (id, account_id, sealed_secret, created_at, read_only) VALUES ('OPCAWRITER', '111122223333', x'00', 0, FALSE)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err := Open(ctx, path, Options{Bind: storetest.Unopened})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.FindAccessKey(ctx, "OPCAREADER")
	if err != nil || !reflect.DeepEqual(reader.Policies, []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}) {
		t.Errorf("the read-only key: %+v, %v", reader, err)
	}
	if writer, err := db.FindAccessKey(ctx, "OPCAWRITER"); err != nil || writer.Policies != nil {
		t.Errorf("the key with every right: %+v, %v", writer, err)
	}
}

// oldDatabase makes a database at path with the first n migrations.
func oldDatabase(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range names[:n] {
		body, _ := fs.ReadFile(migrations, name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// TestRestoreBeforeKeyStores restores a backup of the version before key
// stores (migration 11), whose CAs have no key_store: every key was in
// software, so no deleted CA is kept for a shared store's sake.
func TestRestoreBeforeKeyStores(t *testing.T) {
	from := filepath.Join(t.TempDir(), "backup.db")
	oldDatabase(t, from, 10).Close()
	sum, err := Restore(t.Context(), from, filepath.Join(t.TempDir(), "openpca.db"), 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil)
	if err != nil || len(sum.DeletedKept) != 0 {
		t.Errorf("restoring a backup of the version before key stores: %+v, %v", sum, err)
	}
}

// TestCertificatesMigrate opens a database of the version that kept each
// certificate's DER and fields in one wide row beside its issuance's whole
// record: after the migration, the certificate reads back the same, its
// log entry keeps its record, and the log's tree still holds.
func TestCertificatesMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := oldDatabase(t, path, 11) // up to 0011, the last with wide certificates
	o := storetest.NewOldCertificate(t)
	ca, c := o.CA, o.Certificate
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO certificate_authorities (id, account_id, arn, type, status, created_at, last_state_change_at, config, key_storage, usage_mode,
			key_handle, csr, version) VALUES (?, ?, ?, 'ROOT', 'ACTIVE', 0, 0, '{}', '', 'GENERAL_PURPOSE', x'00', x'00', 1)`, []any{ca.ID, ca.AccountID, ca.ARN}},
		{`INSERT INTO key_use_logs (ca_id, size) VALUES (?, 2)`, []any{ca.ID}},
		{`INSERT INTO key_uses (ca_id, seq, kind, at, serial, record, hashes) VALUES (?, 0, ?, 0, '', ?, ?), (?, 1, ?, ?, ?, ?, ?)`,
			[]any{ca.ID, o.CSR.Kind, o.CSR.Record, o.Hashes[0], ca.ID, o.Issue.Kind, c.IssuedAt.UnixMicro(), c.Serial, o.Issue.Record, o.Hashes[1]}},
		{`INSERT INTO certificates (ca_id, serial, account_id, arn, certificate, subject, not_before, not_after, issued_at, template_arn,
			requested_by, request_id, issue_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			[]any{ca.ID, c.Serial, c.AccountID, c.ARN, c.DER, c.Subject, c.NotBefore.UnixMicro(), c.NotAfter.UnixMicro(), c.IssuedAt.UnixMicro(),
				c.TemplateARN, c.RequestedBy, c.RequestID}},
	} {
		if _, err := raw.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	o.Check(t, db)
}

// TestMigrationsAllOrNone: an upgrade whose late migration fails leaves
// the schema as it was, none of its migrations applied; once what failed
// it is gone, it applies whole.
func TestMigrationsAllOrNone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw := oldDatabase(t, path, 12)
	defer raw.Close()
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	// A late migration makes an index of this name.
	if _, err := raw.Exec(`CREATE TABLE console_sessions_by_key (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, Options{}); err == nil || !strings.Contains(err.Error(), "_console_sessions_by_key.sql") {
		t.Fatalf("an upgrade whose late migration fails: %v", err)
	}
	var version, witnessing int
	if err := raw.QueryRow(`SELECT (SELECT MAX(version) FROM schema_migrations), (SELECT COUNT(*) FROM sqlite_master WHERE name = 'witnessing')`).Scan(&version, &witnessing); err != nil {
		t.Fatal(err)
	}
	if version != 12 || witnessing != 0 {
		t.Errorf("after the failed upgrade: version %d, table witnessing %d; want 12, and none of 0013", version, witnessing)
	}
	if _, err := raw.Exec(`DROP TABLE console_sessions_by_key`); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != len(names) {
		t.Errorf("schema version %d, %v; want %d", v, err, len(names))
	}
}

// TestEarlierCAsCompleted opens a database of the version before OCSP and
// CRL publishing: its CAs get the hash of their key, which OCSP requests
// name them by, from their CSR or else their certificate, and those whose
// CRLs were enabled the row of their CRLs' publication. A CA whose key
// cannot be read keeps none, and the database opens.
func TestEarlierCAsCompleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := oldDatabase(t, path, 5) // up to 0005, the last without crl_publications and key_id
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Earlier"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Earlier"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ski, _ := pki.SubjectKeyID(key.Public())
	want := hex.EncodeToString(ski)
	crl := `{"CrlConfiguration":{"Enabled":true,"S3BucketName":"crls"}}`
	for _, ca := range []struct {
		id, revocation string
		csr, cert      []byte
	}{
		{"crl", crl, csr, nil},
		{"nocrl", `{}`, csr, nil},
		{"certonly", `{}`, []byte{}, cert},
		{"unreadable", crl, []byte{0}, nil},
	} {
		if _, err := raw.Exec(`INSERT INTO certificate_authorities (id, account_id, arn, type, status, created_at, last_state_change_at, config, revocation,
			key_storage, usage_mode, sealed_key, csr, certificate, version) VALUES (?, '123456789012', ?, 'ROOT', 'ACTIVE', 0, 0, '{}', ?, '', 'GENERAL_PURPOSE', x'00', ?, ?, 1)`,
			ca.id, "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"+ca.id, ca.revocation, ca.csr, ca.cert); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	for range 2 { // and once done, again
		db, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for id, keyID := range map[string]string{"crl": want, "nocrl": want, "certonly": want, "unreadable": ""} {
			if ca, err := db.FindCA(t.Context(), "123456789012", id); err != nil || ca.KeyID != keyID {
				t.Errorf("CA %s: %v, key hash %q, want %q", id, err, ca.KeyID, keyID)
			}
		}
		db.Close()
		raw, _ := sql.Open("sqlite", "file:"+path)
		var wanted []string
		rows, err := raw.Query(`SELECT ca_id || ':' || wanted FROM crl_publications ORDER BY ca_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			wanted = append(wanted, s)
		}
		raw.Close()
		if !reflect.DeepEqual(wanted, []string{"crl:1", "unreadable:1"}) {
			t.Errorf("CRL publications: %v", wanted)
		}
	}
}

// TestEarlierImportsLogged: see storetest.EarlierImports.
func TestEarlierImportsLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openpca.db")
	open := func(t *testing.T) *sqlstore.DB {
		db, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	exec := func(q string, args ...any) {
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	storetest.EarlierImports(t, open, func(held, pending, purged string, chain []byte) {
		exec(`UPDATE certificate_authorities SET certificate = x'01', certificate_chain = ?, not_before = 1000000, not_after = 2000000 WHERE id IN (?, ?)`, chain, held, purged)
		exec(`UPDATE certificate_authorities SET status = 'DELETED', restorable_until = 0 WHERE id = ?`, purged)
		exec(`DELETE FROM schema_migrations WHERE version = 30`)
		exec(`DROP INDEX key_uses_imports`)
	}, func(held string) {
		exec(`UPDATE certificate_authorities SET certificate = x'02' WHERE id = ?`, held)
	})
}

// TestBoundAccessKeys: see storetest.BoundAccessKeys.
func TestBoundAccessKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openpca.db")
	storetest.BoundAccessKeys(t, func(t *testing.T, bind sqlstore.Binder) (*sqlstore.DB, error) {
		return Open(t.Context(), path, Options{Bind: bind})
	}, func() {
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = 33`); err != nil {
			t.Fatal(err)
		}
	})
}
