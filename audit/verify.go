package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"filippo.io/torchwood"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// Verification is what Verify found.
type Verification struct {
	Header *auditlog.ProofHeader // nil if the proof file has none
	// Checkpoint is the proof file's checkpoint, once its signature holds.
	Checkpoint *auditlog.Checkpoint
	// Extends is the checkpoint of an earlier report that CheckExtends
	// found the log extends.
	Extends *auditlog.Checkpoint
	// Statement says which report the proof file is of, once its
	// signature holds and it agrees with the header; nil when the proof
	// file has none (versions before it wrote none).
	Statement *auditlog.ReportStatement
	// Witnessed is what CheckWitnesses found the witnesses cosigned.
	Witnessed *Witnessed
	// Log hashes the CA's log tree from the proof file's records.
	Log auditlog.Hasher
	// logHolds is whether the records are the checkpoint's log.
	logHolds     bool
	Rows         int // of the report
	Certificates int // issuances among the log entries
	Problems     []Problem
	// Notes are what a reader should know that proves nothing wrong:
	// entries dated after their checkpoint (a server's clock ahead).
	Notes []string
}

// Problem is one check that failed.
type Problem struct {
	Check  string // what was checked: input, checkpoint, log, row, missing, order
	Row    int    // the report's row, counted from 1 after any header; 0 if none
	Detail string
}

func (p Problem) String() string {
	if p.Row > 0 {
		return fmt.Sprintf("row %d: %s", p.Row, Printable(p.Detail))
	}
	return fmt.Sprintf("%s: %s", p.Check, Printable(p.Detail))
}

func (v *Verification) problem(check string, row int, format string, args ...any) {
	switch {
	case len(v.Problems) < maxProblems:
		v.Problems = append(v.Problems, Problem{Check: check, Row: row, Detail: Printable(fmt.Sprintf(format, args...))})
	case len(v.Problems) == maxProblems:
		v.Problems = append(v.Problems, Problem{Check: "more", Detail: fmt.Sprintf("more problems than the %d above; fix those first", maxProblems)})
	}
}

