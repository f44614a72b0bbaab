package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/groupcommit"
)

// issueBatch records a batch of issuances without idempotency tokens in
// few statements whatever its size: per CA, one check that it may sign,
// one reservation of log entries (which also reads the edge of the log's
// tree, all that growing it needs), multi-row inserts of the key uses, the
// certificates and their DER, and one write of the tree's new edge. On
// PostgreSQL this saves a round trip per statement and certificate.
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
	// The CAs' rows are taken in one order, their ids', as every batch
	// takes them: two batches of the same CAs on two servers, each taking
	// them in the order its requests came, would each wait for a row the
	// other holds, until PostgreSQL aborted one (after deadlock_timeout, a
	// second), and its issuances were written again one by one.
	slices.SortStableFunc(groups, func(a, b *group) int { return strings.Compare(a.caID, b.caID) })
	for _, g := range groups {
		// The latest issue time of the group is the strictest check of
		// the CA certificate's end.
		last := g.items[0].Certificate.IssuedAt
		for _, is := range g.items[1:] {
			if is.Certificate.IssuedAt.After(last) {
				last = is.Certificate.IssuedAt
			}
		}
		// An error names the group's CA: one whose rows are locked
		// elsewhere fails its items when they run again alone at once,
		// not after waiting again (groupcommit.KeyError).
		ca, err := db.caMaySign(ctx, tx, g.caID, g.statuses, last)
		if err != nil {
			return nil, &groupcommit.KeyError{Key: g.caID, Err: err}
		}
		edge, err := db.reserveKeyUses(ctx, tx, g.caID, len(g.items))
		if err != nil {
			return nil, &groupcommit.KeyError{Key: g.caID, Err: err}
		}
		for i, is := range g.items {
			is.Use.Seq = edge.Size + int64(i)
		}
		if err := db.insertIssuances(ctx, tx, g.caID, edge, g.items, ca); err != nil {
			return nil, &groupcommit.KeyError{Key: g.caID, Err: err}
		}
	}
	return make([]error, len(batch)), nil
}

// maxInsertRows bounds the rows of one INSERT. An insert has a statement
// for each number of rows up to it, each prepared once (see hotQueries):
// parsing an insert of many rows costs SQLite more than running it, and a
// batch of rows is one round trip to PostgreSQL.
const maxInsertRows = 16

// rowInsert is a multi-row INSERT: queries[n-1] inserts n rows.
type rowInsert struct {
	columns int
	queries []string
}

// newRowInsert returns the INSERT of insert, then as many tuples of
// columns placeholders as rows, then suffix.
func newRowInsert(insert string, columns int, suffix string) rowInsert {
	r := rowInsert{columns: columns}
	tuple := "(" + strings.Repeat("?, ", columns-1) + "?)"
	for n := 1; n <= maxInsertRows; n++ {
		r.queries = append(r.queries, insert+strings.Repeat(tuple+", ", n-1)+tuple+suffix)
	}
	return r
}

// insertRows inserts rows with as few statements as it can, and returns
// how many rows were inserted.
func (db *DB) insertRows(ctx context.Context, tx *sql.Tx, r rowInsert, rows [][]any) (int64, error) {
	var inserted int64
	for chunk := range slices.Chunk(rows, maxInsertRows) {
		args := make([]any, 0, len(chunk)*r.columns)
		for _, row := range chunk {
			args = append(args, row...)
		}
		res, err := db.txExec(ctx, tx, r.queries[len(chunk)-1], args...)
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
