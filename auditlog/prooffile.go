package auditlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/mod/sumdb/tlog"
)

// A report's proof file sits beside it in the bucket, at the report's key
// plus ProofSuffix. It is JSON Lines, compressed with gzip: a header
// (ProofHeader), then the record of each entry of the CA's log that the
// checkpoint covers, one per line, in order, byte for byte as the tree
// hashes them. A verifier rebuilds the tree from the records, checks that
// its root is the signed checkpoint's, and compares the report's rows with
// the records.
//
// The lines are compressed in runs, each a gzip member of its own: RFC 1952
// lets a file hold several, and gzip, zcat and Go's readers read them as
// one stream. So runs can be compressed side by side and written in order.
// Compressed, a proof file is a twentieth of its lines (41 MB for a million
// issuances, against 814 MB); proof files of earlier versions, at the
// report's key plus LegacyProofSuffix, are the lines alone, and ReadProof
// reads both.
const (
	ProofSuffix       = ".proof.jsonl.gz"
	LegacyProofSuffix = ".proof.jsonl"
	ProofFormat       = "openpca-audit-proof/v1"
	ProofContentType  = "application/gzip"
)

// ProofHeader is the first line of a proof file.
type ProofHeader struct {
	Format                  string `json:"format"` // ProofFormat
	CertificateAuthorityArn string `json:"certificateAuthorityArn"`
	AuditReportID           string `json:"auditReportId"`
	S3Key                   string `json:"s3Key"` // of the report
	// ReportFormat is the report's AuditReportResponseFormat.
	ReportFormat string `json:"auditReportResponseFormat"`
	// Checkpoint is the signed note of the log's first entries that the
	// report covers.
	Checkpoint string `json:"checkpoint"`
	// Report is the signed ReportStatement of the report: which report it
	// is. Proof files of versions before it have none.
	Report string `json:"report,omitempty"`
	// WitnessedCheckpoint, if the server has witnesses, is a checkpoint of
	// the log of at least as many entries, cosigned by witnesses, and
	// WitnessProof proves that it extends Checkpoint (RFC 6962's
	// consistency proof, empty when the two are of one size).
	WitnessedCheckpoint string         `json:"witnessedCheckpoint,omitempty"`
	WitnessProof        tlog.TreeProof `json:"witnessProof,omitempty"`
	// NotWitnessed says why a server with witnesses wrote no
	// WitnessedCheckpoint: too few of them cosigned in time.
	NotWitnessed string `json:"notWitnessed,omitempty"`
}

// A ProofCompressor compresses runs of a proof file's lines, each into a
// gzip member. One is used by one goroutine at a time.
type ProofCompressor struct {
	out bytes.Buffer
	zw  *gzip.Writer
}

// NewProofCompressor returns a ProofCompressor.
func NewProofCompressor() *ProofCompressor {
	c := &ProofCompressor{}
	// Stateless: a writer keeps no tables between calls (70 KB, against
	// 800 KB at BestSpeed, which the collector's target multiplies by
	// five). The lines repeat each other so much that it compresses them
	// as well as the other levels, at 1.2 GB/s here.
	c.zw, _ = gzip.NewWriterLevel(&c.out, gzip.StatelessCompression)
	return c
}

// Compress returns lines as one gzip member, valid until the next call.
func (c *ProofCompressor) Compress(lines []byte) ([]byte, error) {
	c.out.Reset()
	c.zw.Reset(&c.out)
	if _, err := c.zw.Write(lines); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, err
	}
	return c.out.Bytes(), nil
}

// Line returns the header's line of a proof file, its newline included.
func (h *ProofHeader) Line() ([]byte, error) {
	line, err := json.Marshal(h)
	return append(line, '\n'), err
}

// AppendRecordLine appends a record's line of a proof file to b.
func AppendRecordLine(b, record []byte) ([]byte, error) {
	if bytes.IndexByte(record, '\n') >= 0 {
		return b, errors.New("auditlog: a record spans lines")
	}
	b = append(b, record...)
	return append(b, '\n'), nil
}

// ReadProof reads a proof file's header and, if header is not nil, gives
// it to header, which says how many records the file may have (its
// checkpoint's size, once its signature holds) or why none should be
// read; then it calls fn with each record in order. A record is valid
// only until fn returns. The file may be compressed (ProofSuffix) or not
// (LegacyProofSuffix).
//
// A file of more records than header allows fails at the first too many:
// a small file can decompress to billions of lines.
func ReadProof(r io.Reader, header func(*ProofHeader) (int64, error), fn func(seq int64, record []byte) error) (*ProofHeader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("the proof file's gzip header: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("the proof file's header: %w", err)
	}
	var h ProofHeader
	if err := json.Unmarshal(line, &h); err != nil || h.Format != ProofFormat {
		return nil, fmt.Errorf("the proof file's first line is not a header of format %s", ProofFormat)
	}
	limit := int64(MaxTreeSize)
	if header != nil {
		if limit, err = header(&h); err != nil {
			return &h, err
		}
	}
	for seq := int64(0); ; seq++ {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return &h, nil
		}
		if err != nil {
			return &h, fmt.Errorf("the proof file's record %d: %w", seq, err)
		}
		if seq >= limit {
			return &h, fmt.Errorf("%w: more than %d", ErrTooManyRecords, limit)
		}
		if err := fn(seq, line); err != nil {
			return &h, err
		}
	}
}

// ErrTooManyRecords is ReadProof's error for a file with more records than
// its header allows.
var ErrTooManyRecords = errors.New("the proof file has more log entries than its checkpoint")

// gzipMagic begins every gzip member (RFC 1952); a line of JSON cannot.
var gzipMagic = []byte{0x1f, 0x8b}

// maxLine bounds a line of a proof file, so that a file without newlines,
// or one that decompresses to one, cannot take all memory. A record is a
// few hundred bytes; the header, with a witness's consistency proof, a few
// kilobytes.
const maxLine = 1 << 20

// readLine returns the next line without its newline; io.EOF at the end;
// an error for a last line without a newline, which a cut file has, and
// for a line longer than maxLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		full := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(full) > maxLine {
				return nil, fmt.Errorf("a line longer than %d bytes", maxLine)
			}
			line, err = br.ReadSlice('\n')
			full = append(full, line...)
		}
		line = full
	}
	if err != nil {
		return nil, cut(line, err)
	}
	return line[:len(line)-1], nil
}

// cut names the errors of a file that ends too soon: within a line, or,
// compressed, within a gzip member.
func cut(line []byte, err error) error {
	if errors.Is(err, io.EOF) && len(line) > 0 || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends within a line: it was cut short")
	}
	return err
}