// Verify checks an audit report against its proof file, offline, with the
// server's audit public key (a note verifier key):
//
//   - the checkpoint is signed by that key, and is of the report's CA;
//   - the proof file's records are the checkpoint's log: as many as it
//     says, hashing to its root, each written as a server writes records,
//     about the report's CA (entries dated past the checkpoint are noted);
//   - every row of the report is an issuance in that log, field for field
//     (with its revocation if the log has one), in the log's order, once;
//     and every issuance in the log has its row; each revocation in the
//     log is of a certificate issued before it, and the only one;
//   - what each CRL in the log lists is what the log says it should
//     (checkCRLs).
//
// Whatever fails is listed in Problems; the report is verified when there
// is none. It reads the proof file twice (three times if the log has
// CRLs) and the report once, keeping no more than the log's revocations
// in memory (twice that with CRLs), unless the report differs
// from what the log says it should be: then it reads both once more, and
// keeps 64 bytes of each issuance too, and the proof file a fourth time
// for what the problems quote of it. It reads no record of a proof file
// whose checkpoint is not signed by the key, and no more records than the
// checkpoint has; it compares no row with records that do not hash to the
// checkpoint's root, and what it keeps and says of them is bounded.
func Verify(report, proof io.ReadSeeker, verifierKey string) *Verification {
	v := &Verification{}
	var revs revocations
	var otherCA int64 = -1 // the first entry of another CA than the report's
	var latest time.Time   // a record may be dated at most
	var records recordParser
	future := 0 // entries dated after the checkpoint
	crls, imports := 0, 0
	var (
		lastImport   openpca.KeyUseRecord
		lastImportAt int64
		order        importOrder
	)
	h, err := auditlog.ReadProof(proof, func(h *auditlog.ProofHeader) (int64, error) {
		v.Header = h
		if _, err := openpca.ParseCAARN(h.CertificateAuthorityArn); err != nil {
			v.problem("checkpoint", 0, "the proof file is of %q: %v", h.CertificateAuthorityArn, err)
			return 0, errStop
		}
		if !v.openCheckpoint(verifierKey) {
			return 0, errStop
		}
		latest = v.Checkpoint.Time.Add(recordClockSkew)
		return v.Checkpoint.Size, nil
	}, func(seq int64, record []byte) error {
		v.Log.Add(record)
		var r openpca.KeyUseRecord
		// What is kept of a record until the log is known to be the
		// checkpoint's (the records hash to its root) is bounded: the
		// first entry of another CA, and revocations of serials of 20
		// octets at most, for reasons the API has (checkRecord).
		at, err := checkRecord(&records, record, &r, v.Header.CertificateAuthorityArn)
		var other *otherCAError
		switch {
		case errors.As(err, &other):
			if otherCA < 0 {
				otherCA = seq
				v.problem("log", 0, "entry %d %v", seq, err)
			}
			return nil
		case err != nil:
			v.problem("log", 0, "entry %d %v", seq, err)
			return nil
		case at.After(latest):
			// The log's times are its servers' clocks: a clock ahead is
			// not tampering, but the reader should know.
			future++
			if future == 1 {
				v.Notes = append(v.Notes, fmt.Sprintf("entry %d is dated %s, after the checkpoint that covers it was signed (%s): the clock of the server that recorded it ran ahead, or the time is not the server's", seq, r.At, v.Checkpoint.Time.Format(time.RFC3339)))
			}
		}
		switch r.Kind {
		case openpca.KeyUseIssue:
			v.Certificates++
		case openpca.KeyUseRevoke:
			revs.add(seq, r.Serial, at, r.RevocationReason)
		case openpca.KeyUseCRL:
			crls++
		case openpca.KeyUseImport:
			if problem := order.add(seq, r.RequestedBy); problem != "" {
				v.problem("log", 0, "entry %d %s", seq, problem)
			}
			imports++
			lastImport, lastImportAt = r, seq
		}
		return nil
	})
	if imports > 0 {
		chain := "without a chain"
		if lastImport.ChainSHA256 != "" {
			chain = "with a chain of SHA-256 " + lastImport.ChainSHA256
		}
		// The proof file's words, which may be anyone's: quoted as a
		// problem's are.
		v.Notes = append(v.Notes, Printable(fmt.Sprintf("the log imports the CA's certificate %d times; the last import, entry %d, by %s at %s, is of the certificate of SHA-256 %s, %s, valid from %s to %s: compare them with those you hold for the CA",
			imports, lastImportAt, lastImport.RequestedBy, lastImport.At, lastImport.CertificateSHA256, chain, lastImport.NotBefore, lastImport.NotAfter)))
	}
	revs.sort(func(r, first logRevocation) {
		v.problem("log", 0, "entry %d revokes the certificate %s again (first at entry %d): a report shows one revocation", r.seq, r.hex(), first.seq)
	})
	if future > 1 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d entries in all are dated after the checkpoint", future))
	}
	switch {
	case errors.Is(err, auditlog.ErrTooManyRecords):
		v.problem("log", 0, "the proof file has more log entries than the checkpoint's %d: entries were added", v.Checkpoint.Size)
	case err != nil && !errors.Is(err, errStop):
		v.problem("log", 0, "%v", err)
	}
	if h == nil || v.Checkpoint == nil {
		return v
	}
	// Of the header and the key alone: which report the proof file is of.
	v.checkStatement(verifierKey)
	if err != nil || !v.checkLog() {
		// The entries are not the checkpoint's log: whatever they say of
		// the report is not the server's word, and is not compared.
		return v
	}
	v.logHolds = true
	format := openpca.AuditReportResponseFormat(h.ReportFormat)
	if err := rewind(report, proof); err != nil {
		v.problem("input", 0, "%v", err)
		return v
	}
	// The report the log says there should be, written as a server writes
	// it, is the report byte for byte, unless something is amiss: only
	// then does the report need reading row by row, to say what.
	same, err := sameReport(report, proof, v.Checkpoint, format, &revs)
	if err != nil || !same {
		if err := rewind(report, proof); err != nil {
			v.problem("input", 0, "%v", err)
			return v
		}
		v.compareRows(report, proof, v.Checkpoint, format, &revs)
	} else {
		v.Rows = v.Certificates
	}
	for _, r := range revs.list {
		if !r.issued {
			v.problem("log", 0, "entry %d revokes the certificate %s, which the log has not issued before it", r.seq, r.hex())
		}
	}
	if crls > 0 {
		if err := rewind(proof); err != nil {
			v.problem("input", 0, "%v", err)
			return v
		}
		v.checkCRLs(proof, v.Checkpoint, &revs)
	}
	return v
}

