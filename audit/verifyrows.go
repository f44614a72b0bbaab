package audit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// What Verify keeps of a log is what sizes its memory at ten million
// certificates: 64 bytes a revocation, and, when a report differs from
// what its log says, 64 bytes an issuance (compareRows). Kept as strings
// in maps, they took about 480 and 1,360 bytes of heap each.

// revocations are the revocations of a log, by serial.
type revocations struct {
	list []logRevocation // by serial, then entry, once sorted
}

// logRevocation is a certificate's revocation in the log.
type logRevocation struct {
	serial [2 * openpca.MaxSerialOctets]byte // hex, as the record has it (checkRecord bounds it)
	size   uint8                             // of serial
	reason uint8                             // in revocationReasons
	issued bool                              // its issuance came before it in the log
	seq    int64
	at     int64 // Unix seconds: a report shows times to the second
}

// revocationReasons are the reasons a revocation may give, which
// checkRecord checks.
var revocationReasons = openpca.RevocationReason("").Values()

// add keeps a revocation that checkRecord has checked: its serial fits,
// and its reason is one of revocationReasons.
func (rs *revocations) add(seq int64, serial string, at time.Time, reason string) {
	r := logRevocation{seq: seq, at: at.Unix()}
	r.size = uint8(copy(r.serial[:], serial))
	r.reason = uint8(slices.Index(revocationReasons, openpca.RevocationReason(reason)))
	rs.list = append(rs.list, r)
}

func (r *logRevocation) hex() string { return string(r.key()) }

func (r *logRevocation) key() []byte { return r.serial[:r.size] }

// sort orders the revocations by serial, and drops each that revokes a
// certificate revoked before: a report shows one revocation. It calls
// again with the first it drops, in the log's order: at most
// maxProblems+1 of them.
func (rs *revocations) sort(again func(r, first logRevocation)) {
	slices.SortFunc(rs.list, func(a, b logRevocation) int {
		return cmp.Or(bytes.Compare(a.key(), b.key()), cmp.Compare(a.seq, b.seq))
	})
	// Of those dropped, the first that can be said (v.problem) are kept,
	// and no more: a log may revoke one certificate at every entry.
	type pair struct{ r, first logRevocation }
	var dropped []pair
	byEntry := func(a, b pair) int { return cmp.Compare(a.r.seq, b.r.seq) }
	kept := rs.list[:0]
	for _, r := range rs.list {
		if n := len(kept); n > 0 && bytes.Equal(kept[n-1].key(), r.key()) {
			if dropped = append(dropped, pair{r, kept[n-1]}); len(dropped) > 2*maxProblems {
				slices.SortFunc(dropped, byEntry)
				dropped = dropped[:maxProblems+1]
			}
			continue
		}
		kept = append(kept, r)
	}
	rs.list = slices.Clip(kept)
	slices.SortFunc(dropped, byEntry)
	for _, d := range dropped[:min(len(dropped), maxProblems+1)] {
		again(d.r, d.first)
	}
}

// find returns the revocation of serial, or nil.
func (rs *revocations) find(serial string) *logRevocation {
	if i := rs.index(serial); i >= 0 {
		return &rs.list[i]
	}
	return nil
}

// index returns the index in list of the revocation of serial, or -1.
func (rs *revocations) index(serial string) int {
	// string(key) in a comparison is not a copy.
	i := sort.Search(len(rs.list), func(i int) bool { return string(rs.list[i].key()) >= serial })
	if i == len(rs.list) || string(rs.list[i].key()) != serial {
		return -1
	}
	return i
}

// revoke sets c's revocation to r's.
func (r *logRevocation) revoke(c *openpca.Certificate) {
	c.RevokedAt = time.Unix(r.at, 0).UTC()
	c.RevocationReason = revocationReasons[r.reason]
}

