package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// TestBackup backs a database up while issuances go on, restores the
// backup, and finds in it every issuance finished before the backup began,
// each with its log entry: one commit's state, with nothing half-written.
func TestBackup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ca := newActiveCA(t, db)
	// A key being made in KMS for a CA not yet stored, at the backup.
	made := &openpca.CA{ID: uuid.NewString(), KeyStore: "kms", KeyHandle: []byte("handle-made"), KeyID: "k"}
	made.ARN = openpca.CAARN("us-east-1", ca.AccountID, made.ID)
	if err := db.RecordKeyMade(ctx, made, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := range int64(200) {
		if err := recordIssuance(ctx, db, ca, i); err != nil {
			t.Fatal(err)
		}
	}
	// A console session, which a restore does not keep: it may have
	// been signed out since.
	if raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "openpca.db")); err != nil {
		t.Fatal(err)
	} else if _, err := raw.Exec(`INSERT INTO console_sessions VALUES (x'01', 'key', 'csrf', 1, 9000000000000000)`); err != nil || raw.Close() != nil {
		t.Fatal(err)
	}
	// Issuances go on during the backup. They finish in any order: the
	// numbers taken are not all done.
	var next atomic.Int64
	next.Store(200)
	var mu sync.Mutex
	done := make(map[int64]bool)
	for i := range int64(200) {
		done[i] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1) - 1
				if err := recordIssuance(context.Background(), db, ca, i); err != nil {
					failed.Store(err)
					return
				}
				mu.Lock()
				done[i] = true
				mu.Unlock()
			}
		})
	}
	mu.Lock()
	before := maps.Clone(done) // done before the backup began
	mu.Unlock()
	to := filepath.Join(t.TempDir(), "backup.db")
	sum, err := sqlite.Backup(ctx, filepath.Join(dir, "openpca.db"), to)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup: %v, %v; want a file readable by its owner alone", fi, err)
	}
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "openpca.db"), to); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second backup to the same file: %v; want it refused", err)
	}
	if matches, _ := filepath.Glob(to + ".partial-*"); len(matches) > 0 {
		t.Fatalf("left behind: %v", matches)
	}
	backupsAtOnce(t, filepath.Join(dir, "openpca.db"))
	// A backup to another name removes the copy one to an earlier name
	// left when cut short (a nightly backup's name changes each night),
	// and leaves folders of like names that are no copies: one that
	// holds something else, one whose db is a folder, one not named as
	// copies' folders are.
	earlier := filepath.Join(filepath.Dir(to), "nightly-1.db.partial-42")
	kept := []string{
		filepath.Join(filepath.Dir(to), "notes.partial-7", "notes.txt"),
		filepath.Join(filepath.Dir(to), "thesis.partial-8", "db", "chapter1.tex"),
		filepath.Join(filepath.Dir(to), "thesis.partial-v2", "db"),
	}
	// Nor is another user's, which may hold anything and, in a shared
	// folder, could not be removed (that failed the backup).
	othersCopy := filepath.Join(filepath.Dir(to), "theirs.db.partial-9", "db")
	if os.Geteuid() == 0 {
		kept = append(kept, othersCopy)
	}
	for _, f := range append([]string{filepath.Join(earlier, "db")}, kept...) {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil || os.WriteFile(f, []byte("x"), 0o600) != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Dir(othersCopy), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "openpca.db"), filepath.Join(filepath.Dir(to), "nightly-2.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(earlier); !os.IsNotExist(err) {
		t.Errorf("the copy an earlier backup left: %v", err)
	}
	for _, f := range kept {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("a folder that is no copy: %v", err)
		}
	}

	restored := filepath.Join(t.TempDir(), "openpca.db")
	restoredSum, err := sqlite.Restore(ctx, to, restored, 1_000_000, time.Now(), sqlstore.Settling{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"kms handle-made (" + made.ARN + ")"}
	if !slices.Equal(restoredSum.KeysNotHeld, wantKeys) {
		t.Errorf("keys made for CAs not held: %q; want %q", restoredSum.KeysNotHeld, wantKeys)
	}
	if !slices.Equal(restoredSum.Active, []string{ca.ARN}) || restoredSum.KeptStatus {
		t.Errorf("CAs active in the backup: %q, kept %v; want %q, disabled", restoredSum.Active, restoredSum.KeptStatus, ca.ARN)
	}
	if restoredSum.Unwitnessed != 1 {
		t.Errorf("CAs whose logs no witness cosigned: %d; want 1", restoredSum.Unwitnessed)
	}
	restoredSum.KeysNotHeld, restoredSum.Active, restoredSum.Unwitnessed = nil, nil, 0
	// Restored once its certificate has expired, the CA is EXPIRED to its
	// account, which could not enable it again: it is left, and not
	// listed.
	expired := filepath.Join(t.TempDir(), "openpca.db")
	if later, err := sqlite.Restore(ctx, to, expired, 1, time.Now().AddDate(100, 0, 0), sqlstore.Settling{}, nil, nil); err != nil || len(later.Active) != 0 {
		t.Errorf("restored after the CA expired: active %q, %v; want none", later.Active, err)
	}
	if raw, err := sql.Open("sqlite", "file:"+expired+"?mode=ro"); err != nil {
		t.Fatal(err)
	} else {
		var status string
		if err := raw.QueryRow(`SELECT status FROM certificate_authorities WHERE id = ?`, ca.ID).Scan(&status); err != nil || status != "ACTIVE" {
			t.Errorf("the expired CA, restored, is %s, %v; want it left ACTIVE (its account sees EXPIRED)", status, err)
		}
		raw.Close()
	}
	if !reflect.DeepEqual(restoredSum, sum) || sum.CAs != 1 || sum.Last.IsZero() {
		t.Fatalf("restored %+v of a backup of %+v; want the same, with one CA and a last key use", restoredSum, sum)
	}
	if _, err := sqlite.Restore(ctx, to, restored, 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil); err == nil {
		t.Fatal("a restore over a database: no error")
	}
	// The CA had no CRLs: should they be enabled, they are numbered past
	// any it published after the backup.
	raw, err := sql.Open("sqlite", "file:"+restored+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var number int64
	if err := raw.QueryRow(`SELECT number FROM crl_publications WHERE ca_id = ?`, ca.ID).Scan(&number); err != nil || number != 999_999 {
		t.Errorf("the restored CA's last CRL number: %d, %v; want 999999", number, err)
	}
	var status string
	var sessions int
	if err := raw.QueryRow(`SELECT status, (SELECT COUNT(*) FROM console_sessions) FROM certificate_authorities WHERE id = ?`, ca.ID).Scan(&status, &sessions); err != nil ||
		status != "DISABLED" || sessions != 0 {
		t.Errorf("the restored CA is %s, with %d console sessions, %v; want it DISABLED, and none", status, sessions, err)
	}
	raw.Close()
	rdb, err := sqlite.Open(ctx, restored, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	// The restored server leaves that key alone, whenever it purges.
	if keys, err := rdb.KeysToDestroy(ctx, time.Now().Add(2*openpca.KeyMadeGrace)); err != nil || len(keys) != 0 {
		t.Errorf("keys the restored server would destroy: %+v, %v", keys, err)
	}
	size, err := rdb.LogSize(ctx, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if size != sum.KeyUses {
		t.Fatalf("the restored log has %d entries; the backup said %d", size, sum.KeyUses)
	}
	// The log has the CA's CSR, then the issuances: those done before the
	// backup began at least, each with its certificate, and no more
	// certificates than it logs.
	if size < int64(len(before))+1 {
		t.Fatalf("the restored log has %d entries; %d were logged before the backup began", size, len(before)+1)
	}
	n := next.Load()
	var found int64
	for i := range n {
		_, err := rdb.FindCertificate(ctx, ca.ID, serial(i))
		switch {
		case err == nil:
			found++
		case !errors.Is(err, openpca.ErrNotFound):
			t.Fatal(err)
		case before[i]:
			t.Fatalf("certificate %d, issued before the backup began, is not in it", i)
		}
	}
	if found != size-1 {
		t.Fatalf("the backup holds %d certificates and logs %d issuances", found, size-1)
	}
	if size-1 >= n {
		t.Fatalf("the backup logs %d issuances, of %d made", size-1, n)
	}
	t.Logf("backed up %d of %d issuances, %d before it began", size-1, n, len(before))
}

// TestBackupRefuses checks what Backup and Restore refuse to read.
func TestBackupRefuses(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.db")
	db, err := sqlite.Open(ctx, filepath.Join(dir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca := newActiveCA(t, db)
	for i := range int64(300) {
		if err := recordIssuance(ctx, db, ca, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "openpca.db"), damaged); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Pages past the first, overwritten.
	f, err := os.OpenFile(damaged, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 16384); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct{ name, from, want, backupWant string }{
		{"missing", filepath.Join(dir, "none.db"), "no such file", "unable to open"},
		{"not a database", notDB, "not an OpenPCA database", "file is not a database"},
		{"an empty database", filepath.Join(dir, "empty.db"), "not an OpenPCA database", "not an OpenPCA database"},
		{"damaged", damaged, "damaged", ""},
		{"a server's database", filepath.Join(dir, "openpca.db"), "not a backup", ""},
		{"a folder", dir, "not a file", ""},
		{"a named pipe", filepath.Join(dir, "pipe"), "not a file", ""}, // open waited for a writer, for good
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.name {
			case "an empty database":
				if err := os.WriteFile(tc.from, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			case "a named pipe":
				if err := syscall.Mkfifo(tc.from, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := filepath.Join(t.TempDir(), "openpca.db")
			_, err := sqlite.Restore(ctx, tc.from, target, 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v; want an error with %q", err, tc.want)
			}
			if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(target), "*")); len(matches) > 0 {
				t.Fatalf("a failed restore left %v", matches)
			}
			if tc.backupWant == "" {
				return
			}
			to := filepath.Join(t.TempDir(), "b.db")
			if _, err := sqlite.Backup(ctx, tc.from, to); err == nil || !strings.Contains(err.Error(), tc.backupWant) {
				t.Fatalf("backup: %v; want an error with %q", err, tc.backupWant)
			}
			if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(to), "*")); len(matches) > 0 {
				t.Fatalf("a failed backup left %v", matches)
			}
			if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
				t.Fatal("a backup of a database that is not there made it")
			}
		})
	}
}

// TestRestoreRefusesChangedSchema: a backup whose schema is not the one
// OpenPCA's migrations make is refused, and nothing is restored. A
// trigger would otherwise run at every change servers make to the
// restored database (here, undoing each access key's revocation), and a
// view in a table's place held the restore's first query for good: both
// are refused by the first look, before anything runs on the copy.
func TestRestoreRefusesChangedSchema(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca := newActiveCA(t, db)
	for i := range int64(10) {
		if err := recordIssuance(ctx, db, ca, i); err != nil {
			t.Fatal(err)
		}
	}
	// Its counter (sqlite_sequence) is then at its last row.
	if err := db.RecordOperatorAction(ctx, &openpca.OperatorAction{At: time.Now(), User: "u", Host: "h", Command: "accounts create", Detail: "d"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "openpca.db"), backup); err != nil {
		t.Fatal(err)
	}
	db.Close()
	body, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, change, want string }{
		{"a trigger", `CREATE TRIGGER keep_keys AFTER UPDATE OF revoked_at ON access_keys WHEN NEW.revoked_at IS NOT NULL BEGIN UPDATE access_keys SET revoked_at = NULL WHERE id = NEW.id; END`, "holds the trigger keep_keys, and OpenPCA makes no triggers or views"},
		{"a view for a table", `DROP TABLE schema_migrations; CREATE VIEW schema_migrations AS WITH RECURSIVE c(version) AS (SELECT 1 UNION ALL SELECT version + 1 FROM c) SELECT version FROM c`, "holds the view schema_migrations, and OpenPCA makes no triggers or views"},
		{"an index added", `CREATE INDEX extra ON certificates (serial)`, "holds the index extra"},
		{"planner statistics", `ANALYZE`, "holds the table sqlite_stat1"},
		{"a column added", `ALTER TABLE certificates ADD COLUMN extra TEXT`, "has the table certificates other than"},
		{"an index dropped", `DROP INDEX audit_reports_by_ca`, "lacks the index audit_reports_by_ca"},
		{"another page size", `PRAGMA page_size = 65536; VACUUM`, "pages of 65536 bytes"},
		{"auto-vacuum", `PRAGMA auto_vacuum = FULL; VACUUM`, "auto_vacuum 1"},
		{"the operator log's counter at its end", `INSERT INTO sqlite_sequence (name, seq) VALUES ('operator_actions', 9223372036854775807)`, "counter of the operator log"},
		{"the operator log's counter behind", `INSERT INTO operator_actions (at, os_user, host, command, detail) VALUES (1, 'u', 'h', 'c', 'd'), (2, 'u', 'h', 'c', 'd');
			UPDATE sqlite_sequence SET seq = 1 WHERE name = 'operator_actions'`, "counter of the operator log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := filepath.Join(t.TempDir(), "changed.db")
			if err := os.WriteFile(from, body, 0o600); err != nil {
				t.Fatal(err)
			}
			change, err := sql.Open("sqlite", from)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := change.ExecContext(ctx, tc.change); err != nil {
				t.Fatal(err)
			}
			change.Close()
			// Bounded: the view's query ran until the restore was killed.
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			target := filepath.Join(t.TempDir(), "openpca.db")
			_, err = sqlite.Restore(ctx, from, target, 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v; want an error with %q", err, tc.want)
			}
			if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(target), "*")); len(matches) > 0 {
				t.Fatalf("a refused restore left %v", matches)
			}
		})
	}
	// Bytes after its pages, a sparse gigabyte that SQLite never reads
	// and a copy would write out whole, are refused.
	sparse := filepath.Join(t.TempDir(), "sparse.db")
	if err := os.WriteFile(sparse, body, 0o600); err != nil || os.Truncate(sparse, 1<<30) != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "openpca.db")
	if _, err := sqlite.Restore(ctx, sparse, target, 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil); err == nil || !strings.Contains(err.Error(), "pages of") {
		t.Errorf("a backup of a gigabyte more: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(target), "*")); len(matches) > 0 {
		t.Errorf("a refused restore left %v", matches)
	}
	// The backup as made restores.
	if _, err := sqlite.Restore(ctx, backup, filepath.Join(t.TempDir(), "openpca.db"), 1, time.Now(), sqlstore.Settling{KeepStatus: true}, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// backupsAtOnce makes backups of the database at path to one file at once,
// beside what a backup cut short left: one succeeds, the others say that
// the file exists, or was made meanwhile (rather than fail on a copy
// another removed), and the copy cut short is gone.
func backupsAtOnce(t *testing.T, path string) {
	to := filepath.Join(t.TempDir(), "b.db")
	cut := to + ".partial-1234"
	if err := os.Mkdir(cut, 0o700); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 6)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = sqlite.Backup(t.Context(), path, to) })
	}
	wg.Wait()
	done := 0
	for _, err := range errs {
		switch {
		case err == nil:
			done++
		case !strings.Contains(err.Error(), "exists") && !strings.Contains(err.Error(), "made meanwhile"):
			t.Errorf("a backup beside others: %v", err)
		}
	}
	if done != 1 {
		t.Errorf("%d backups of %d succeeded; want one", done, len(errs))
	}
	if matches, _ := filepath.Glob(to + ".partial-*"); len(matches) > 0 {
		t.Errorf("left behind: %v", matches)
	}
}