// checkRecord decodes record, an entry of the log of the CA of caARN,
// into r, and checks it on its own, as verify checks each record of a
// proof file and a report each record a store keeps: it is one a server
// writes (recordParser), of that CA (else an *otherCAError), at a time
// that parses, and a revocation is of a serial of 20 octets at most, for
// a reason the API has. It returns the record's time. Its errors say
// what is wrong, to follow "entry N".
func checkRecord(records *recordParser, record []byte, r *openpca.KeyUseRecord, caARN string) (time.Time, error) {
	if err := records.parse(record, r); err != nil {
		return time.Time{}, fmt.Errorf("is not a key-use record a server writes: %w", err)
	}
	if r.CertificateAuth != caARN {
		return time.Time{}, &otherCAError{of: r.CertificateAuth, want: caARN}
	}
	at, err := time.Parse(time.RFC3339Nano, r.At)
	if err != nil {
		return time.Time{}, fmt.Errorf("has the time %q", r.At)
	}
	if r.Kind == openpca.KeyUseRevoke && (len(r.Serial) > 2*openpca.MaxSerialOctets ||
		!slices.Contains(openpca.RevocationReason("").Values(), openpca.RevocationReason(r.RevocationReason))) {
		return time.Time{}, fmt.Errorf("revokes a certificate of a serial longer than %d octets, or for a reason the API does not have", openpca.MaxSerialOctets)
	}
	return at, nil
}

// otherCAError is checkRecord's error for a record of another CA.
type otherCAError struct{ of, want string }

func (e *otherCAError) Error() string {
	return fmt.Sprintf("is of the CA %s, not of the report's %s", e.of, e.want)
}

// maxDetail bounds what a problem or note quotes of the files, in bytes:
// they are anyone's, and a field of a megabyte in each of a thousand
// problems would be a gigabyte to keep and print.
const maxDetail = 1024

// Printable is s as a terminal may show it: its control and format
// characters (escape sequences that move the cursor or hide text, and
// the marks that reverse it) written as Go escapes, as are bytes that are
// not UTF-8 (0x9b is a terminal's CSI in an 8-bit locale), and cut at
// maxDetail bytes. What a verification says quotes the files it read,
// which are anyone's.
func Printable(s string) string {
	cut := len(s) > maxDetail
	if cut {
		s = s[:maxDetail]
	}
	shown := func(r rune) bool { return r != utf8.RuneError && (unicode.IsPrint(r) || r == ' ') }
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !shown(r) }) < 0 {
		if cut {
			s += "…"
		}
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case shown(r):
			b.WriteString(s[:size])
		case r == utf8.RuneError && size == 1:
			if cut && len(s) < utf8.UTFMax {
				s = s[size:] // a character the cut split
				continue
			}
			fmt.Fprintf(&b, `\x%02x`, s[0])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

// errStop stops the reading of a proof file whose records cannot be
// checked: Problems say why.
var errStop = errors.New("stop")

// recordClockSkew is how much later than its checkpoint's time a record
// may be dated without a note: the server that signs a checkpoint may not
// be the one that recorded its last entries, and their clocks differ a
// little; and a checkpoint's time is to the second.
const recordClockSkew = 5 * time.Minute

// maxProblems bounds the problems a Verification lists: a report of a
// million forged rows has a million, and its auditor needs the first.
const maxProblems = 1000

func rewind(files ...io.Seeker) error {
	for _, f := range files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("reading a file again: %w", err)
		}
	}
	return nil
}

