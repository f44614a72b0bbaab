// Package audit writes audit reports: it formats a CA's certificates as
// AWS Private CA's JSON or CSV report, and generates requested reports in
// the background, streaming rows from the store into the object store.
package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/openpca/openpca"
)

// Fields are the columns of a report, in order.
var Fields = []string{
	"awsAccountId", "requestedByServicePrincipal", "certificateArn", "serial", "subject",
	"notBefore", "notAfter", "issuedAt", "revokedAt", "revocationReason", "templateArn",
}

// TimeLayout is how reports write times: in UTC, with the offset +0000.
const TimeLayout = "2006-01-02T15:04:05-0700"

// RowWriter writes the rows of a report.
type RowWriter interface {
	// Write adds one certificate's row.
	Write(c *openpca.Certificate) error
	// Close ends the report and flushes it; it does not close the
	// underlying writer.
	Close() error
}

// NewWriter returns a RowWriter of the given format.
func NewWriter(format openpca.AuditReportResponseFormat, w io.Writer) (RowWriter, error) {
	switch format {
	case openpca.AuditReportResponseFormatJson:
		return &jsonWriter{w: bufio.NewWriterSize(w, 64<<10)}, nil
	case openpca.AuditReportResponseFormatCsv:
		cw := csv.NewWriter(w)
		cw.UseCRLF = true // RFC 4180
		return &csvWriter{w: cw}, cw.Write(Fields)
	}
	return nil, fmt.Errorf("audit: unknown report format %q", format)
}

// ContentType is the media type of reports of a format.
func ContentType(format openpca.AuditReportResponseFormat) string {
	if format == openpca.AuditReportResponseFormatCsv {
		return "text/csv"
	}
	return "application/json"
}

// values returns a certificate's fields in the order of Fields; "" is no
// value. The fields it formats share one string: a report has millions of
// rows.
func values(c *openpca.Certificate, out []string) []string {
	var b [64 + 4*len(TimeLayout)]byte // a serial of 20 bytes (RFC 5280) and four times
	buf := appendColonSerial(b[:0], c.Serial)
	ends := [5]int{len(buf)}
	for i, t := range []time.Time{c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt} {
		if i < 3 || !t.IsZero() { // a certificate not revoked has no revokedAt
			buf = appendTime(buf, t)
		}
		ends[i+1] = len(buf)
	}
	s := string(buf)
	return append(out[:0],
		c.AccountID,
		"", // requestedByServicePrincipal: only ACM issues on an owner's behalf
		c.ARN,
		s[:ends[0]],
		c.Subject,
		s[ends[0]:ends[1]],
		s[ends[1]:ends[2]],
		s[ends[2]:ends[3]],
		s[ends[3]:ends[4]],
		string(c.RevocationReason),
		c.TemplateARN,
	)
}

// appendTime appends t as reports write times, in TimeLayout in UTC.
func appendTime(b []byte, t time.Time) []byte {
	// RFC 3339 in UTC, which the time package writes on a fast path,
	// differs from TimeLayout only in its zone: "Z" for "+0000".
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b[:len(b)-1], "+0000"...)
}

// appendColonSerial appends a hex serial as lowercase bytes joined by
// colons.
func appendColonSerial(b []byte, hex string) []byte {
	if len(hex)%2 == 1 {
		b = append(b, '0')
	}
	for i := 0; i < len(hex); i++ {
		if i > 0 && (len(hex)-i)%2 == 0 {
			b = append(b, ':')
		}
		c := hex[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

type csvWriter struct {
	w   *csv.Writer
	row []string
}

func (c *csvWriter) Write(cert *openpca.Certificate) error {
	c.row = values(cert, c.row)
	return c.w.Write(c.row)
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	return c.w.Error()
}

// jsonWriter writes one top-level array of objects, leaving out members
// without a value.
type jsonWriter struct {
	w    *bufio.Writer
	row  []string
	rows int
	buf  []byte
}

func (j *jsonWriter) Write(c *openpca.Certificate) error {
	j.row = values(c, j.row)
	b := j.buf[:0]
	if j.rows == 0 {
		b = append(b, '[')
	} else {
		b = append(b, ',')
	}
	j.buf = appendJSONRow(b, j.row)
	j.rows++
	_, err := j.w.Write(j.buf)
	return err
}

// appendJSONRow appends a row as a JSON object, leaving out members
// without a value.
func appendJSONRow(b []byte, row []string) []byte {
	b = append(b, '{')
	first := true
	for i, v := range row {
		if v == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, Fields[i])
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	return append(b, '}')
}

// chunkWriter formats a run of a report's rows, apart from the rest, in
// a report's exact bytes: CSV lines, or JSON objects each after a comma
// (the report's first row goes without; see trim).
type chunkWriter struct {
	format openpca.AuditReportResponseFormat
	buf    bytes.Buffer
	csv    *csv.Writer
	row    []string
	line   []byte
	rows   int
}

func newChunkWriter(format openpca.AuditReportResponseFormat) *chunkWriter {
	w := &chunkWriter{format: format}
	if format == openpca.AuditReportResponseFormatCsv {
		w.csv = csv.NewWriter(&w.buf)
		w.csv.UseCRLF = true
	}
	return w
}

// reset empties the writer, keeping its buffer.
func (w *chunkWriter) reset() {
	w.buf.Reset()
	w.rows = 0
}

func (w *chunkWriter) write(c *openpca.Certificate) error {
	w.row = values(c, w.row)
	w.rows++
	if w.csv != nil {
		return w.csv.Write(w.row)
	}
	w.line = appendJSONRow(append(w.line[:0], ','), w.row)
	w.buf.Write(w.line)
	return nil
}

// bytes returns the rows formatted.
func (w *chunkWriter) bytes() ([]byte, error) {
	if w.csv != nil {
		w.csv.Flush()
		return w.buf.Bytes(), w.csv.Error()
	}
	return w.buf.Bytes(), nil
}

// reportFrame returns what a report of a format holds before its rows
// and after them: "[" and "]" around JSON's, the header line before CSV's.
func reportFrame(format openpca.AuditReportResponseFormat) (head, tail []byte, err error) {
	if format == openpca.AuditReportResponseFormatJson {
		return []byte("["), []byte("]"), nil
	}
	var b bytes.Buffer
	w, err := NewWriter(format, &b)
	if err == nil {
		err = w.Close()
	}
	return b.Bytes(), nil, err
}

func (j *jsonWriter) Close() error {
	end := "]"
	if j.rows == 0 {
		end = "[]"
	}
	if _, err := j.w.WriteString(end); err != nil {
		return err
	}
	return j.w.Flush()
}

// jsonPlain says which bytes a JSON string holds as they are: ASCII but
// the control characters, the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string (RFC 8259).
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		run := i
		for run < len(s) && jsonPlain[s[run]] {
			run++
		}
		b = append(b, s[i:run]...)
		if i = run; i == len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}
