package auditlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// A report's proof file sits beside it in the bucket, at the report's key
// plus ProofSuffix. It is JSON Lines: a header (ProofHeader), then the
// record of each entry of the CA's log that the checkpoint covers, one per
// line, in order, byte for byte as the tree hashes them. A verifier
// rebuilds the tree from the records, checks that its root is the signed
// checkpoint's, and compares the report's rows with the records.
const (
	ProofSuffix      = ".proof.jsonl"
	ProofFormat      = "openpca-audit-proof/v1"
	ProofContentType = "application/jsonl"
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

// WriteProof writes a proof file: h, then each record that records yields.
func WriteProof(w io.Writer, h *ProofHeader, records func(yield func(record []byte) error) error) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	line, err := h.Line()
	if err != nil {
		return err
	}
	bw.Write(line)
	var buf []byte
	err = records(func(record []byte) error {
		if buf, err = AppendRecordLine(buf[:0], record); err != nil {
			return err
		}
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
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

// ReadProof reads a proof file's header, then calls fn with each record in
// order. A record is valid only until fn returns.
func ReadProof(r io.Reader, fn func(seq int64, record []byte) error) (*ProofHeader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("the proof file's header: %w", err)
	}
	var h ProofHeader
	if err := json.Unmarshal(line, &h); err != nil || h.Format != ProofFormat {
		return nil, fmt.Errorf("the proof file's first line is not a header of format %s", ProofFormat)
	}
	for seq := int64(0); ; seq++ {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return &h, nil
		}
		if err != nil {
			return &h, fmt.Errorf("the proof file's record %d: %w", seq, err)
		}
		if err := fn(seq, line); err != nil {
			return &h, err
		}
	}
}

// readLine returns the next line without its newline; io.EOF at the end;
// an error for a last line without a newline, which a cut file has.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		full := append([]byte(nil), line...)
		rest, err := br.ReadBytes('\n')
		line = append(full, rest...)
		if err != nil {
			return nil, cut(line, err)
		}
	} else if err != nil {
		return nil, cut(line, err)
	}
	return line[:len(line)-1], nil
}

func cut(line []byte, err error) error {
	if errors.Is(err, io.EOF) && len(line) > 0 {
		return errors.New("the file ends within a line: it was cut short")
	}
	return err
}