// rereadProof reads the proof file's records again, after Verify read
// them, calling fn with each once tree has it. What this read gives is
// hashed too, and must be the checkpoint's log, as the first read was (a
// file on storage someone else controls, a network file system or a
// mounted bucket, can change between two reads); if it is not, it returns
// errProofChanged, after fn has seen what it read.
func rereadProof(proof io.Reader, checkpoint *auditlog.Checkpoint, fn func(seq int64, record []byte, tree *auditlog.Hasher) error) error {
	var tree auditlog.Hasher
	_, err := auditlog.ReadProof(proof, func(*auditlog.ProofHeader) (int64, error) { return checkpoint.Size, nil }, func(seq int64, record []byte) error {
		tree.Add(record)
		return fn(seq, record, &tree)
	})
	if err == nil && (tree.Size() != checkpoint.Size || tree.Root() != checkpoint.Root) {
		err = errProofChanged
	}
	return err
}

// expectedRows calls fn with each issuance of the proof file's log as the
// report's row should show it, in the log's order, with its revocation,
// as it reads the file again (rereadProof).
func expectedRows(proof io.Reader, checkpoint *auditlog.Checkpoint, revs *revocations, fn func(seq int64, c *openpca.Certificate, err error) error) error {
	return rereadProof(proof, checkpoint, func(seq int64, record []byte, _ *auditlog.Hasher) error {
		var r openpca.KeyUseRecord
		if decodeRecord(record, &r) != nil || r.Kind != openpca.KeyUseIssue {
			return nil
		}
		c, err := certificateOf(&r)
		if rev := revs.find(r.Serial); rev != nil && rev.seq > seq {
			rev.issued = true
			if err == nil {
				rev.revoke(c)
			}
		}
		return fn(seq, c, err)
	})
}

// errProofChanged is rereadProof's error for a proof file that read
// otherwise the second time.
var errProofChanged = errors.New("the proof file changed while it was read: its log entries, read again, are not the checkpoint's")

// sameReport reports whether the report is byte for byte the one a server
// writes of the log.
func sameReport(report, proof io.Reader, checkpoint *auditlog.Checkpoint, format openpca.AuditReportResponseFormat, revs *revocations) (bool, error) {
	cmp := &comparer{r: bufio.NewReaderSize(report, 64<<10), same: true}
	w, err := NewWriter(format, cmp)
	if err != nil {
		return false, err
	}
	errDiffers := errors.New("the report differs")
	err = expectedRows(proof, checkpoint, revs, func(_ int64, c *openpca.Certificate, err error) error {
		if err != nil {
			return err
		}
		if err := w.Write(c); err != nil {
			return err
		}
		if !cmp.same {
			return errDiffers
		}
		return nil
	})
	if err != nil {
		return false, nil
	}
	if err := w.Close(); err != nil || !cmp.same {
		return false, err
	}
	_, err = cmp.r.ReadByte()
	return errors.Is(err, io.EOF), nil
}

// comparer is a writer that compares what it is written with what r
// reads next.
type comparer struct {
	r    *bufio.Reader
	buf  []byte
	same bool
}

func (c *comparer) Write(p []byte) (int, error) {
	if !c.same {
		return len(p), nil
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.r, b); err != nil || !bytes.Equal(b, p) {
		c.same = false
	}
	return len(p), nil
}

// openCheckpoint checks the proof file's checkpoint against the key and
// the header's CA, and reports whether it holds.
func (v *Verification) openCheckpoint(verifierKey string) bool {
	c, err := auditlog.OpenCheckpoint([]byte(v.Header.Checkpoint), verifierKey)
	if err != nil {
		v.problem("checkpoint", 0, "%v", err)
		return false
	}
	if want := auditlog.Origin(v.Header.CertificateAuthorityArn); c.Origin != want {
		v.problem("checkpoint", 0, "the checkpoint is of the log %q, not %q", c.Origin, want)
		return false
	}
	v.Checkpoint = &c
	return true
}

// checkLog checks the proof file's records against its checkpoint, and
// reports whether they are its log.
func (v *Verification) checkLog() bool {
	c := v.Checkpoint
	switch n := v.Log.Size(); {
	case n < c.Size:
		v.problem("log", 0, "the proof file has %d log entries, the checkpoint %d: entries were removed (the log was truncated)", n, c.Size)
	case n > c.Size:
		v.problem("log", 0, "the proof file has %d log entries, the checkpoint %d: entries were added", n, c.Size)
	case v.Log.Root() != c.Root:
		v.problem("log", 0, "the log entries do not hash to the checkpoint's root: an entry was changed, added, removed or reordered")
	default:
		return true
	}
	return false
}

