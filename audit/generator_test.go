package audit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/openpca/openpca"
)

// TestReportFailure: a report's account is told what is wrong with its
// CA's log or its bucket, and of any other failure only that the server
// failed, not the operator's details.
func TestReportFailure(t *testing.T) {
	integrity := &openpca.LogIntegrityError{CAID: "ca", Entry: 3, Problem: "is missing"}
	for _, tc := range []struct {
		err        error
		want, hide string
	}{
		{fmt.Errorf("audit: reading the log: %w", integrity), "entry 3 of the log of CA ca is missing", ""},
		{fmt.Errorf("audit: the S3 bucket b %w", errBucketGiven), "the S3 bucket b was given to another account", ""},
		{errors.New(`s3: Put "http://s3.internal:9000/b/k": no such host`), "InternalFailure", "s3.internal"},
		// A full disk is named, and not where it is.
		{fmt.Errorf("localfs: %w", &os.PathError{Op: "write", Path: "/srv/openpca/s3/b/.tmp-1", Err: syscall.ENOSPC}), "out of space", "/srv"},
		{&openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "KMS cannot be reached.", Cause: errors.New("dial tcp 10.0.0.9:443")}, "KMS cannot be reached.", "10.0.0.9"},
		// A bucket's name of any length, as the tables may hold it, is
		// cut.
		{fmt.Errorf("audit: the S3 bucket %s %w", strings.Repeat("b", 5000), errBucketGiven), "audit: the S3 bucket bbb", "given"},
		// So is what a client is told of an error that quotes the tables.
		{&openpca.Error{Code: openpca.CodeInvalidArgs, Message: strings.Repeat("b", 5000) + " is not valid."}, "InvalidArgsException: bbb", "is not valid"},
		// A name too long to be one is quoted as far as a name may go.
		{openpca.CheckBucketName("reports" + strings.Repeat("0", 3000)), `"reports000`, "00000000000000000000000000000000000000000000000000000000000"},
		// Cut, it is cut between characters, and keeps what is not
		// UTF-8 before the cut; the mark of the cut is not in the quote.
		{openpca.CheckBucketName("a\xff" + strings.Repeat("é", 31)), `"a\xff` + strings.Repeat("é", 30) + `"… is not`, `\xc3`},
	} {
		got := reportFailure(tc.err)
		if !strings.Contains(got, tc.want) || tc.hide != "" && strings.Contains(got, tc.hide) || len(got) > maxFailure+len("…") {
			t.Errorf("%.100v: told %d bytes: %.100q", tc.err, len(got), got)
		}
	}
}
