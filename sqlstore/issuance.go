package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/openpca/openpca"
)

// issueBatch records a batch of issuances without idempotency tokens in
// few statements whatever its size: per CA, one check that it may sign,
// one reservation of log entries, one read of the hashes the log's tree
// needs to grow, and multi-row inserts of the key uses, the certificates
// and their DER. On PostgreSQL this saves a round trip per
// statement and certificate.
//
// Any failure fails the batch: the batcher then records each issuance
// alone, and the one that failed gets its own error (ErrCAState,
// ErrConflict) from a batch of one.
func (db *DB) issueBatch(ctx context.Context, tx *sql.Tx, batch []*openpca.Issuance) ([]error, error) {
	type group struct {
		caID     string
		statuses []openpca.CertificateAuthorityStatus
		items    []*openpca.Issuance
	}
	var groups []*group
	for _, is := range batch {
		i := slices.IndexFunc(groups, func(g *group) bool {
			return g.caID == is.Use.CAID && slices.Equal(g.statuses, is.Statuses)
		})
		if i < 0 {
			groups = append(groups, &group{caID: is.Use.CAID, statuses: is.Statuses})
			i = len(groups) - 1
		}
		groups[i].items = append(groups[i].items, is)
	}
	for _, g := range groups {
		// The latest issue time of the group is the strictest check of
		// the CA certificate's end.
		last := g.items[0].Certificate.IssuedAt
		for _, is := range g.items[1:] {
			if is.Certificate.IssuedAt.After(last) {
				last = is.Certificate.IssuedAt
			}
		}
		ca, err := db.caMaySign(ctx, tx, g.caID, g.statuses, last)
		if err != nil {
			return nil, err
		}
		first, err := db.reserveKeyUses(ctx, tx, g.caID, len(g.items))
		if err != nil {
			return nil, err
		}
		for i, is := range g.items {
			is.Use.Seq = first + int64(i)
		}
		if err := db.insertIssuances(ctx, tx, g.caID, first, g.items, ca); err != nil {
			return nil, err
		}
	}
	return make([]error, len(batch)), nil
}

// rowInsert is a multi-row INSERT: insert, then as many tuples of
// columns placeholders as rows, then suffix.
type rowInsert struct {
	insert, suffix string
	columns        int
}

// query returns the statement for n rows.
func (r rowInsert) query(n int) string {
	tuple := "(" + strings.Repeat("?, ", r.columns-1) + "?)"
	return r.insert + strings.Repeat(tuple+", ", n-1) + tuple + r.suffix
}

// insertRowsChunk bounds the rows of one INSERT, and so the number of
// statement texts a connection prepares and caches.
const insertRowsChunk = 32

// insertRows inserts rows with as few statements as it can, and returns
// how many rows were inserted.
func (db *DB) insertRows(ctx context.Context, tx *sql.Tx, r rowInsert, rows [][]any) (int64, error) {
	var inserted int64
	for chunk := range slices.Chunk(rows, insertRowsChunk) {
		args := make([]any, 0, len(chunk)*r.columns)
		for _, row := range chunk {
			args = append(args, row...)
		}
		res, err := db.txExec(ctx, tx, r.query(len(chunk)), args...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		inserted += n
	}
	return inserted, nil
}