// checkStatement checks that the report statement, if the proof file has
// one, is signed by the key and names what the header does.
func (v *Verification) checkStatement(verifierKey string) {
	if v.Header.Report == "" {
		return
	}
	s, err := auditlog.OpenReportStatement([]byte(v.Header.Report), verifierKey)
	if err != nil {
		v.problem("report", 0, "%v", err)
		return
	}
	if !s.Of(v.Header) {
		v.problem("report", 0, "the signed statement is of report %s (key %s, %s, and another checkpoint or the same), not of the report the header names, %s (key %s, %s)",
			s.ID, s.S3Key, s.Format, v.Header.AuditReportID, v.Header.S3Key, v.Header.ReportFormat)
		return
	}
	// A server puts a CA's reports under its id: a statement of a report
	// under another CA's is of a report of that CA's log.
	if want := reportFolder + caID(v.Header.CertificateAuthorityArn) + "/" + s.ID + "."; !strings.HasPrefix(s.S3Key, want) {
		v.problem("report", 0, "the report %s is at %s in its bucket, which is not where the reports of %s go (%s...)", s.ID, s.S3Key, v.Header.CertificateAuthorityArn, want)
		return
	}
	v.Statement = &s
}

// Witnessed is the witnessed checkpoint of a report's proof file: how many
// entries the witnesses cosigned of the log, and when each did (by their
// own clocks, in their cosignatures).
type Witnessed struct {
	Size     int64                `json:"size"`
	Cosigned map[string]time.Time `json:"cosigned"` // by witness name
}

// CheckWitnesses checks, beside Verify's checks, that witnesses vouch for
// the report's log: its proof file holds a checkpoint of at least as many
// entries, signed by the server's key (verifierKey) and cosigned by at
// least quorum of witnesses, and a proof that it extends the report's
// checkpoint. A log shown to the witnesses is one history: the server
// could not have shown them another, and this report's, unseen.
//
// With after set (when the auditor asked for the report), the quorum must
// have cosigned at or after it, and the report's checkpoint itself: then
// the log was no longer than the report's when the auditor asked. An
// older report, of a shorter log, however the server dated and named it,
// has older cosignatures, and fresh ones cover more than it does.
func (v *Verification) CheckWitnesses(verifierKey string, witnesses []note.Verifier, quorum int, after time.Time) {
	if v.Header == nil || v.Checkpoint == nil {
		return // Verify has said why
	}
	if v.Header.WitnessedCheckpoint == "" {
		why := ""
		if v.Header.NotWitnessed != "" {
			why = " (the server says: " + v.Header.NotWitnessed + ")"
		}
		v.problem("witness", 0, "the report's log is not witnessed: its proof file has no checkpoint cosigned by witnesses%s", why)
		return
	}
	c, w, err := OpenWitnessed([]byte(v.Header.WitnessedCheckpoint), verifierKey, witnesses, quorum, after)
	switch {
	case err != nil:
		errs := []error{err}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			v.problem("witness", 0, "%v", e)
		}
	case c.Origin != v.Checkpoint.Origin:
		v.problem("witness", 0, "the witnessed checkpoint is of the log %q, not %q", c.Origin, v.Checkpoint.Origin)
	case c.Size < v.Checkpoint.Size:
		v.problem("witness", 0, "the witnessed checkpoint has %d entries, fewer than the report's %d", c.Size, v.Checkpoint.Size)
	case c.Size > v.Checkpoint.Size && !after.IsZero():
		v.problem("witness", 0, "the witnesses cosigned %d entries of the log, past the report's %d: the report leaves out entries that may be older than %s (reports of this version are of the log they had cosigned)",
			c.Size, v.Checkpoint.Size, after.Format(time.RFC3339))
	case c.Size == v.Checkpoint.Size && c.Root != v.Checkpoint.Root,
		c.Size > v.Checkpoint.Size && tlog.CheckTree(v.Header.WitnessProof, c.Size, c.Root, v.Checkpoint.Size, v.Checkpoint.Root) != nil:
		v.problem("witness", 0, "the witnessed log (%d entries) does not extend the report's (%d entries): the server showed the witnesses another history", c.Size, v.Checkpoint.Size)
	default:
		v.Witnessed = w
	}
}

