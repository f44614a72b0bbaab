package audit_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/sqliteuri"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/localfs"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/server"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/witness"
	"github.com/openpca/openpca/witnessing"
)

// FuzzReportTampered: whatever someone with write access to the database
// sets in a CA's tables, a report of them either fails (its failure at
// most the 2 KiB the generator says), or succeeds and then verifies, as
// openpca audit verify checks a report without --ca; and if it has a
// witnessed checkpoint, with --witness too. The tables are a real
// server's, whose log a witness cosigned, of a root CA that issued a
// subordinate CA and two leaves and revoked one, with the reports' bucket
// given to the account; the fuzzer sets their cells (to
// values of other cells, to its own bytes, to values of other types),
// adds copies of their rows with a cell set, and, if its flags say so,
// rewrites the root's log, records
// and hashes agreeing, with its records changed, kept or made again from
// the rows, as the hand-written cases of cmd/openpca/tampered_test.go do.
func FuzzReportTampered(f *testing.F) {
	tmpl, caID, signer, vkey, witnessKey := tamperableTables(f)
	cells, pool := tableCells(f, tmpl)
	f.Add(byte(0), []byte{})
	f.Add(byte(flagRewrite), []byte{})
	f.Add(byte(flagRewrite|flagMadeAgain|flagJSON), []byte{})
	// A value of the tables replaced by another in a record, and a cell
	// set to a value of the tables.
	f.Add(byte(flagRewrite|flagMadeAgain), []byte{opReplace, 3, 0, 9, 0, 0, 0, 2, 0, opSet, 7, 0, valuePool, 2, 0})
	// A space inserted after a record's brace.
	f.Add(byte(flagRewrite), []byte{opInsert, 1, 0, 1, 0, ' '})
	// A hex digit inserted in the hash the CA's first record (its CSR's)
	// has: a log of records as a server writes them, not the one the
	// witness cosigned.
	f.Add(byte(flagRewrite), []byte{opInsert, 0, 0, 330 % 256, 330 / 256, 'a'})
	f.Add(byte(0), []byte{opSet, 1, 0, valueExpr, 2, 0})
	// The report's bucket 3,000 bytes longer.
	f.Add(byte(0), []byte{opSet, 169, 0, valueExpr, 10, 0})
	// A copy of the log's last entry, one past it.
	f.Add(byte(0), []byte{opCopy, 159, 0, valueExpr, 0, 0})
	f.Fuzz(func(t *testing.T, flags byte, ops []byte) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "openpca.db")
		b, err := os.ReadFile(tmpl)
		if err == nil {
			err = os.WriteFile(dbPath, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", sqliteuri.File(dbPath)+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		store, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		in := fuzzBytes(ops)
		var sets []func() error
		var edits []func([][]byte) [][]byte
		for len(in) > 0 {
			switch op := in.byte() % opKinds; op {
			case opSet:
				c := cells[in.index(len(cells))]
				expr, args := in.value(pool, c.column)
				sets = append(sets, func() error {
					_, err := db.Exec(`UPDATE `+c.table+` SET `+c.column+` = `+expr+` WHERE `+c.where, append(args, c.key...)...)
					return err
				})
			case opCopy:
				c := cells[in.index(len(cells))]
				expr, args := in.value(pool, c.column)
				values := slices.Clone(c.columns)
				values[slices.Index(values, c.column)] = expr
				sets = append(sets, func() error {
					_, err := db.Exec(`INSERT INTO `+c.table+` (`+strings.Join(c.columns, ", ")+`) SELECT `+strings.Join(values, ", ")+
						` FROM `+c.table+` WHERE `+c.where, append(args, c.key...)...)
					return err
				})
			default:
				i, a, b := in.index(1<<16), in.index(1<<16), in.byte()
				v := in.text(pool)
				edits = append(edits, func(records [][]byte) [][]byte {
					if len(records) == 0 {
						return records
					}
					i := i % len(records)
					switch op {
					case opReplace:
						if from := pool[a%len(pool)].text(); from != "" {
							records[i] = bytes.ReplaceAll(records[i], []byte(from), []byte(v))
						}
					case opInsert:
						at := a % (len(records[i]) + 1)
						records[i] = append(records[i][:at:at], append([]byte{b}, records[i][at:]...)...)
					case opDrop:
						records = append(records[:i:i], records[i+1:]...)
					}
					return records
				})
			}
		}
		if flags&flagRewrite != 0 {
			err := auditlogtest.RewriteLog(ctx, db, store, caID, func(records [][]byte) [][]byte {
				for _, edit := range edits {
					records = edit(records)
				}
				return records
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, set := range sets {
			set() // a set the table's constraints refuse changes nothing
		}
		if flags&flagMadeAgain != 0 {
			if _, err := db.Exec(`UPDATE key_uses SET record = NULL WHERE ca_id = ?1 AND seq IN (SELECT issue_seq FROM certificates WHERE ca_id = ?1)`, caID); err != nil {
				t.Fatal(err)
			}
		}
		if flags&flagJSON != 0 {
			db.Exec(`UPDATE audit_reports SET format = 'JSON', s3_key = replace(s3_key, '.csv', '.json')`)
		}

		// A row that is no longer one waiting is not claimed, and one the
		// store cannot read is failed by the generator's claim: there is
		// no report.
		r, err := store.ClaimAuditReport(ctx, "fuzz", time.Now(), time.Minute)
		if err != nil {
			return
		}
		objects, err := localfs.New(filepath.Join(dir, "s3"), "", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "s3", "reports"), 0o700); err != nil {
			t.Fatal(err)
		}
		log := auditlog.NewLog(store, signer, vkey, time.Now)
		// The witness's rounds are the template's: what the tables say it
		// cosigned is read once, and a report of a log it did not cosign
		// goes without.
		w := witnessing.Start(witnessing.Config{Store: store, Log: log, Quorum: 1, Owner: "fuzz", Logger: slog.New(slog.DiscardHandler)})
		defer w.Close()
		failure, err := audit.Generate(ctx, audit.GeneratorConfig{
			Store: store, Objects: objects, Log: log, Logger: slog.New(slog.DiscardHandler), DefaultAccount: app.DefaultAccountID,
			Witnessed: func(ctx context.Context, caID string, size int64) (*openpca.WitnessedCheckpoint, error) {
				return w.AtLeast(ctx, caID, size, 0)
			},
			Witnesses: []note.Verifier{witnessKey}, Quorum: 1,
		}, r)
		if ctx.Err() != nil {
			t.Fatalf("the report did not end within a minute: %v", err)
		}
		if err != nil {
			if len(failure) > 2<<10+len("…") {
				t.Fatalf("the report failed, saying %d bytes: %.300s", len(failure), failure)
			}
			return
		}
		report, err := objects.Open(r.Bucket, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		defer report.Close()
		proof, err := objects.Open(r.Bucket, r.Key+auditlog.ProofSuffix)
		if err != nil {
			t.Fatal(err)
		}
		defer proof.Close()
		v := audit.Verify(report, proof, vkey)
		v.CheckIdentity(r.Key, "", "", false)
		if v.Header != nil && v.Header.WitnessedCheckpoint != "" {
			v.CheckWitnesses(vkey, []note.Verifier{witnessKey}, 1, time.Time{})
		}
		if len(v.Problems) > 0 {
			report.Seek(0, io.SeekStart)
			b, _ := io.ReadAll(io.LimitReader(report, 16<<10))
			t.Fatalf("the report succeeded and fails to verify: %v\n%s", v.Problems, b)
		}
	})
}

// The fuzzer's flags.
const (
	flagRewrite   = 1 << iota // the root's log rewritten, every record kept
	flagMadeAgain             // then its issuance records made again from the rows
	flagJSON                  // the report is JSON, not CSV
)

// The fuzzer's operations: a cell set, a row copied with a cell set, or,
// in a log rewritten, a record changed.
const (
	opSet     = iota
	opReplace // a value of the tables replaced by another in a record
	opInsert  // a byte inserted in a record
	opDrop    // a record taken out of the log
	opCopy    // a copy of a row added, with one of its cells set
	opKinds
)

// tamperableTables makes, with a real server and a witness, the tables
// FuzzReportTampered changes, in one file, and returns its path, the root
// CA's id, the server's audit key and its public key, and the witness's
// public key. A report of the root is waiting, as requested and not
// begun; the witness cosigned the root's log to its end, in a round that
// answers the report's ask.
func tamperableTables(f *testing.F) (path, caID string, auditKey note.Signer, verifierKey string, witnessKey note.Verifier) {
	env := testenv.Start(f)
	res, err := http.Get(env.URL + server.PathPublicKey)
	if err != nil {
		f.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		f.Fatal(err)
	}
	verifierKey = strings.TrimSpace(string(b))
	logKey, err := note.NewVerifier(verifierKey)
	if err != nil {
		f.Fatal(err)
	}
	wskey, wvkey, err := witness.NewKey("witness.example/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if witnessKey, err = auditlog.NewWitnessVerifier(wvkey); err != nil {
		f.Fatal(err)
	}
	ws, err := witness.NewServer(f.Context(), witness.Config{Key: wskey, Database: filepath.Join(f.TempDir(), "witness.db"), Logger: slog.New(slog.DiscardHandler),
		Logs: []witness.Log{{Origin: auditlog.Origin("arn:aws:acm-pca:us-east-1:" + app.DefaultAccountID + ":*"), Keys: []note.Verifier{logKey}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ws.Close() })
	hs := httptest.NewServer(ws)
	f.Cleanup(hs.Close)
	env.Stop(f)
	env.Config.Witnesses = []string{hs.URL + "=" + wvkey}
	env.Restart(f)
	rootARN, _ := env.NewActiveRoot(f, "Fuzzed Root")
	subARN := env.CreateCA(f, types.CertificateAuthorityTypeSubordinate, "Fuzzed Sub")
	env.ActivateSubordinate(f, rootARN, subARN, 5)
	var serials []string
	for i := range 2 {
		csr := testenv.NewLeaf(f, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("leaf%d.example", i)}}).CSRPEM
		arn := env.Issue(f, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr})
		serials = append(serials, arn[strings.LastIndex(arn, "/")+1:])
	}
	if _, err := env.Client.RevokeCertificate(f.Context(), &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &rootARN,
		CertificateSerial: aws.String(serials[1]), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		f.Fatal(err)
	}
	caID = rootARN[strings.LastIndex(rootARN, "/")+1:]
	db := env.DB(f)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var unwitnessed int
		if err := db.QueryRow(`SELECT COUNT(*) FROM key_use_logs l LEFT JOIN witnessing w ON w.ca_id = l.ca_id
			WHERE l.ca_id = ? AND (w.note IS NULL OR w.size <> l.size)`, caID).Scan(&unwitnessed); err != nil {
			f.Fatal(err)
		}
		if unwitnessed == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.Fatal("the witness did not cosign the root's log to its end")
		}
	}
	env.Stop(f)
	if _, err := db.Exec(`UPDATE witnessing SET answered = 1000000 WHERE ca_id = ?`, caID); err != nil {
		f.Fatal(err)
	}
	id := uuid.NewString()
	if _, err := db.Exec(`INSERT INTO audit_reports (id, ca_id, account_id, bucket, s3_key, format, status, created_at, log_size)
		SELECT ?, ca_id, ?, 'reports', ?, 'CSV', 'CREATING', 1, size FROM key_use_logs WHERE ca_id = ?`,
		id, app.DefaultAccountID, openpca.AuditReportKey(caID, id, openpca.AuditReportResponseFormatCsv), caID); err != nil {
		f.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO buckets (name, account_id, created_at) VALUES ('reports', ?, 1)`, app.DefaultAccountID); err != nil {
		f.Fatal(err)
	}
	path = filepath.Join(f.TempDir(), "tables.db")
	if _, err := db.Exec(`VACUUM INTO ?`, path); err != nil {
		f.Fatal(err)
	}
	// The server's audit key, sealed in the tables with the master key.
	mk, err := os.ReadFile(filepath.Join(env.Config.DataDir, "master.key"))
	if err != nil {
		f.Fatal(err)
	}
	key, err := seal.ParseKey(string(mk))
	if err != nil {
		f.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		f.Fatal(err)
	}
	store, err := sqlite.Open(f.Context(), path, sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	if auditKey, _, err = auditlog.LoadKey(f.Context(), store, auditlog.Keys{Sealer: sealer}); err != nil {
		f.Fatal(err)
	}
	return path, caID, auditKey, verifierKey, witnessKey
}

// cell is a value in a table: its table, column, and the WHERE clause
// and arguments of its row, and the table's columns.
type cell struct {
	table, column, where string
	key                  []any
	columns              []string
}

// tableCells lists every cell of the tables a report reads, and the
// distinct values they hold.
func tableCells(f *testing.F, path string) ([]cell, []poolValue) {
	db, err := sql.Open("sqlite", sqliteuri.File(path))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	var cells []cell
	var pool []poolValue
	seen := map[string]bool{}
	for _, table := range []string{"certificate_authorities", "certificates", "key_use_logs", "key_uses", "audit_reports", "buckets", "witnessing"} {
		rows, err := db.Query(`SELECT name, pk FROM pragma_table_info(?) ORDER BY pk`, table)
		if err != nil {
			f.Fatal(err)
		}
		var columns, keys []string
		for rows.Next() {
			var name string
			var pk int
			if err := rows.Scan(&name, &pk); err != nil {
				f.Fatal(err)
			}
			if columns = append(columns, name); pk > 0 {
				keys = append(keys, name+" = ?")
			}
		}
		if err := rows.Err(); err != nil || len(keys) == 0 {
			f.Fatalf("table %s: %v, primary key %v", table, err, keys)
		}
		rows, err = db.Query(`SELECT ` + strings.Join(columns, ", ") + ` FROM ` + table)
		if err != nil {
			f.Fatal(err)
		}
		for rows.Next() {
			values := make([]any, len(columns))
			ptrs := make([]any, len(columns))
			for i := range values {
				ptrs[i] = &values[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				f.Fatal(err)
			}
			// The primary key's columns come last (ORDER BY pk, 0 first).
			key := values[len(columns)-len(keys):]
			for i, column := range columns {
				cells = append(cells, cell{table: table, column: column, where: strings.Join(keys, " AND "), key: key, columns: columns})
				if v := (poolValue{values[i]}); !seen[fmt.Sprintf("%T %v", v.v, v.v)] {
					seen[fmt.Sprintf("%T %v", v.v, v.v)] = true
					pool = append(pool, v)
				}
			}
		}
		if err := rows.Err(); err != nil {
			f.Fatal(err)
		}
	}
	return cells, pool
}

// poolValue is a value some cell of the tables holds.
type poolValue struct{ v any }

// text is the value as a record would write it.
func (p poolValue) text() string {
	switch v := p.v.(type) {
	case nil:
		return ""
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// fuzzBytes is the fuzzer's input, read a little at a time: past its
// end, it reads zeros.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

// index reads an index below n.
func (b *fuzzBytes) index(n int) int {
	return (int(b.byte()) | int(b.byte())<<8) % n
}

// bytes reads up to 64 bytes.
func (b *fuzzBytes) bytes() []byte {
	n := min(int(b.byte())%65, len(*b))
	v := (*b)[:n]
	*b = (*b)[n:]
	return v
}

// The kinds of value a cell is set to.
const (
	valueNull = iota
	valuePool // a value another cell holds
	valueText
	valueBlob
	valueInteger
	valueExpr // the cell's own value changed (SQL on it)
	valueKinds
)

// exprs change a cell's own value: ? is the column. The last makes it
// 3,000 bytes longer, past what a failure says.
var exprs = []string{"? + 1", "? - 1", "-?", "upper(?)", "CAST(? AS TEXT)", "CAST(? AS BLOB)", "? || 'x'", "' ' || ?", "? * 1000000", "substr(?, 2)",
	"? || hex(zeroblob(1500))"}

// value reads a value for column, as SQL and its arguments.
func (b *fuzzBytes) value(pool []poolValue, column string) (string, []any) {
	switch b.byte() % valueKinds {
	case valueNull:
		return "NULL", nil
	case valuePool:
		return "?", []any{pool[b.index(len(pool))].v}
	case valueText:
		return "?", []any{string(b.bytes())}
	case valueBlob:
		return "?", []any{b.bytes()}
	case valueInteger:
		var n [8]byte
		copy(n[:], b.bytes())
		return "?", []any{int64(binary.LittleEndian.Uint64(n[:]))}
	default:
		return strings.ReplaceAll(exprs[b.index(len(exprs))], "?", column), nil
	}
}

// text reads a value to write into a record.
func (b *fuzzBytes) text(pool []poolValue) string {
	if b.byte()%2 == 0 {
		return pool[b.index(len(pool))].text()
	}
	return string(b.bytes())
}
