package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

func rows() []*openpca.Certificate {
	at := time.Date(2026, 3, 2, 21, 43, 57, 123456000, time.UTC)
	return []*openpca.Certificate{
		{AccountID: "111122223333", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x/certificate/0a1b", Serial: "0a1b",
			Subject: `CN=a "quoted"\, name,O=Example\, Inc.`, NotBefore: at, NotAfter: at.Add(time.Hour), IssuedAt: at,
			TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1"},
		{AccountID: "111122223333", ARN: "arn:b", Serial: "ffee01", Subject: "CN=ü\tline", NotBefore: at, NotAfter: at, IssuedAt: at.In(time.FixedZone("X", 3600)),
			RevokedAt: at.Add(time.Minute), RevocationReason: openpca.RevocationReasonKeyCompromise, TemplateARN: "t"},
	}
}

func write(t *testing.T, format openpca.AuditReportResponseFormat, certs []*openpca.Certificate) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(format, &b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if err := w.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), ContentType(format)
}

func TestJSON(t *testing.T) {
	out, contentType := write(t, openpca.AuditReportResponseFormatJson, rows())
	if contentType != "application/json" {
		t.Errorf("content type %s", contentType)
	}
	var got []map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := []map[string]string{
		{"awsAccountId": "111122223333", "certificateArn": rows()[0].ARN, "serial": "0a:1b", "subject": rows()[0].Subject,
			"notBefore": "2026-03-02T21:43:57+0000", "notAfter": "2026-03-02T22:43:57+0000", "issuedAt": "2026-03-02T21:43:57+0000",
			"templateArn": "arn:aws:acm-pca:::template/EndEntityCertificate/V1"},
		{"awsAccountId": "111122223333", "certificateArn": "arn:b", "serial": "ff:ee:01", "subject": "CN=ü\tline",
			"notBefore": "2026-03-02T21:43:57+0000", "notAfter": "2026-03-02T21:43:57+0000", "issuedAt": "2026-03-02T21:43:57+0000",
			"revokedAt": "2026-03-02T21:44:57+0000", "revocationReason": "KEY_COMPROMISE", "templateArn": "t"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// Members keep the documented order.
	if i, j := strings.Index(out, "awsAccountId"), strings.Index(out, "templateArn"); i < 0 || j < i {
		t.Errorf("member order: %s", out)
	}
	if empty, _ := write(t, openpca.AuditReportResponseFormatJson, nil); empty != "[]" {
		t.Errorf("empty report %q, want []", empty)
	}
}

func TestCSV(t *testing.T) {
	out, contentType := write(t, openpca.AuditReportResponseFormatCsv, rows())
	if contentType != "text/csv" {
		t.Errorf("content type %s", contentType)
	}
	if !strings.HasPrefix(out, strings.Join(Fields, ",")+"\r\n") {
		t.Errorf("header line: %q", out[:100])
	}
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 3 {
		t.Fatalf("%d records", len(records))
	}
	first := records[1]
	if first[3] != "0a:1b" || first[4] != rows()[0].Subject || first[1] != "" || first[8] != "" || first[9] != "" {
		t.Errorf("first row %q", first)
	}
	if second := records[2]; second[8] != "2026-03-02T21:44:57+0000" || second[9] != "KEY_COMPROMISE" {
		t.Errorf("second row %q", second)
	}
	if !strings.Contains(out, `"CN=a ""quoted""\, name,O=Example\, Inc."`) {
		t.Errorf("subject not quoted as RFC 4180 says: %s", out)
	}
	if empty, _ := write(t, openpca.AuditReportResponseFormatCsv, nil); empty != strings.Join(Fields, ",")+"\r\n" {
		t.Errorf("empty report %q", empty)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\x00\x1f\n", "ü€😀", "bad\xffutf8"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
		}
		if s != "bad\xffutf8" && got != s {
			t.Errorf("%q came back as %q", s, got)
		}
	}
}

// TestFormatFields checks the report's own formatting of times and serials
// against what the time package's layout and the documented form give.
func TestFormatFields(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 3, 2, 21, 43, 57, 123456789, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 31, 23, 30, 0, 0, time.FixedZone("-0130", -90*60)),
		time.Date(2050, 6, 1, 0, 0, 1, 0, time.FixedZone("+1400", 14*3600)),
	} {
		if got, want := string(appendTime(nil, at)), at.UTC().Format(TimeLayout); got != want {
			t.Errorf("%v: %s, want %s", at, got, want)
		}
	}
	for serial, want := range map[string]string{"": "", "a": "0a", "0A1b": "0a:1b", "FFEE01": "ff:ee:01", "123": "01:23"} {
		if got := string(appendColonSerial(nil, serial)); got != want {
			t.Errorf("serial %q: %q, want %q", serial, got, want)
		}
	}
}