// SplitView says why a quorum of n witnesses lets two histories of one log
// both pass as witnessed, or "" if it does not (or there are none). A
// witness cosigns one history of a log, so two histories need two
// disjoint sets of witnesses, each a quorum: possible only if a quorum is
// half the witnesses or fewer.
func SplitView(quorum, n int) string {
	if n == 0 || 2*quorum > n {
		return ""
	}
	return fmt.Sprintf("a quorum of %d of %d witnesses: %d could cosign one history of the log and %d others another, and both would pass as witnessed", quorum, n, quorum, quorum)
}

// OpenWitnessed opens a witnessed checkpoint: a checkpoint signed by the
// server's key (verifierKey) and cosigned by at least quorum of
// witnesses, at or after after if it is set (by the witnesses' clocks, in
// their cosignatures). Witnesses count by name: two keys of one name are
// one witness.
func OpenWitnessed(signed []byte, verifierKey string, witnesses []note.Verifier, quorum int, after time.Time) (auditlog.Checkpoint, *Witnessed, error) {
	server, err := note.NewVerifier(verifierKey)
	if err != nil {
		return auditlog.Checkpoint{}, nil, fmt.Errorf("the server's key: %v", err)
	}
	n, err := auditlog.OpenNote(signed, append([]note.Verifier{server}, witnesses...)...)
	if err != nil {
		return auditlog.Checkpoint{}, nil, fmt.Errorf("the witnessed checkpoint: %v", err)
	}
	signedByServer, cosigned := false, map[string]time.Time{}
	for _, sig := range n.Sigs {
		if sig.Hash == server.KeyHash() && sig.Name == server.Name() {
			signedByServer = true
			continue
		}
		at, err := torchwood.CosignatureTimestamp(sig)
		if err != nil {
			return auditlog.Checkpoint{}, nil, fmt.Errorf("the cosignature of %s: %v", sig.Name, err)
		}
		if t := time.Unix(at, 0).UTC(); cosigned[sig.Name].IsZero() || t.After(cosigned[sig.Name]) {
			cosigned[sig.Name] = t
		}
	}
	late := 0
	for _, at := range cosigned {
		if !at.Before(after) {
			late++
		}
	}
	var problems []error
	if !signedByServer {
		problems = append(problems, fmt.Errorf("the witnessed checkpoint is not signed by the key %s", verifierKey))
	}
	switch {
	case len(cosigned) < quorum:
		problems = append(problems, fmt.Errorf("%d of the witnesses given cosigned the log, and %d must", len(cosigned), quorum))
	case late < quorum:
		problems = append(problems, fmt.Errorf("%d of the witnesses given cosigned the log at or after %s, and %d must: the log may have been longer then (an older report made to look new has older cosignatures)",
			late, after.Format(time.RFC3339), quorum))
	}
	c, err := auditlog.ParseCheckpoint(n.Text)
	if err != nil {
		problems = append(problems, fmt.Errorf("the witnessed checkpoint: %v", err))
	}
	if err := errors.Join(problems...); err != nil {
		return auditlog.Checkpoint{}, nil, err
	}
	return c, &Witnessed{Size: c.Size, Cosigned: cosigned}, nil
}

