package sqlite

import (
	"bytes"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/openpca/openpca/internal/sqliteuri"
)

// TestDERsTakeTheirSize: certificates' DERs of 1,150 bytes, issued by ten
// CAs in turn, take no more than 1.5 times their size in the database. In
// a WITHOUT ROWID table each took 4.7 KB, an overflow page of its own (a
// soak run's finding).
func TestDERsTakeTheirSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ders.db")
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", sqliteuri.File(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	size := func() int64 {
		var pages, pageSize int64
		if err := raw.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size)`).Scan(&pages, &pageSize); err != nil {
			t.Fatal(err)
		}
		return pages * pageSize
	}
	before := size()
	const rows, der = 4000, 1150
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		ca := fmt.Sprintf("%08d-2222-3333-4444-555555555555", i%10)
		if _, err := tx.Exec(`INSERT INTO certificate_ders (ca_id, issue_seq, der) VALUES (?, ?, ?)`, ca, i/10, bytes.Repeat([]byte{byte(i)}, der)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if per := float64(size()-before) / rows; per > 1.5*der {
		t.Errorf("%.0f bytes a certificate of %d; want %.0f at most", per, der, 1.5*der)
	}
}
