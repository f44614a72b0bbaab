package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/openpca/openpca"
)

// Summary says what a database holds, and after a restore, what settling
// it found and changed.
type Summary struct {
	CAs     int
	KeyUses int64     // entries of the CAs' key-use logs
	Last    time.Time // of the newest key use; zero if none
	Restored
}

// ReadSummary reads the Summary of the database q reads, but Restored.
func ReadSummary(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (Summary, error) {
	var sum Summary
	var last sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM certificate_authorities), (SELECT COALESCE(SUM(size), 0) FROM key_use_logs),
		(SELECT MAX(at) FROM key_uses)`).Scan(&sum.CAs, &sum.KeyUses, &last)
	sum.Last = fromMicros(last)
	return sum, err
}

// Summary reads the Summary of the database, but Restored.
func (db *DB) Summary(ctx context.Context) (Summary, error) { return ReadSummary(ctx, db.read) }

// Settling says how SettleRestored settles a restored database.
type Settling struct {
	// KeepStatus leaves the CAs active in the backup active.
	KeepStatus bool
	// SoleCopy says that the backed-up database's servers are gone for
	// good (a recovery, not a copy beside them): the restored CAs' keys in
	// a token or KMS are not marked to be left by their purges (KeepKey),
	// which destroy them as those servers' would have. Marks an earlier
	// restore made stay: they keep the keys of another database's servers,
	// which may run still.
	SoleCopy bool
}

// Restored says what SettleRestored found in a restored database, and
// changed.
type Restored struct {
	// KeysNotHeld are the keys in a token or KMS that were being made,
	// at the backup, for CAs it does not hold, and, unless SoleCopy, those
	// of CAs purged and still to be destroyed, as "<key store> <key
	// handle> (<CA ARN>)": their records are removed, and the keys left.
	KeysNotHeld []string
	// DeletedKept are the CAs deleted at the backup whose keys are in a
	// token or KMS, given their restoration periods again from the
	// restore, as "<CA ARN> (restorable until <time>)".
	DeletedKept []string
	// KeysKept counts the CAs not deleted at the backup whose keys are in
	// a token or KMS, which their purges will leave there (KeepKey), as
	// they leave those of DeletedKept; 0 for a SoleCopy, which marks
	// none.
	KeysKept int
	// Unwitnessed counts the CAs whose logs have entries and no
	// checkpoint that witnesses cosigned: the restore checked them
	// against themselves alone.
	Unwitnessed int
	// UpgradeImports are the ARNs of the CAs that the restore's
	// migration gave the upgrade's IMPORT entry (openpca.UpgradePrincipal):
	// a backup of a version before imports were logged, or one whose
	// record of that migration was taken out.
	UpgradeImports []string
	// Active are the ARNs of the CAs active at the backup, disabled
	// unless KeptStatus.
	Active     []string
	KeptStatus bool
	SoleCopy   bool
}

// restoreBegun names the setting that holds when a restore of a
// PostgreSQL database began (BeginRestore), until SettleRestored settles
// it.
const restoreBegun = "restore-begun"

// BeginRestore records that a restore of the database began at now,
// before the restore looks for servers on it: a server that starts from
// then on finds it (RestoreBegun), and is refused, until SettleRestored
// settles the database. One that started before has a session the restore
// sees. A restore cut short, or that refused what it restored (its logs
// did not verify), leaves it, since such a database is not fit to serve;
// one that found the database in use takes it back (AbandonRestore).
func (db *DB) BeginRestore(ctx context.Context, now time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		restoreBegun, []byte(now.UTC().Format(time.RFC3339)))
	return db.wrap("recording the restore", err)
}

// AbandonRestore takes back what BeginRestore recorded, for a database
// that a restore found in use, which is no restored one.
func (db *DB) AbandonRestore(ctx context.Context) error {
	_, err := db.exec(ctx, `DELETE FROM settings WHERE name = ?`, restoreBegun)
	return db.wrap("abandoning the restore", err)
}

// RestoreBegun returns when a restore began (BeginRestore) that has not
// settled the database, as it recorded it, or "".
func (db *DB) RestoreBegun(ctx context.Context) (string, error) {
	v, err := db.Setting(ctx, restoreBegun)
	return string(v), err
}

// SettleRestored makes a database just restored from a backup fit for
// servers to start on, in one transaction. It must run before any server
// does, and never on a database that was not just restored: it undoes
// what servers did since (see below).
//
// What the backed-up database's servers did after the backup is not in
// it, and some of it must not happen twice:
//   - CRLs were published with numbers the backup does not know, and a
//     CRL number must grow (RFC 5280, 5.2.3): every CA numbers its next
//     CRLs from crlNumberFloor on, at least, even one whose CRLs are off
//     (it may have published its first since).
//   - A CA may have been disabled or deleted since (its key leaked, say),
//     and a restored copy beside the old servers (a staging copy) would
//     issue under their CAs' names, outside the audit logs those servers
//     keep: the CAs active in the backup are disabled, unless
//     Settling.KeepStatus, and listed; each account enables its CAs still in service
//     (UpdateCertificateAuthority). One whose certificate has expired is
//     EXPIRED to its account, which could not enable it: it is left.
//   - Keys being made in a token or KMS, at the backup, for CAs it does
//     not hold may belong to CAs the old servers stored since, which
//     still sign with them: only the operator can tell, so their records
//     go (a server would destroy each key) and they are listed.
//   - For the same reason, a CA deleted at the backup whose key is in a
//     token or KMS may have been restored since: it gets its restoration
//     period again, from now, so that the purge of one whose period ended
//     meanwhile does not destroy a key the old servers sign with. Left
//     out: CAs a purge had claimed (restorable_until 0), and those deleted
//     with no restoration period (CREATING, FAILED), which no server
//     could have restored.
//   - The keys of those CAs, and of every CA not deleted whose key is in
//     a token or KMS, are left in their stores when the CAs are purged
//     (openpca.CA.KeepKey): the old servers share those stores, and a
//     copy beside them (for staging, say) that deleted such a CA would
//     otherwise destroy, at the end of its period, a key they sign with.
//     Unless the restore is the sole copy (Settling.SoleCopy): then none
//     is marked, and only the CAs an earlier restore marked keep theirs.
//   - Work the old servers held (a CRL being published, a report being
//     made, a checkpoint being witnessed) is let go at once, rather than
//     when their holds would have run out.
//   - A console session signed out since would be valid again until it
//     expired: everyone signs in again.
//   - Each log's kept edge (what the next append starts from) is
//     forgotten, to be rebuilt from its stored hashes.
//   - The restore, begun (BeginRestore), has ended: servers may start.
//
// guard, if set, runs first in the transaction, and an error of it
// settles nothing: a database that servers may reach checks there that
// none does (postgres.GuardSettling).
func (db *DB) SettleRestored(ctx context.Context, crlNumberFloor int64, now time.Time, how Settling, guard func(context.Context, *sql.Tx) error) (Restored, error) {
	var r Restored
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r = Restored{KeptStatus: how.KeepStatus, SoleCopy: how.SoleCopy}
		if guard != nil {
			if err := guard(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		if r.KeysNotHeld, err = db.keysNotHeld(ctx, tx, how.SoleCopy); err != nil {
			return err
		}
		if r.DeletedKept, err = db.keepDeleted(ctx, tx, now, !how.SoleCopy); err != nil {
			return err
		}
		if !how.SoleCopy {
			if r.KeysKept, err = db.keepKeys(ctx, tx); err != nil {
				return err
			}
		}
		if r.Active, err = db.settleActive(ctx, tx, now, how.KeepStatus); err != nil {
			return err
		}
		// The upgrade's imports dated since the restore began (an
		// import of a server whose clock ran ahead may be dated so too).
		rows, err := tx.QueryContext(ctx, db.rewrite(`SELECT c.arn, k.record FROM key_uses k JOIN certificate_authorities c ON c.id = k.ca_id
			WHERE k.kind = '`+openpca.KeyUseImport+`' AND k.at >= ? ORDER BY c.arn, k.seq`), now.UnixMicro())
		if err != nil {
			return fmt.Errorf("listing the upgrade's imports: %w", err)
		}
		for rows.Next() {
			var (
				arn    string
				record []byte
				rec    openpca.KeyUseRecord
			)
			if err := rows.Scan(&arn, &record); err != nil {
				rows.Close()
				return err
			}
			if json.Unmarshal(record, &rec) == nil && rec.RequestedBy == openpca.UpgradePrincipal && !slices.Contains(r.UpgradeImports, arn) {
				r.UpgradeImports = append(r.UpgradeImports, arn)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("listing the upgrade's imports: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM key_use_logs l WHERE size > 0
			AND NOT EXISTS (SELECT 1 FROM witnessing w WHERE w.ca_id = l.ca_id AND w.note IS NOT NULL)`).Scan(&r.Unwitnessed); err != nil {
			return fmt.Errorf("counting the logs no witness cosigned: %w", err)
		}
		for _, q := range []struct {
			what, stmt string
			args       []any
		}{
			{"numbering the CRLs", `UPDATE crl_publications SET number = CASE WHEN number < ? THEN ? ELSE number END, owner = NULL, lease_until = NULL`,
				[]any{crlNumberFloor - 1, crlNumberFloor - 1}},
			// Meanwhile a revocation asks for a CRL of such a CA, as for
			// any CA whose CRLs were once enabled, and the publisher finds
			// none is to be made.
			{"numbering the CRLs", `INSERT INTO crl_publications (ca_id, wanted, number)
				SELECT id, 0, ? FROM certificate_authorities WHERE id NOT IN (SELECT ca_id FROM crl_publications)`, []any{crlNumberFloor - 1}},
			{"letting go of the reports", `UPDATE audit_reports SET owner = '', lease_until = 0 WHERE status = 'CREATING'`, nil},
			{"letting go of the witnessing", `UPDATE witnessing SET owner = NULL, lease_until = NULL`, nil},
			// The next append rebuilds each log's edge from the stored
			// hashes, which the restore checked, rather than start from
			// a kept edge it did not.
			{"forgetting the logs' kept edges", `UPDATE key_use_logs SET tree_edge = NULL`, nil},
			{"ending the console sessions", `DELETE FROM console_sessions`, nil},
			{"ending the restore", `DELETE FROM settings WHERE name = ?`, []any{restoreBegun}},
		} {
			if _, err := tx.ExecContext(ctx, db.rewrite(q.stmt), q.args...); err != nil {
				return fmt.Errorf("%s: %w", q.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return Restored{}, db.wrap("settling the restored database", err)
	}
	return r, nil
}

// LogsOverrun returns the ARNs (or ids, of CAs the database lacks) of the
// CAs, ten at most, whose key-use logs hold entries at or past their
// size, or whose certificates name such entries. A server never writes
// them: a backup edited by hand (its size made smaller, to cut the log
// short) may hold them, and the next signing of such a CA would fail, its
// entry's place taken.
func (db *DB) LogsOverrun(ctx context.Context) ([]string, error) {
	rows, err := db.query(ctx, `SELECT COALESCE(a.arn, l.ca_id) FROM key_use_logs l LEFT JOIN certificate_authorities a ON a.id = l.ca_id
		WHERE EXISTS (SELECT 1 FROM key_uses u WHERE u.ca_id = l.ca_id AND u.seq >= l.size)
			OR EXISTS (SELECT 1 FROM certificates c WHERE c.ca_id = l.ca_id AND c.issue_seq >= l.size)
			OR EXISTS (SELECT 1 FROM certificates c WHERE c.ca_id = l.ca_id AND c.revoke_seq >= l.size)
		ORDER BY 1 LIMIT 10`)
	if err != nil {
		return nil, db.wrap("reading the logs' sizes", err)
	}
	defer rows.Close()
	var cas []string
	for rows.Next() {
		var ca string
		if err := rows.Scan(&ca); err != nil {
			return nil, err
		}
		cas = append(cas, ca)
	}
	return cas, db.wrap("reading the logs' sizes", rows.Err())
}

// keysNotHeld returns, and removes the records of, the keys made for CAs
// the database does not hold, and, unless sole, those of CAs purged whose
// keys are still to be destroyed: those are the old servers' to destroy,
// and a copy beside them must not destroy a key they may hold (a backup
// edited by hand could name any CA's key).
func (db *DB) keysNotHeld(ctx context.Context, tx *sql.Tx, sole bool) ([]string, error) {
	which := `made_at IS NOT NULL`
	if !sole {
		which = `TRUE`
	}
	var keys []string
	err := txRows(ctx, tx, db.rewrite(`SELECT key_store, key_handle, arn FROM key_destructions WHERE `+which+` ORDER BY ca_id`), nil, func(rows *sql.Rows) error {
		var store, arn string
		var handle []byte
		if err := rows.Scan(&store, &handle, &arn); err != nil {
			return err
		}
		keys = append(keys, fmt.Sprintf("%s %s (%s)", store, handle, arn))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the keys being made: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM key_destructions WHERE `+which); err != nil {
		return nil, fmt.Errorf("leaving the keys being made: %w", err)
	}
	return keys, nil
}

// keepDeleted gives the CAs deleted at the backup whose keys are in a
// token or KMS their restoration periods again, from now, and, if keep,
// has their purges leave their keys (openpca.CA.KeepKey): a restored copy
// beside the old servers (for staging, say) would otherwise destroy, once
// the period ends, keys those servers may have taken up again.
func (db *DB) keepDeleted(ctx context.Context, tx *sql.Tx, now time.Time, keep bool) ([]string, error) {
	var kept []string
	err := txRows(ctx, tx, db.rewrite(`UPDATE certificate_authorities
		SET restorable_until = restorable_until + CASE WHEN ? > last_state_change_at THEN ? - last_state_change_at ELSE 0 END,
			keep_key = (keep_key OR ?), version = version + 1
		WHERE status = 'DELETED' AND key_store <> 'software' AND restorable_until > last_state_change_at
		RETURNING arn, restorable_until`), []any{now.UnixMicro(), now.UnixMicro(), keep}, func(rows *sql.Rows) error {
		var arn string
		var until int64
		if err := rows.Scan(&arn, &until); err != nil {
			return err
		}
		kept = append(kept, fmt.Sprintf("%s (restorable until %s)", arn, time.UnixMicro(until).UTC().Format(time.RFC3339)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keeping the deleted CAs: %w", err)
	}
	slices.Sort(kept)
	return kept, nil
}

// keepKeys has the purges of the CAs whose keys are in a token or KMS
// leave their keys (see SettleRestored), and returns how many of those
// are not deleted. Those deleted with no period to restore them in (a
// purge had claimed them, or their creation failed) are the old servers'
// to destroy; and a backup edited by hand could show any CA so, for the
// copy's first purge to destroy its key.
func (db *DB) keepKeys(ctx context.Context, tx *sql.Tx) (int, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE certificate_authorities SET keep_key = TRUE, version = version + 1 WHERE status = 'DELETED' AND key_store <> 'software' AND NOT keep_key`); err != nil {
		return 0, fmt.Errorf("keeping the deleted CAs' keys: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE certificate_authorities SET keep_key = TRUE, version = version + 1 WHERE status <> 'DELETED' AND key_store <> 'software'`)
	if err != nil {
		return 0, fmt.Errorf("keeping the CAs' keys: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// settleActive returns the ARNs of the CAs active at the backup, and
// disables them unless keepStatus.
func (db *DB) settleActive(ctx context.Context, tx *sql.Tx, now time.Time, keepStatus bool) ([]string, error) {
	const active = `status = 'ACTIVE' AND not_after >= ?`
	var arns []string
	err := txRows(ctx, tx, db.rewrite(`SELECT arn FROM certificate_authorities WHERE `+active+` ORDER BY arn`), []any{now.UnixMicro()}, func(rows *sql.Rows) error {
		var arn string
		err := rows.Scan(&arn)
		arns = append(arns, arn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the active CAs: %w", err)
	}
	if keepStatus {
		return arns, nil
	}
	if _, err := tx.ExecContext(ctx, db.rewrite(`UPDATE certificate_authorities SET status = 'DISABLED', last_state_change_at = ?, version = version + 1
		WHERE `+active), now.UnixMicro(), now.UnixMicro()); err != nil {
		return nil, fmt.Errorf("disabling the active CAs: %w", err)
	}
	return arns, nil
}

// txRows runs query in tx and calls fn for each row.
func txRows(ctx context.Context, tx *sql.Tx, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SchemaDiffs compares the schema of a restored database, have, with the
// one this version's migrations make, want, each a definition by object
// ("table certificates", say), and says how they differ, each as what
// follows "it" in a sentence about the restored schema.
func SchemaDiffs(have, want map[string]string) []string {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if def, ok := want[name]; !ok {
			diffs = append(diffs, "holds the "+name+", which OpenPCA makes none of")
		} else if def != have[name] {
			diffs = append(diffs, "has the "+name+" other than OpenPCA makes it")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := have[name]; !ok {
			diffs = append(diffs, "lacks the "+name)
		}
	}
	return diffs
}
