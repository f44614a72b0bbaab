package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/openpca/openpca"
)

// ClaimWitnessing implements openpca.WitnessStore.
func (db *DB) ClaimWitnessing(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.WitnessJob, error) {
	job := &openpca.WitnessJob{Sizes: map[string]int64{}}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := db.txQueryRow(ctx, tx, `SELECT l.ca_id, ca.account_id FROM key_use_logs l
			JOIN certificate_authorities ca ON ca.id = l.ca_id
			LEFT JOIN witnessing w ON w.ca_id = l.ca_id
			WHERE (l.size > COALESCE(w.size, 0) OR w.asks > w.answered) AND (COALESCE(w.next_at, 0) <= ? OR w.next_at > ?)
				AND (w.lease_until IS NULL OR w.lease_until <= ? OR w.owner = ?)
			ORDER BY COALESCE(w.next_at, 0) LIMIT 1`, now.UnixMicro(), now.Add(openpca.ClockStep).UnixMicro(), now.UnixMicro(), owner).
			Scan(&job.CAID, &job.AccountID)
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		// The hold is taken only if no one took it since: of servers that
		// chose the same CA at once, one gets it.
		res, err := db.txExec(ctx, tx, `INSERT INTO witnessing (ca_id, owner, lease_until) VALUES (?, ?, ?)
			ON CONFLICT (ca_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until, claimed = witnessing.asks
			WHERE witnessing.lease_until IS NULL OR witnessing.lease_until <= ? OR witnessing.owner = ?`,
			job.CAID, owner, now.Add(lease).UnixMicro(), now.UnixMicro(), owner)
		if n, err := rowsAffected(res, err); err != nil || n == 0 {
			if err == nil {
				err = openpca.ErrNotFound
			}
			return err
		}
		rows, err := tx.QueryContext(ctx, db.rewrite(`SELECT witness, size FROM witness_sizes WHERE ca_id = ?`), job.CAID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var witness string
			var size int64
			if err := rows.Scan(&witness, &size); err != nil {
				return err
			}
			job.Sizes[witness] = size
		}
		return rows.Err()
	})
	if err != nil {
		return nil, db.wrap("claiming a log to witness", err)
	}
	return job, nil
}

// RenewWitnessing implements openpca.WitnessStore.
func (db *DB) RenewWitnessing(ctx context.Context, caID, owner string, until time.Time) error {
	res, err := db.exec(ctx, `UPDATE witnessing SET lease_until = ? WHERE ca_id = ? AND owner = ?`, until.UnixMicro(), caID, owner)
	return db.held(res, err, "renewing a witnessing lease")
}

// FinishWitnessing implements openpca.WitnessStore.
func (db *DB) FinishWitnessing(ctx context.Context, caID, owner string, sizes map[string]int64, witnessed *openpca.WitnessedCheckpoint, nextAt time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// A round asked for while this one ran is due at once.
		res, err := db.txExec(ctx, tx, `UPDATE witnessing SET owner = NULL, lease_until = NULL, next_at = CASE WHEN asks > claimed THEN 0 ELSE CAST(? AS BIGINT) END
			WHERE ca_id = ? AND owner = ?`, nextAt.UnixMicro(), caID, owner)
		if err := db.held(res, err, "finishing witnessing"); err != nil {
			return err
		}
		if witnessed != nil {
			// A checkpoint never replaces a larger one. It answers the
			// asks made before its round's hold was taken.
			if _, err := db.txExec(ctx, tx, `UPDATE witnessing SET size = ?, note = ?, cosigners = ?, answered = claimed WHERE ca_id = ? AND size <= ?`,
				witnessed.Size, witnessed.Note, witnessed.Cosigners, caID, witnessed.Size); err != nil {
				return err
			}
		}
		for witness, size := range sizes {
			if _, err := db.txExec(ctx, tx, `INSERT INTO witness_sizes (ca_id, witness, size) VALUES (?, ?, ?)
				ON CONFLICT (ca_id, witness) DO UPDATE SET size = excluded.size`, caID, witness, size); err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("finishing witnessing", err)
}

// WitnessAgain implements openpca.WitnessStore.
func (db *DB) WitnessAgain(ctx context.Context, caID string) (int64, error) {
	var ask int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return db.txQueryRow(ctx, tx, `INSERT INTO witnessing (ca_id, asks) VALUES (?, 1)
			ON CONFLICT (ca_id) DO UPDATE SET asks = witnessing.asks + 1, next_at = 0 RETURNING asks`, caID).Scan(&ask)
	})
	return ask, db.wrap("asking for a witnessing round", err)
}

// WitnessedCheckpoint implements openpca.WitnessStore.
func (db *DB) WitnessedCheckpoint(ctx context.Context, caID string) (*openpca.WitnessedCheckpoint, error) {
	var w openpca.WitnessedCheckpoint
	err := db.queryRow(ctx, `SELECT size, note, cosigners, answered FROM witnessing WHERE ca_id = ? AND note IS NOT NULL`, caID).Scan(&w.Size, &w.Note, &w.Cosigners, &w.Answers)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return &w, db.wrap("reading a witnessed checkpoint", err)
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
