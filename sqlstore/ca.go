package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

const caColumns = `id, account_id, arn, type, status, status_before_deletion, created_at, last_state_change_at,
	restorable_until, failure_reason, config, revocation, key_storage, usage_mode, key_handle, csr,
	certificate, certificate_chain, serial, not_before, not_after, tags, version, key_id, policy, key_store, keep_key, destruction`

// caRow is a CA in the form of its row.
type caRow struct {
	ca         *openpca.CA
	config     []byte
	revocation []byte
	tags       []byte
}

func toRow(ca *openpca.CA) (*caRow, error) {
	r := &caRow{ca: ca}
	var err error
	if r.config, err = json.Marshal(ca.Config); err != nil {
		return nil, err
	}
	if ca.Revocation != nil {
		if r.revocation, err = json.Marshal(ca.Revocation); err != nil {
			return nil, err
		}
	}
	tags := ca.Tags
	if tags == nil {
		tags = []openpca.Tag{}
	}
	if r.tags, err = json.Marshal(tags); err != nil {
		return nil, err
	}
	return r, nil
}

func scanCA(s rowScanner) (*openpca.CA, error) {
	var (
		ca                                                openpca.CA
		created, changed, restorable, notBefore, notAfter sql.NullInt64
		config, revocation, tags                          []byte
	)
	err := s.Scan(&ca.ID, &ca.AccountID, &ca.ARN, &ca.Type, &ca.Status, &ca.StatusBeforeDeletion, &created, &changed,
		&restorable, &ca.FailureReason, &config, &revocation, &ca.KeyStorageSecurityStandard, &ca.UsageMode, &ca.KeyHandle, &ca.CSR,
		&ca.Certificate, &ca.CertificateChain, &ca.Serial, &notBefore, &notAfter, &tags, &ca.Version, &ca.KeyID, &ca.Policy, &ca.KeyStore, &ca.KeepKey, &ca.Destruction)
	if err != nil {
		return nil, err
	}
	ca.CreatedAt, ca.LastStateChangeAt, ca.RestorableUntil = fromMicros(created), fromMicros(changed), fromMicros(restorable)
	ca.NotBefore, ca.NotAfter = fromMicros(notBefore), fromMicros(notAfter)
	if err := json.Unmarshal(config, &ca.Config); err != nil {
		return nil, fmt.Errorf("CA %s: config: %w", ca.ID, err)
	}
	if len(revocation) > 0 {
		ca.Revocation = new(openpca.RevocationConfiguration)
		if err := json.Unmarshal(revocation, ca.Revocation); err != nil {
			return nil, fmt.Errorf("CA %s: revocation configuration: %w", ca.ID, err)
		}
	}
	if err := json.Unmarshal(tags, &ca.Tags); err != nil {
		return nil, fmt.Errorf("CA %s: tags: %w", ca.ID, err)
	}
	return &ca, nil
}

// CreateCA implements openpca.CAStore. A lock on the account serializes
// creations, so that the quota holds however many servers share the store.
// qAccountCAs counts the CAs of an account that count towards its limit.
const qAccountCAs = `SELECT COUNT(*) FROM certificate_authorities
	WHERE account_id = ? AND NOT (status = 'DELETED' AND restorable_until <= ?)`

// AccountCAs implements openpca.Store.
func (db *DB) AccountCAs(ctx context.Context, accountID string, now time.Time) (int, error) {
	var n int
	err := db.queryRow(ctx, qAccountCAs, accountID, now.UnixMicro()).Scan(&n)
	return n, db.wrap("counting the account's CAs", err)
}