// TestRestoreKeepsDeletedCAsKeys: a CA deleted at the backup, whose key is
// in KMS, has its restoration period again from the restore, so that the
// restored server does not purge it and destroy the key (servers of the
// backed-up database may have restored it since); one in software is
// left as it was, and so are those no server could have restored: claimed
// by a purge, or deleted with no restoration period. The key of a CA in
// use at the backup, in KMS, is left too when the restored copy deletes
// the CA (a staging copy beside the old servers, say).
func TestRestoreKeepsDeletedCAsKeys(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "openpca.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deletedAt := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Microsecond)
	period := 7 * 24 * time.Hour
	now := time.Now()
	deleted := []struct {
		store      string
		restorable int64 // micros; 0 once a purge claimed it
		after      time.Time
	}{
		{"kms", deletedAt.Add(period).UnixMicro(), now.Add(period)},
		{"software", deletedAt.Add(period).UnixMicro(), deletedAt.Add(period)},
		{"kms", 0, time.UnixMicro(0)},                // claimed by a purge
		{"pkcs11", deletedAt.UnixMicro(), deletedAt}, // deleted as it was being created: no period
	}
	var cas []*openpca.CA
	for range deleted {
		cas = append(cas, newActiveCA(t, db))
	}
	inUse := map[string]*openpca.CA{"kms": newActiveCA(t, db), "software": newActiveCA(t, db)}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for i, d := range deleted {
		arns = append(arns, cas[i].ARN)
		if _, err := raw.Exec(`UPDATE certificate_authorities SET key_store = ?, status = 'DELETED', last_state_change_at = ?, restorable_until = ? WHERE id = ?`,
			d.store, deletedAt.UnixMicro(), d.restorable, cas[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`UPDATE certificate_authorities SET key_store = 'kms' WHERE id = ?`, inUse["kms"].ID); err != nil {
		t.Fatal(err)
	}
	// A key the old servers' purge is to destroy: theirs, not a copy's
	// beside them (a backup edited by hand could name any CA's key).
	pending := "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/" + uuid.NewString()
	if _, err := raw.Exec(`INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id) VALUES (?, ?, 'kms', ?, '')`,
		pending[strings.LastIndex(pending, "/")+1:], pending, []byte("handle-pending")); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	to := filepath.Join(t.TempDir(), "backup.db")
	if _, err := sqlite.Backup(ctx, path, to); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "openpca.db")
	sum, err := sqlite.Restore(ctx, to, restored, 1, now, sqlstore.Settling{KeepStatus: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.DeletedKept) != 1 || !strings.HasPrefix(sum.DeletedKept[0], arns[0]+" ") {
		t.Errorf("the deleted CAs kept: %v, want the one in KMS, %s", sum.DeletedKept, arns[0])
	}
	if sum.KeysKept != 1 {
		t.Errorf("the keys of %d CAs in use kept, want the one in KMS", sum.KeysKept)
	}
	if want := []string{"kms handle-pending (" + pending + ")"}; !slices.Equal(sum.KeysNotHeld, want) {
		t.Errorf("the keys left to the old servers: %q, want %q", sum.KeysNotHeld, want)
	}
	rdb, err := sql.Open("sqlite", "file:"+restored+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for i, d := range deleted {
		var until int64
		if err := rdb.QueryRow(`SELECT restorable_until FROM certificate_authorities WHERE arn = ?`, arns[i]).Scan(&until); err != nil {
			t.Fatal(err)
		}
		if got := time.UnixMicro(until); got.Sub(d.after).Abs() > time.Second {
			t.Errorf("%s (%s): restorable until %s, want %s", arns[i], d.store, got, d.after)
		}
	}
	// The backup restored as the sole copy: its old servers are gone, and
	// no purge leaves a key. A backup of the restored database, restored
	// as the sole copy: the marks of the first restore stay, for they keep
	// the keys of the first database's servers, which may run still.
	sole := filepath.Join(t.TempDir(), "openpca.db")
	again, soleOfCopy := filepath.Join(t.TempDir(), "again.db"), filepath.Join(t.TempDir(), "openpca.db")
	if _, err := sqlite.Backup(ctx, restored, again); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ from, to string }{{to, sole}, {again, soleOfCopy}} {
		soleSum, err := sqlite.Restore(ctx, r.from, r.to, 1, now, sqlstore.Settling{KeepStatus: true, SoleCopy: true}, nil, nil)
		if err != nil || soleSum.KeysKept != 0 || !soleSum.SoleCopy || len(soleSum.KeysNotHeld) != 0 {
			t.Errorf("a restore of %s as the sole copy: %+v, %v", r.from, soleSum, err)
		}
	}

	// Purged once its period ends, the kept CA leaves its key, which the
	// backed-up database's servers may use; the one in software (whose
	// key is its row) is destroyed as ever. So are the CAs in use at the
	// backup, deleted in the restored copy.
	// Those deleted with no period (claimed by a purge, or deleted as
	// they were made) leave theirs in a copy too: they are the old
	// servers' to destroy, and a backup edited by hand could show a CA in
	// service so. The sole copy destroys the key its purge was to.
	for _, tc := range []struct {
		path    string
		kept    []string // the CAs whose purges leave their keys
		pending int      // keys to destroy of CAs purged before the backup
	}{
		{restored, []string{arns[0], arns[2], arns[3], inUse["kms"].ARN}, 0},
		{sole, nil, 1},
		{soleOfCopy, []string{arns[0], arns[2], arns[3], inUse["kms"].ARN}, 0},
	} {
		keep, toDestroy := deleteAndPurge(t, tc.path, inUse, now, period)
		want := map[string]bool{}
		for _, arn := range append(slices.Clone(arns), inUse["kms"].ARN, inUse["software"].ARN) {
			want[arn] = slices.Contains(tc.kept, arn)
		}
		if !maps.Equal(keep, want) {
			t.Errorf("%s: the CAs purged, and whether each keeps its key: %v, want %v", tc.path, keep, want)
		}
		for _, ca := range toDestroy {
			if slices.Contains(tc.kept, ca.ARN) {
				t.Errorf("%s: the key of %s, kept by the restore, is to be destroyed", tc.path, ca.ARN)
			}
		}
		if len(toDestroy) != len(want)-len(tc.kept)+tc.pending {
			t.Errorf("%s: %d keys to destroy, want those of the %d CAs not kept, and %d more", tc.path, len(toDestroy), len(want)-len(tc.kept), tc.pending)
		}
	}
}

// deleteAndPurge deletes the CAs of inUse in the database at path, and
// purges it long past their restoration periods (each restore of a
// restored database gives a CA deleted at the backup its period again,
// as long as it was from its deletion): it returns the CAs purged, and
// whether each keeps its key, and the keys to destroy.
func deleteAndPurge(t *testing.T, path string, inUse map[string]*openpca.CA, now time.Time, period time.Duration) (map[string]bool, []*openpca.CA) {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, ca := range inUse {
		ca, err := store.FindCA(ctx, ca.AccountID, ca.ID)
		if err != nil {
			t.Fatal(err)
		}
		ca.Status, ca.LastStateChangeAt, ca.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, now, now.Add(period)
		if err := store.UpdateCA(ctx, ca, nil); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(period + 90*24*time.Hour)
	purged, err := store.PurgeCAs(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, ca := range purged {
		keep[ca.ARN] = ca.KeepKey
	}
	toDestroy, err := store.KeysToDestroy(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	return keep, toDestroy
}

// TestLockPartialRefusesOthers: a copy's folder is locked through the
// folder itself: a named pipe in its place is refused at once (open
// waited for the pipe's writer, for good, with the data folder locked),
// and so is a link, which would have the folder removed where it points.
func TestLockPartialRefusesOthers(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "openpca.db.partial-1")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "openpca.db.partial-2")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pipe, link} {
		done := make(chan error, 1)
		go func() {
			lock, err := sqlite.LockPartial(p)
			if lock != nil {
				lock.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: locked", filepath.Base(p))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still opening after 10 s", filepath.Base(p))
		}
	}
}

// TestOpenRefusesTriggersAndViews: a database that holds a trigger or a
// view is refused at every open, a server's (in WAL mode) too: a backup
// copied into place, its mark taken out, or its header set to WAL mode,
// is not known for a backup, and what it holds would run at the server's
// writes.
func TestOpenRefusesTriggersAndViews(t *testing.T) {
	for _, tc := range []struct{ name, stmt, want string }{
		{"a trigger", `CREATE TRIGGER keep_keys AFTER UPDATE OF revoked_at ON access_keys WHEN NEW.revoked_at IS NOT NULL BEGIN UPDATE access_keys SET revoked_at = NULL WHERE id = NEW.id; END`, "holds the trigger keep_keys"},
		{"a view", `CREATE VIEW keys AS SELECT * FROM access_keys`, "holds the view keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "openpca.db")
			db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(tc.stmt); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			if db, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				if err == nil {
					db.Close()
				}
				t.Errorf("Open: %v, want %q", err, tc.want)
			}
		})
	}
}
