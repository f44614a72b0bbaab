package openpca_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openpca/openpca"
)

// TestErrorCause: an error's cause is in its text, which logs show (a CRL
// that KMS kept from being signed was logged without why), and not in
// what a client is told.
func TestErrorCause(t *testing.T) {
	cause := errors.New("dial tcp 10.9.8.7:443: connection refused")
	err := fmt.Errorf("signing a CRL: %w", &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "KMS cannot be reached.", Cause: cause})
	if !strings.Contains(err.Error(), "10.9.8.7") || !errors.Is(err, cause) {
		t.Errorf("the error's text %q lacks its cause", err)
	}
	if got := openpca.ClientMessage(err); got != "ServiceUnavailableException: KMS cannot be reached." {
		t.Errorf("a client is told %q", got)
	}
	if got := openpca.ClientMessage(errors.New("s3: Put http://s3.internal:9000/: no such host")); strings.Contains(got, "s3.internal") || !strings.HasPrefix(got, "InternalFailure") {
		t.Errorf("a client is told %q of another error", got)
	}
}