func (db *DB) CreateCA(ctx context.Context, ca *openpca.CA, csrUse *openpca.KeyUse, token openpca.IdempotencyToken, limit int) (*openpca.CA, error) {
	r, err := toRow(ca)
	if err != nil {
		return nil, err
	}
	var existing string
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		// A key kept in software is sealed. A CA with its key in KMS or a
		// token is refused too on a retired key: its server is one a
		// rotation left behind, which must restart with the new key.
		if err := db.checkSealing(ctx, tx); err != nil {
			return err
		}
		if err := db.lockKey(ctx, tx, "account:"+ca.AccountID); err != nil {
			return err
		}
		if token.Token != "" {
			existing, err = db.claimToken(ctx, tx, token, ca.ID)
			if err != nil || existing != "" {
				return err
			}
		}
		var n int
		if err := db.txQueryRow(ctx, tx, qAccountCAs, ca.AccountID, token.Now.UnixMicro()).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return openpca.ErrLimitExceeded
		}
		ca.Version = 1
		if _, err := db.txExec(ctx, tx, `INSERT INTO key_use_logs (ca_id, size) VALUES (?, 1)`, ca.ID); err != nil {
			return err
		}
		if _, err := db.txExec(ctx, tx, `INSERT INTO certificate_authorities (`+caColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ca.ID, ca.AccountID, ca.ARN, ca.Type, ca.Status, ca.StatusBeforeDeletion, micros(ca.CreatedAt), micros(ca.LastStateChangeAt),
			micros(ca.RestorableUntil), ca.FailureReason, r.config, r.revocation, ca.KeyStorageSecurityStandard, ca.UsageMode, ca.KeyHandle, ca.CSR,
			ca.Certificate, ca.CertificateChain, ca.Serial, micros(ca.NotBefore), micros(ca.NotAfter), r.tags, ca.Version, ca.KeyID, ca.Policy, ca.KeyStore, ca.KeepKey, ca.Destruction); err != nil {
			return err
		}
		csrUse.Seq = 0
		if err := db.insertKeyUses(ctx, tx, ca.ID, auditlog.Edge{}, []*openpca.KeyUse{csrUse}, [][]byte{csrUse.Record}); err != nil {
			return err
		}
		// The CA holds its key now: the record of the key made goes
		// (RecordKeyMade). A key outside the database whose record a purge
		// took (KeysToDestroy) is being destroyed: its CA is not stored.
		res, err := db.txExec(ctx, tx, `DELETE FROM key_destructions WHERE ca_id = ? AND made_at IS NOT NULL`, ca.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 && ca.KeyStore != softwareStore {
			return openpca.ErrKeyGivenUp
		}
		return db.wantCRL(ctx, tx, ca)
	})
	if err != nil {
		return nil, db.wrap("creating CA", err)
	}
	if ca.KeyStore != softwareStore && existing == "" {
		// The record's word that the key may be destroyed goes out of the
		// files too: taken from them, it would have the key destroyed.
		db.scrub()
	}
	if existing != "" {
		return db.FindCA(ctx, ca.AccountID, existing)
	}
	return ca, nil
}

// claimToken records that an idempotent operation with token produces
// result, unless the token was used within its window: then it returns
// the result recorded then. Two transactions claiming one token at once
// meet on its unique key: the second waits for the first to commit, and
// then finds its result.
func (db *DB) claimToken(ctx context.Context, tx *sql.Tx, token openpca.IdempotencyToken, result string) (string, error) {
	var claimed string
	err := db.txQueryRow(ctx, tx, qClaimToken, token.AccountID, token.Operation, token.Token, token.Now.UnixMicro(), result, token.Since.UnixMicro()).Scan(&claimed)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	var existing string
	err = db.txQueryRow(ctx, tx, qTokenResult, token.AccountID, token.Operation, token.Token).Scan(&existing)
	return existing, err
}

// FindCA implements openpca.CAStore. It reads the CA's version, and the
// whole record only when the cache does not hold that version.
func (db *DB) FindCA(ctx context.Context, accountID, id string) (*openpca.CA, error) {
	var version int64
	err := db.readRow(ctx, `SELECT version FROM certificate_authorities WHERE account_id = ? AND id = ?`, accountID, id).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading CA", err)
	}
	if ca := db.cas.get(id, version); ca != nil {
		return ca, nil
	}
	ca, err := scanCA(db.queryRow(ctx, `SELECT `+caColumns+` FROM certificate_authorities WHERE account_id = ? AND id = ?`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading CA", err)
	}
	db.cas.put(ca)
	return db.cas.clone(ca), nil
}

// ListCAs implements openpca.CAStore.
func (db *DB) ListCAs(ctx context.Context, accountID string, after openpca.CACursor, limit int) ([]*openpca.CA, error) {
	return db.listCAs(ctx, `certificate_authorities c WHERE c.account_id = ?`, []any{accountID}, after, limit)
}

// ListAllCAs lists up to limit CAs of every account, and of none (an
// account's row deleted by hand), in creation order, after the one after
// names.
func (db *DB) ListAllCAs(ctx context.Context, after openpca.CACursor, limit int) ([]*openpca.CA, error) {
	return db.listCAs(ctx, `certificate_authorities c WHERE TRUE`, nil, after, limit)
}