// CheckExtends checks that the report's log extends the log of an earlier
// report of its CA, whose proof file is earlier: its first entries, as
// many as the earlier checkpoint's, hash to that checkpoint's root. An
// auditor who kept an earlier report so finds, with no server's word,
// a log whose history was rewritten since (an entry the earlier report
// had, taken out or changed), where asking the server would take its
// answer, which may differ by who asks. It reads proof, the report's
// proof file that Verify read, again from its start, and whole: what it
// hashes must be the log Verify checked (a file on storage the operator
// controls can change between reads).
func (v *Verification) CheckExtends(proof io.ReadSeeker, earlier io.Reader, verifierKey string) {
	if !v.logHolds {
		return // Verify has said why
	}
	var old auditlog.Checkpoint
	_, err := auditlog.ReadProof(earlier, func(h *auditlog.ProofHeader) (int64, error) {
		c, err := auditlog.OpenCheckpoint([]byte(h.Checkpoint), verifierKey)
		old = c
		return 0, cmp.Or(err, errStop)
	}, nil)
	switch {
	case !errors.Is(err, errStop):
		v.problem("earlier", 0, "the earlier report's proof file: %v", err)
		return
	case old.Origin != v.Checkpoint.Origin:
		v.problem("earlier", 0, "the earlier report is of the log %q, not of this report's, %q", old.Origin, v.Checkpoint.Origin)
		return
	case old.Size > v.Checkpoint.Size:
		v.problem("earlier", 0, "the earlier report's log has %d entries, more than this report's %d: the log was cut short since, or the reports were given the other way round", old.Size, v.Checkpoint.Size)
		return
	}
	if _, err := proof.Seek(0, io.SeekStart); err != nil {
		v.problem("earlier", 0, "%v", err)
		return
	}
	var empty auditlog.Hasher
	prefix := empty.Root()
	err = rereadProof(proof, v.Checkpoint, func(_ int64, _ []byte, tree *auditlog.Hasher) error {
		if tree.Size() == old.Size {
			prefix = tree.Root()
		}
		return nil
	})
	if err != nil {
		v.problem("earlier", 0, "reading the proof file again: %v", err)
		return
	}
	if prefix != old.Root {
		v.problem("earlier", 0, "the log's first %d entries are not the earlier report's: its history was rewritten since", old.Size)
		return
	}
	v.Extends = &old
}

// CheckIdentity checks that the report is the one asked for: of the CA
// caARN if given, and reportID if given, else the report its file
// (reportName, as downloaded) is named for, if it is named as the server
// names reports (<id>.json, <id>.csv). A report kept where its bucket had
// it (audit-report/<CA id>/) must be of that CA. Only a proof file's
// signed statement says which report it is; one without can be none
// asked for, or named for: the header, which nothing signs, may have had
// its statement taken out, and an older report put in the place of the
// one asked for. allowUnsigned takes such a proof file, of a server before
// statements, with a note.
func (v *Verification) CheckIdentity(reportName, reportID, caARN string, allowUnsigned bool) {
	if v.Header == nil {
		return // Verify has said why
	}
	name := strings.ReplaceAll(reportName, "\\", "/")
	base := path.Base(name)
	named := strings.TrimSuffix(base, path.Ext(base))
	if reportID != "" {
		named = reportID
	}
	// An id however written (upper case, in braces) is the id.
	if id, err := uuid.Parse(named); err == nil {
		named = id.String()
	} else if reportID == "" {
		named = ""
	}
	folder := path.Base(path.Dir(name))
	switch {
	case caARN != "" && v.Header.CertificateAuthorityArn != caARN:
		v.problem("report", 0, "the report is of the CA %s, not %s", v.Header.CertificateAuthorityArn, caARN)
	case path.Base(path.Dir(path.Dir(name))) == path.Base(reportFolder) && folder != caID(v.Header.CertificateAuthorityArn):
		v.problem("report", 0, "the report is kept as a report of the CA %s (%s), but it is of %s", folder, path.Dir(name), v.Header.CertificateAuthorityArn)
	}
	if v.Header.Report == "" && v.Checkpoint != nil && (named == "" || allowUnsigned) {
		// What the report is of is then the checkpoint's word alone,
		// which a reader must see (the CA, and its time).
		v.Notes = append(v.Notes, UnsignedIdentityNote)
	}
	switch {
	case named == "":
	case v.Statement == nil && !allowUnsigned:
		v.problem("report", 0, "the proof file does not sign which report it is, so it cannot show that it is report %s (a proof file of a server before 2026-12 signs none: openpca audit verify --allow-unsigned-identity takes it)", named)
	case v.Statement != nil && v.Statement.ID != named:
		v.problem("report", 0, "this is report %s (%s), not report %s: another report was put in its place", v.Statement.ID, v.Statement.S3Key, named)
	}
}

// UnsignedIdentityNote is CheckIdentity's note of a proof file that does
// not sign which report it is.
const UnsignedIdentityNote = "its proof file does not sign which report it is (servers before 2026-12 signed none): another report, older or of another CA the key signs for, could stand in for it; the CA and the checkpoint's time say which log it is of, and how old"

// reportFolder is where a server puts reports in their bucket, each CA's
// in a folder of its id.
const reportFolder = "audit-report/"