// rowDigest is what compareRows keeps of a row the log says there should
// be, to compare with the report's: its fields, each after its length, so
// that no two rows have the same.
func rowDigest(row []string) [sha256.Size]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range row {
		h.Write(binary.AppendUvarint(n[:0], uint64(len(f))))
		io.WriteString(h, f)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// serialKey is what compareRows finds an issuance by: its row's serial,
// hashed to 16 bytes. Two serials with one key could only make a problem
// name the wrong certificate: the row found is compared whole, serial
// included.
func serialKey(serial string) [16]byte {
	sum := sha256.Sum256([]byte(serial))
	return [16]byte(sum[:16])
}

// quotedRow is what compareRows keeps of a row it may quote: each field
// cut to what a problem shows of it (Printable cuts there), and the digest
// of the whole field, to compare by. A thousand rows of a megabyte, all
// different from the log, are then 12 MB kept, not a gigabyte.
type quotedRow []quotedField

type quotedField struct {
	shown string
	sum   [sha256.Size]byte
}

func quoteRow(row []string) quotedRow {
	q := make(quotedRow, len(row))
	for f, v := range row {
		q[f].shown = shownText(v)
		q[f].sum = sha256.Sum256([]byte(v))
	}
	return q
}

// shownText is s cut to what a problem shows of it, in a string of its
// own: a cut of s would keep all of s, and a CSV row's fields share one.
func shownText(s string) string {
	cut, _ := openpca.CutText(s, maxDetail)
	return strings.Clone(cut)
}

// rowProblem is a problem with a row of the report, said once the proof
// file has been read again for what the log says of the issuance it is
// compared with.
type rowProblem struct {
	check  string
	row    int
	detail string    // the problem, or the row's serial if it differs from its issuance
	i      int       // the issuance the row differs from; -1 if detail says all
	got    quotedRow // the row, if it differs from its issuance
}

// compareRows reads the report row by row and says how it differs from
// the log's issuances. Of each issuance it keeps 64 bytes: the key of its
// serial, a digest of the row the log says it should have, and which row
// of the report has it. For what its problems quote of the log, it reads
// the proof file once more.
func (v *Verification) compareRows(report io.Reader, proof io.ReadSeeker, checkpoint *auditlog.Checkpoint, format openpca.AuditReportResponseFormat, revs *revocations) {
	type issuance struct {
		digest [sha256.Size]byte // of its row
		row    int               // of the report that has it; 0 if none, -1 if its record is broken
	}
	type key struct {
		serial [16]byte
		i      int // in issued
	}
	issued := make([]issuance, 0, v.Certificates)
	index := make([]key, 0, v.Certificates)
	var row []string
	err := expectedRows(proof, checkpoint, revs, func(seq int64, c *openpca.Certificate, err error) error {
		if err != nil {
			v.problem("log", 0, "entry %d: %v", seq, err)
			issued = append(issued, issuance{row: -1})
			return nil
		}
		row = expectedRow(c, format, row)
		index = append(index, key{serialKey(row[serialField]), len(issued)})
		issued = append(issued, issuance{digest: rowDigest(row)})
		return nil
	})
	if err != nil {
		// Rows compared with records that are not the checkpoint's log
		// would say nothing of the report.
		v.problem("log", 0, "%v", err)
		return
	}
	// With a serial logged twice, the later issuance is the one a row is
	// compared with.
	slices.SortFunc(index, func(a, b key) int {
		return cmp.Or(bytes.Compare(a.serial[:], b.serial[:]), cmp.Compare(b.i, a.i))
	})
	find := func(serial string) (int, bool) {
		k, ok := slices.BinarySearchFunc(index, serialKey(serial), func(e key, s [16]byte) int { return bytes.Compare(e.serial[:], s[:]) })
		if !ok {
			return 0, false
		}
		return index[k].i, true
	}

	var problems []rowProblem // each says one problem at least; one past maxProblems is enough
	add := func(p rowProblem) {
		if len(problems) <= maxProblems {
			problems = append(problems, p)
		}
	}
	last := -1
	err = readRows(report, format, func(n int, got []string) {
		v.Rows = n
		i, ok := find(got[serialField])
		serial := shownText(got[serialField])
		switch {
		case !ok:
			add(rowProblem{check: "row", row: n, i: -1, detail: fmt.Sprintf("certificate %s is not in the log: the row was added, or its serial changed", serial)})
			return
		case issued[i].row != 0:
			add(rowProblem{check: "row", row: n, i: -1, detail: fmt.Sprintf("certificate %s is listed again (first on row %d)", serial, issued[i].row)})
			return
		}
		issued[i].row = n
		if rowDigest(got) != issued[i].digest && len(problems) <= maxProblems {
			add(rowProblem{check: "row", row: n, i: i, detail: serial, got: quoteRow(got)})
		}
		if i < last {
			add(rowProblem{check: "order", row: n, i: -1, detail: fmt.Sprintf("certificate %s is out of order: the log has it before the row above it", serial)})
		}
		last = max(last, i)
	})
	if err != nil {
		add(rowProblem{check: "input", i: -1, detail: "the report: " + err.Error()})
	}

	// What the log says of the issuances the problems name: the rows of
	// those rows differ from, and those missing from the report.
	type logged struct {
		seq int64
		row quotedRow
	}
	quote := map[int]*logged{}
	for _, p := range problems {
		if p.i >= 0 {
			quote[p.i] = nil
		}
	}
	// Only so many can be said (v.problem).
	for i, shown := 0, len(problems); i < len(issued) && shown <= maxProblems; i++ {
		if issued[i].row == 0 {
			quote[i] = nil
			shown++
		}
	}
	if len(quote) > 0 {
		if err := rewind(proof); err != nil {
			v.problem("input", 0, "%v", err)
			return
		}
		i := 0
		err := expectedRows(proof, checkpoint, revs, func(seq int64, c *openpca.Certificate, err error) error {
			if _, ok := quote[i]; ok && err == nil {
				quote[i] = &logged{seq: seq, row: quoteRow(expectedRow(c, format, nil))}
			}
			i++
			return nil
		})
		if err != nil {
			// The log read the third time is not the one the rows were
			// compared with: what it says of them would not be the
			// checkpoint's.
			v.problem("log", 0, "%v", err)
			return
		}
	}
	for _, p := range problems {
		if p.i < 0 {
			v.problem(p.check, p.row, "%s", p.detail)
			continue
		}
		logged := quote[p.i].row
		for f, name := range Fields {
			if p.got[f].sum != logged[f].sum {
				v.problem(p.check, p.row, "certificate %s: %s is %q, the log says %q", p.detail, name, p.got[f].shown, logged[f].shown)
			}
		}
	}
	for i, is := range issued {
		if l := quote[i]; is.row == 0 && l != nil {
			v.problem("missing", 0, "certificate %s (log entry %d, issued %s) is missing from the report", l.row[serialField].shown, l.seq, l.row[issuedAtField].shown)
		}
	}
}

// expectedRow is the row of c, as a report of the format holds it.
func expectedRow(c *openpca.Certificate, format openpca.AuditReportResponseFormat, out []string) []string {
	row := values(c, out)
	if format == openpca.AuditReportResponseFormatCsv {
		// A CSV report keeps no carriage return within a field:
		// encoding/csv drops them when it writes with CRLF line ends
		// (RFC 4180's), and reads a CRLF within a field as LF. A subject
		// can hold one.
		for f := range row {
			row[f] = strings.ReplaceAll(row[f], "\r", "")
		}
	}
	return row
}