// listCAs lists, in creation order, the CAs that from (a table expression
// naming them c, ending in a WHERE clause, of the parameters args) gives.
func (db *DB) listCAs(ctx context.Context, from string, args []any, after openpca.CACursor, limit int) ([]*openpca.CA, error) {
	at := after.CreatedAt.UnixMicro()
	if after.CreatedAt.IsZero() {
		at = -1
	}
	rows, err := db.query(ctx, `SELECT `+caColumnsOf("c")+` FROM `+from+`
		AND (c.created_at > ? OR (c.created_at = ? AND c.id > ?))
		ORDER BY c.created_at, c.id LIMIT ?`, append(args, at, at, after.ID, limit)...)
	if err != nil {
		return nil, db.wrap("listing CAs", err)
	}
	defer rows.Close()
	var cas []*openpca.CA
	for rows.Next() {
		ca, err := scanCA(rows)
		if err != nil {
			return nil, db.wrap("listing CAs", err)
		}
		cas = append(cas, ca)
	}
	return cas, rows.Err()
}

// caColumnsOf is caColumns of the table named alias.
func caColumnsOf(alias string) string {
	cols := strings.Split(caColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// UpdateCA implements openpca.CAStore.
func (db *DB) UpdateCA(ctx context.Context, ca *openpca.CA, imported *openpca.KeyUse) error {
	r, err := toRow(ca)
	if err != nil {
		return err
	}
	hadWord := false // the CA's Destruction, which a restoration drops
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			oldPolicy, oldStatus                    string
			oldRevocation, oldCertificate, oldChain []byte
			oldNotBefore, oldNotAfter               sql.NullInt64
		)
		err := db.txQueryRow(ctx, tx, `SELECT policy, status, revocation, certificate, certificate_chain, not_before, not_after, destruction IS NOT NULL
			FROM certificate_authorities WHERE id = ? AND version = ?{FOR_UPDATE}`, ca.ID, ca.Version).
			Scan(&oldPolicy, &oldStatus, &oldRevocation, &oldCertificate, &oldChain, &oldNotBefore, &oldNotAfter, &hadWord)
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrConflict
		}
		if err != nil {
			return err
		}
		res, err := db.txExec(ctx, tx, `UPDATE certificate_authorities SET
			status = ?, status_before_deletion = ?, last_state_change_at = ?, restorable_until = ?, failure_reason = ?,
			revocation = ?, certificate = ?, certificate_chain = ?, serial = ?, not_before = ?, not_after = ?, tags = ?,
			policy = ?, destruction = ?, version = version + 1
			WHERE id = ? AND version = ?`,
			ca.Status, ca.StatusBeforeDeletion, micros(ca.LastStateChangeAt), micros(ca.RestorableUntil), ca.FailureReason,
			r.revocation, ca.Certificate, ca.CertificateChain, ca.Serial, micros(ca.NotBefore), micros(ca.NotAfter), r.tags,
			ca.Policy, ca.Destruction, ca.ID, ca.Version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return openpca.ErrConflict
		}
		// What the CA's certificates name as their issuer, and clients are
		// handed as its chain, changes only logged (CheckImported).
		changed := !bytes.Equal(oldCertificate, ca.Certificate) || !bytes.Equal(oldChain, ca.CertificateChain) ||
			oldNotBefore != micros(ca.NotBefore) || oldNotAfter != micros(ca.NotAfter)
		switch {
		case imported != nil && (imported.Kind != openpca.KeyUseImport || imported.CAID != ca.ID):
			return fmt.Errorf("CA %s: the record of an import is a %s record of CA %s", ca.ID, imported.Kind, imported.CAID)
		case imported != nil:
			if err := db.logKeyUse(ctx, tx, imported); err != nil {
				return err
			}
		case changed:
			return fmt.Errorf("CA %s: its certificate changed without the record of its import", ca.ID)
		}
		if ca.Policy != oldPolicy {
			// Measured with the account locked, as CreateCA counts its
			// CAs, so that policies put at once on several of its CAs do
			// not pass the bound together: each one's sum sees those
			// committed before it took the lock (READ COMMITTED, on
			// PostgreSQL).
			if len(ca.Policy) > len(oldPolicy) {
				if err := db.lockKey(ctx, tx, "account:"+ca.AccountID); err != nil {
					return err
				}
				var size int
				if err := db.txQueryRow(ctx, tx, `SELECT COALESCE(SUM(OCTET_LENGTH(policy)), 0) FROM certificate_authorities WHERE account_id = ?`, ca.AccountID).Scan(&size); err != nil {
					return err
				}
				if size > openpca.MaxAccountPolicySize {
					return openpca.ErrLimitExceeded
				}
			}
			if err := db.shareCA(ctx, tx, ca); err != nil {
				return err
			}
		}
		// A new CRL only for what a CRL depends on: its configuration,
		// whether the CA's status is one that signs CRLs, its
		// certificate. Tags, policies, OCSP and a move between ACTIVE and
		// DISABLED are no reason for the CA's key to sign one: each is a
		// use of the key (a KMS or token signing, an entry of its log for
		// good), and a CRL of 1,999 entries cost ~17 ms of CPU, which any
		// account could have signed at the rate of such writes.
		var old openpca.RevocationConfiguration
		if len(oldRevocation) > 0 {
			if err := json.Unmarshal(oldRevocation, &old); err != nil {
				return fmt.Errorf("CA %s: revocation configuration: %w", ca.ID, err)
			}
		}
		oldCRL, _ := json.Marshal((&openpca.CA{Revocation: &old}).CRL())
		newCRL, _ := json.Marshal(ca.CRL())
		signs := func(status string) bool {
			return slices.Contains(openpca.RevocationStatuses, openpca.CertificateAuthorityStatus(status))
		}
		if signs(oldStatus) == signs(string(ca.Status)) && bytes.Equal(oldCRL, newCRL) && bytes.Equal(oldCertificate, ca.Certificate) &&
			oldNotBefore == micros(ca.NotBefore) && oldNotAfter == micros(ca.NotAfter) {
			return nil
		}
		return db.wantCRL(ctx, tx, ca)
	})
	if errors.Is(err, openpca.ErrConflict) {
		if _, err := db.FindCA(ctx, ca.AccountID, ca.ID); err != nil {
			return err
		}
		return openpca.ErrConflict
	}
	if err != nil {
		return db.wrap("updating CA", err)
	}
	if hadWord && ca.Destruction == nil {
		// Out of the files too: taken from them, a restored CA's word
		// would have its key destroyed.
		db.scrub()
	}
	ca.Version++
	return nil
}