// caID is the id at the end of a CA's ARN.
func caID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// Indexes of fields the checks name.
var (
	serialField   = slices.Index(Fields, "serial")
	issuedAtField = slices.Index(Fields, "issuedAt")
)

// certificateOf returns what a report row shows of an issuance record.
func certificateOf(r *openpca.KeyUseRecord) (*openpca.Certificate, error) {
	c := &openpca.Certificate{AccountID: r.Account, ARN: r.CertificateArn, Serial: r.Serial, Subject: r.Subject, TemplateARN: r.TemplateArn}
	var errs []error
	parse := func(s string, layout string, t *time.Time) {
		var err error
		if *t, err = time.Parse(layout, s); err != nil {
			errs = append(errs, err)
		}
	}
	parse(r.NotBefore, time.RFC3339, &c.NotBefore)
	parse(r.NotAfter, time.RFC3339, &c.NotAfter)
	parse(r.At, time.RFC3339Nano, &c.IssuedAt)
	return c, errors.Join(errs...)
}

// maxRow bounds a report's row as read: a server's rows are a few KB at
// most (a CSR, whose subject a row quotes, is 32 KB at most), and what
// the report's reader reads ahead of a row, or the JSON decoder holds of
// it, grows with it.
const maxRow = 1 << 20

// boundedRows reads a report, failing once more than maxRow has been read
// past the end of the last row.
type boundedRows struct {
	r          io.Reader
	read, last int64
}

func (b *boundedRows) Read(p []byte) (int, error) {
	if b.read-b.last > maxRow {
		return 0, fmt.Errorf("a row is longer than %d bytes, which no server writes", maxRow)
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// rowEnds says that a row ended at offset.
func (b *boundedRows) rowEnds(offset int64) { b.last = offset }

// readRow reads a row of a JSON report into vals, in the order of Fields.
// A member given twice is refused: which of the two a reader shows is up
// to the reader, and only one was checked.
func readRow(dec *json.Decoder, index map[string]int, vals []string, seen []bool) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("it is not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		i, ok := index[k]
		switch {
		case !ok:
			return fmt.Errorf("it has the member %q, which reports do not have", k)
		case seen[i]:
			return fmt.Errorf("it has the member %q twice", k)
		}
		if t, err = dec.Token(); err != nil {
			return err
		}
		if vals[i], ok = t.(string); !ok {
			return fmt.Errorf("its member %q is not a string", k)
		}
		seen[i] = true
	}
	_, err := dec.Token() // the object's end
	return err
}

// readRows calls fn with each row of a report, numbered from 1, as its
// values in the order of Fields ("" where JSON has no member).
func readRows(r io.Reader, format openpca.AuditReportResponseFormat, fn func(row int, values []string)) error {
	vals := make([]string, len(Fields))
	br := &boundedRows{r: r}
	switch format {
	case openpca.AuditReportResponseFormatCsv:
		cr := csv.NewReader(br)
		header, err := cr.Read()
		if err != nil {
			return fmt.Errorf("no header line: %w", err)
		}
		if !slices.Equal(header, Fields) {
			return fmt.Errorf("the header line is %q, not %q", header, Fields)
		}
		for row := 1; ; row++ {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			br.rowEnds(cr.InputOffset())
			fn(row, rec)
		}
	case openpca.AuditReportResponseFormatJson:
		dec := json.NewDecoder(br)
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return errors.New("a JSON report is one array of objects")
		}
		index := make(map[string]int, len(Fields))
		for i, f := range Fields {
			index[f] = i
		}
		seen := make([]bool, len(Fields))
		for row := 1; dec.More(); row++ {
			clear(vals)
			clear(seen)
			if err := readRow(dec, index, vals, seen); err != nil {
				return fmt.Errorf("row %d: %w", row, err)
			}
			br.rowEnds(dec.InputOffset())
			fn(row, vals)
		}
		if t, err := dec.Token(); err != nil || t != json.Delim(']') {
			return errors.New("the report's array does not end")
		}
		// What follows the array is no part of the report that verified,
		// but readers that take it (jq, say) would show it.
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errors.New("the report has more after its array")
		}
		return nil
	}
	return fmt.Errorf("unknown report format %q", format)
}