// shareCA records the accounts the CA's new policy names.
func (db *DB) shareCA(ctx context.Context, tx *sql.Tx, ca *openpca.CA) error {
	if _, err := db.txExec(ctx, tx, `DELETE FROM ca_shares WHERE ca_id = ?`, ca.ID); err != nil {
		return err
	}
	for _, account := range ca.SharedWith {
		if _, err := db.txExec(ctx, tx, `INSERT INTO ca_shares (account_id, ca_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, account, ca.ID); err != nil {
			return err
		}
	}
	return nil
}

// ListSharedCAs implements openpca.CAStore.
func (db *DB) ListSharedCAs(ctx context.Context, accountID string, after openpca.CACursor, limit int) ([]*openpca.CA, error) {
	return db.listCAs(ctx, `certificate_authorities c JOIN ca_shares s ON s.ca_id = c.id WHERE s.account_id = ?`, []any{accountID}, after, limit)
}

// CAPolicies implements openpca.CAStore.
func (db *DB) CAPolicies(ctx context.Context, fn func(arn, policy string)) error {
	rows, err := db.query(ctx, `SELECT arn, policy FROM certificate_authorities WHERE policy <> '' ORDER BY created_at, id`)
	if err != nil {
		return db.wrap("listing CA policies", err)
	}
	defer rows.Close()
	for rows.Next() {
		var arn, policy string
		if err := rows.Scan(&arn, &policy); err != nil {
			return db.wrap("listing CA policies", err)
		}
		fn(arn, policy)
	}
	return db.wrap("listing CA policies", rows.Err())
}

// CountCAs implements openpca.CAStore.
func (db *DB) CountCAs(ctx context.Context, now time.Time) (map[openpca.CAKind]int, error) {
	rows, err := db.query(ctx, `SELECT
		CASE WHEN status IN ('ACTIVE', 'DISABLED') AND not_after < ? THEN 'EXPIRED' ELSE status END AS s, key_store, COUNT(*)
		FROM certificate_authorities WHERE NOT (status = 'DELETED' AND restorable_until <= ?) GROUP BY s, key_store`, now.UnixMicro(), now.UnixMicro())
	if err != nil {
		return nil, db.wrap("counting CAs", err)
	}
	defer rows.Close()
	counts := make(map[openpca.CAKind]int)
	for rows.Next() {
		var k openpca.CAKind
		var n int
		if err := rows.Scan(&k.Status, &k.KeyStore, &n); err != nil {
			return nil, err
		}
		counts[k] = n
	}
	return counts, rows.Err()
}

// purgeChunk is how many log entries' rows a purge deletes in one
// transaction: SQLite has one writer, and a CA of a million certificates
// purged at once held it for long enough that other accounts' writes
// failed.
const purgeChunk = 5000

// PurgeCAs implements openpca.CAStore. A CA is first claimed for the
// purge, its restoration period ended at once so that no server restores
// it while its rows go (servers' clocks may differ). Its certificates and
// log go a chunk at a time, oldest first, each chunk in a transaction of
// its own; then, in one, the rest and the CA. A purge that stops halfway
// leaves a claimed CA, which the next one finishes. Of servers purging at
// once, the one that deletes a CA's row returns it, for its key to be
// destroyed once.
func (db *DB) PurgeCAs(ctx context.Context, now time.Time) ([]*openpca.CA, error) {
	rows, err := db.query(ctx, `SELECT `+caColumns+` FROM certificate_authorities WHERE status = 'DELETED' AND restorable_until <= ?`, now.UnixMicro())
	if err != nil {
		return nil, db.wrap("purging CAs", err)
	}
	var gone []*openpca.CA
	for rows.Next() {
		ca, err := scanCA(rows)
		if err != nil {
			rows.Close()
			return nil, db.wrap("purging CAs", err)
		}
		gone = append(gone, ca)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, db.wrap("purging CAs", err)
	}
	var purged []*openpca.CA
	for _, ca := range gone {
		// The version moves on, so that a restore that read the CA before
		// the claim (from a server whose clock is behind, or its cache)
		// fails, and reads it again, claimed.
		res, err := db.exec(ctx, `UPDATE certificate_authorities SET restorable_until = 0, version = version + 1 WHERE id = ? AND status = 'DELETED' AND restorable_until <= ?`, ca.ID, now.UnixMicro())
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				continue // restored since
			}
		}
		if err == nil {
			err = db.purgeLog(ctx, ca.ID)
		}
		if err == nil {
			err = db.purgeOCSP(ctx, ca.ID)
		}
		deleted := false
		if err == nil {
			err = db.inTx(ctx, func(tx *sql.Tx) error {
				if err := db.stillClaimed(ctx, tx, ca.ID); err != nil {
					return err
				}
				for _, table := range []string{"certificates", "certificate_ders", "key_uses", "key_use_logs", "audit_reports", "crl_publications", "ca_shares", "ca_permissions",
					"witnessing", "witness_sizes", "ocsp_responses"} {
					if _, err := db.txExec(ctx, tx, `DELETE FROM `+table+` WHERE ca_id = ?`, ca.ID); err != nil {
						return err
					}
				}
				// The software store's handle is the sealed key itself, which
				// goes with the row: it is not copied.
				handle := ca.KeyHandle
				if ca.KeyStore == softwareStore {
					handle = []byte{}
				}
				if _, err := db.txExec(ctx, tx, `INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id, statement)
					SELECT ?, ?, ?, ?, ?, destruction FROM certificate_authorities WHERE id = ? AND NOT keep_key
					ON CONFLICT (ca_id) DO NOTHING`, ca.ID, ca.ARN, ca.KeyStore, handle, ca.KeyID, ca.ID); err != nil {
					return err
				}
				res, err := db.txExec(ctx, tx, `DELETE FROM certificate_authorities WHERE id = ? AND status = 'DELETED'`, ca.ID)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				deleted = n > 0 // or another server's purge deleted it
				return err
			})
		}
		switch {
		case errors.Is(err, errRestored):
			continue // restored by a server whose clock is behind, or purged by another
		case err != nil:
			return purged, db.wrap("purging CAs", err)
		case deleted:
			purged = append(purged, ca)
		}
	}
	if len(purged) > 0 {
		db.scrub()
	}
	return purged, nil
}

// purgeLog deletes the certificates and log entries of a CA, purgeChunk
// log entries at a time (a certificate's issue_seq is its issuance's
// entry).
func (db *DB) purgeLog(ctx context.Context, caID string) error {
	var size int64
	err := db.queryRow(ctx, `SELECT size FROM key_use_logs WHERE ca_id = ?`, caID).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	for to := int64(purgeChunk); to-purgeChunk < size; to += purgeChunk {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			if err := db.stillClaimed(ctx, tx, caID); err != nil {
				return err
			}
			for _, q := range []string{`DELETE FROM certificates WHERE ca_id = ? AND issue_seq < ?`, `DELETE FROM certificate_ders WHERE ca_id = ? AND issue_seq < ?`,
				`DELETE FROM key_uses WHERE ca_id = ? AND seq < ?`} {
				if _, err := db.txExec(ctx, tx, q, caID, to); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// purgeOCSP removes the OCSP responses kept for a CA being purged, as
// many as its certificates, purgeChunk at a time; the purge's last
// transaction removes any kept since.
func (db *DB) purgeOCSP(ctx context.Context, caID string) error {
	_, err := db.deleteInChunks(ctx, `DELETE FROM ocsp_responses WHERE (ca_id, serial) IN (SELECT ca_id, serial FROM ocsp_responses WHERE ca_id = ? LIMIT ?)`, math.MaxInt64, caID)
	return err
}

// deleteInChunks runs q, a DELETE whose last argument is how many rows
// it removes at most, with args and purgeChunk, until it removes fewer or
// atMost in all: each statement holds the writer only briefly. It returns
// how many it removed.
func (db *DB) deleteInChunks(ctx context.Context, q string, atMost int64, args ...any) (int64, error) {
	var removed int64
	for removed < atMost {
		chunk := min(purgeChunk, atMost-removed)
		res, err := db.exec(ctx, q, append(args, chunk)...)
		if err != nil {
			return removed, err
		}
		n, err := res.RowsAffected()
		removed += n
		if err != nil || n < chunk {
			return removed, err
		}
	}
	return removed, nil
}

// RecordKeyMade implements openpca.CAStore. A key recorded before it was
// made (openpca.KeyNamer) is recorded again once it exists, with its key
// id: the record keeps its first time, and a purge that took it meanwhile
// still destroys the key. A record again without the word that the key
// may be destroyed (the audit key could not sign it) leaves the first,
// whose word names the key as it stands.
func (db *DB) RecordKeyMade(ctx context.Context, ca *openpca.CA, at time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id, made_at, statement) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (ca_id) DO UPDATE SET key_handle = excluded.key_handle, key_id = excluded.key_id, statement = excluded.statement
		WHERE excluded.statement IS NOT NULL OR key_destructions.statement IS NULL`,
		ca.ID, ca.ARN, ca.KeyStore, ca.KeyHandle, ca.KeyID, at.UnixMicro(), ca.Destruction)
	return db.wrap("recording a key made", err)
}

// KeysToDestroy implements openpca.CAStore. The records of keys made long
// enough ago are taken first (made_at cleared), in one statement: a
// CreateCA that commits after it finds its record gone, and fails, so
// that the database decides between the two, whatever the servers'
// clocks say.
func (db *DB) KeysToDestroy(ctx context.Context, now time.Time) ([]*openpca.CA, error) {
	if _, err := db.exec(ctx, `UPDATE key_destructions SET made_at = NULL WHERE made_at < ?`, now.Add(-openpca.KeyMadeGrace).UnixMicro()); err != nil {
		return nil, db.wrap("taking the keys of CAs never stored", err)
	}
	rows, err := db.query(ctx, `SELECT ca_id, arn, key_store, key_handle, key_id, statement FROM key_destructions
		WHERE made_at IS NULL ORDER BY ca_id`)
	if err != nil {
		return nil, db.wrap("reading the keys to destroy", err)
	}
	defer rows.Close()
	var cas []*openpca.CA
	for rows.Next() {
		ca := &openpca.CA{}
		if err := rows.Scan(&ca.ID, &ca.ARN, &ca.KeyStore, &ca.KeyHandle, &ca.KeyID, &ca.Destruction); err != nil {
			return nil, db.wrap("reading the keys to destroy", err)
		}
		cas = append(cas, ca)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("reading the keys to destroy", err)
	}
	rows.Close()
	// A record whose key a stored CA holds (by the record's CA id or ARN,
	// or its store and handle) was not written by a purge, which deletes
	// the CA's row as it writes the record, nor by a creation, whose CA is
	// stored only while its record is: it comes with KeepKey. Compared as
	// the values read, bound as the server writes them: in SQLite, a
	// record's id written as a BLOB, or its handle as TEXT, equals no
	// CA's column, and reads back as the CA's all the same.
	for _, ca := range cas {
		if err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM certificate_authorities WHERE id = ? OR arn = ? OR key_store = ? AND key_handle = ?)`,
			ca.ID, ca.ARN, ca.KeyStore, ca.KeyHandle).Scan(&ca.KeepKey); err != nil {
			return nil, db.wrap("reading the keys to destroy", err)
		}
	}
	return cas, nil
}

// KeyDestroyed implements openpca.CAStore.
func (db *DB) KeyDestroyed(ctx context.Context, caID string) error {
	// As text: a record written by hand with its id as a BLOB reads as
	// this id, and would never go (KeysToDestroy).
	_, err := db.exec(ctx, `DELETE FROM key_destructions WHERE CAST(ca_id AS TEXT) = ?`, caID)
	return db.wrap("recording a key destroyed", err)
}

// softwareStore is the name of the key store that keeps CA keys sealed in
// their rows (seal.SoftwareStore).
const softwareStore = "software"

// errRestored stops a purge of a CA restored since it was claimed (only a
// server that read it before the claim could, and then its version check
// fails), or purged by another server: its rows stay, or are gone.
var errRestored = errors.New("the CA was restored, or purged by another server")

// stillClaimed locks, in tx, the row of a CA claimed for its purge, and
// fails with errRestored if it is no longer claimed.
func (db *DB) stillClaimed(ctx context.Context, tx *sql.Tx, caID string) error {
	var one int
	err := db.txQueryRow(ctx, tx, `SELECT 1 FROM certificate_authorities WHERE id = ? AND status = 'DELETED' AND restorable_until = 0{FOR_UPDATE}`, caID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errRestored
	}
	return err
}

// FindCAByKeyID implements openpca.CAStore.
func (db *DB) FindCAByKeyID(ctx context.Context, keyID string) (*openpca.CA, error) {
	ca, err := scanCA(db.queryRow(ctx, `SELECT `+caColumns+` FROM certificate_authorities WHERE key_id = ? ORDER BY created_at LIMIT 1`, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return ca, db.wrap("reading CA", err)
}

// completeEarlierCAs gives the CAs that a version before OCSP and CRL
// publishing made what this one finds them by: the hash of their key,
// which OCSP requests name them by (the migration that added key_id left
// it empty), and, for those whose CRLs were enabled then, the row of their
// CRLs' publication, without which no CRL is ever written (the migration
// that added those rows made none). It runs as each migration does, and
// finds nothing to do once done: every CA made since has both.
func (db *DB) completeEarlierCAs(ctx context.Context) error {
	rows, err := db.query(ctx, `SELECT `+caColumnsOf("c")+` FROM certificate_authorities c
		WHERE c.key_id = '' OR NOT EXISTS (SELECT 1 FROM crl_publications p WHERE p.ca_id = c.id)`)
	if err != nil {
		return err
	}
	var cas []*openpca.CA
	for rows.Next() {
		ca, err := scanCA(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if ca.KeyID == "" || ca.CRL() != nil {
			cas = append(cas, ca)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, ca := range cas {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			// A CA whose key cannot be read stays without its hash, and
			// unknown to OCSP, rather than keep every server from starting.
			if keyID, err := pki.CAKeyID(ca.CSR, ca.Certificate); ca.KeyID == "" && err == nil {
				if _, err := db.txExec(ctx, tx, `UPDATE certificate_authorities SET key_id = ? WHERE id = ? AND key_id = ''`, hex.EncodeToString(keyID), ca.ID); err != nil {
					return err
				}
			}
			if ca.CRL() != nil {
				_, err := db.txExec(ctx, tx, `INSERT INTO crl_publications (ca_id, wanted) VALUES (?, 1) ON CONFLICT (ca_id) DO NOTHING`, ca.ID)
				return err
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("completing the CAs of an earlier version: %w", err)
		}
	}
	return nil
}

// migrationSteps are what migrations do beyond their SQL, in Go, in
// their transaction, by the name of the migration's file after its
// number.
var migrationSteps = map[string]func(db *DB, ctx context.Context, tx *sql.Tx) error{
	"import_key_uses.sql":  (*DB).logEarlierImports,
	"bind_access_keys.sql": (*DB).bindAccessKeys,
}

// logEarlierImports logs, for every CA that holds a certificate when
// imports begin to be logged, an IMPORT record of what it holds
// (openpca.UpgradePrincipal's), as if imported then: from then on, a CA
// holds only what its log's last import says (openpca.CheckImported). It
// runs as the migration does, once; a CA whose log is being destroyed
// (DELETED, restorable until 0) is left, as audit.CheckLogs leaves it.
// So is one whose chain no server would have stored, and one whose log
// imports already (the migration made to run again, by a backup's
// record of it taken out): the alarm names them. An upgrade's import
// after another is one no server writes (audit.CheckLog).
func (db *DB) logEarlierImports(ctx context.Context, tx *sql.Tx) error {
	rows, err := db.txQuery(ctx, tx, `SELECT c.id, c.arn, c.account_id, c.status, c.restorable_until, c.certificate, c.certificate_chain, c.not_before, c.not_after
		FROM certificate_authorities c JOIN key_use_logs l ON l.ca_id = c.id
		WHERE c.certificate IS NOT NULL AND NOT EXISTS (SELECT 1 FROM key_uses k WHERE k.ca_id = c.id AND k.kind = '`+openpca.KeyUseImport+`')
		ORDER BY c.created_at, c.id`)
	if err != nil {
		return err
	}
	var uses []*openpca.KeyUse
	now := time.Now().Truncate(time.Microsecond) // as the log keeps times
	for rows.Next() {
		var (
			ca                              openpca.CA
			restorable, notBefore, notAfter sql.NullInt64
		)
		if err := rows.Scan(&ca.ID, &ca.ARN, &ca.AccountID, &ca.Status, &restorable, &ca.Certificate, &ca.CertificateChain, &notBefore, &notAfter); err != nil {
			rows.Close()
			return err
		}
		if len(ca.Certificate) == 0 || ca.Status == openpca.CertificateAuthorityStatusDeleted && restorable.Valid && restorable.Int64 == 0 {
			continue
		}
		ca.NotBefore, ca.NotAfter = fromMicros(notBefore), fromMicros(notAfter)
		if use, err := openpca.ImportUse(&ca, openpca.UpgradePrincipal, "", now); err == nil {
			uses = append(uses, use)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, use := range uses {
		if err := db.logKeyUse(ctx, tx, use); err != nil {
			return err
		}
	}
	return nil
}

// LastImport implements openpca.CAStore: the CA, its log's size and
// its last IMPORT entry, in one statement, so that an import committed
// meanwhile is in all three or none.
func (db *DB) LastImport(ctx context.Context, accountID, caID string) (*openpca.LastImport, error) {
	var (
		last   openpca.LastImport
		seq    sql.NullInt64
		record []byte
	)
	row := db.queryRow(ctx, `SELECT `+caColumnsOf("c")+`, l.size, k.seq, k.record FROM certificate_authorities c
		JOIN key_use_logs l ON l.ca_id = c.id
		LEFT JOIN key_uses k ON k.ca_id = c.id AND k.kind = '`+openpca.KeyUseImport+`' AND k.seq = (
			SELECT MAX(i.seq) FROM key_uses i WHERE i.ca_id = c.id AND i.kind = '`+openpca.KeyUseImport+`')
		WHERE c.id = ? AND c.account_id = ?`, caID, accountID)
	ca, err := scanCA(moreColumns{row, []any{&last.LogSize, &seq, &record}})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading the CA's last import", err)
	}
	last.CA, last.Entry, last.Record = ca, seq.Int64, record
	if !seq.Valid {
		last.Entry = -1
	}
	return &last, nil
}

// moreColumns scans a row's columns past those a scan of it takes into
// more.
type moreColumns struct {
	row  rowScanner
	more []any
}

func (m moreColumns) Scan(dest ...any) error { return m.row.Scan(append(dest, m.more...)...) }
