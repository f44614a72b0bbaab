package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/groupcommit"
)

// TestWrapFull: a write the database refused for want of disk space is
// ServiceUnavailableException to a client, which it retries later, not an
// internal failure, and makes the store not ready, saying why; other
// failures stay internal, and the domain's own errors as they are.
func TestWrapFull(t *testing.T) {
	errDisk := errors.New("disk full")
	db := &DB{dialect: Dialect{Name: "test", Full: func(err error) bool { return errors.Is(err, errDisk) }}}
	for _, tc := range []struct {
		err  error
		code string
	}{
		{errDisk, openpca.CodeServiceUnavailable},
		{fmt.Errorf("%w: timeout: %w", groupcommit.ErrTimedOut, errors.New("context deadline exceeded")), openpca.CodeServiceUnavailable},
		{context.DeadlineExceeded, openpca.CodeInternalFailure}, // a request's own bound
		{errors.New("constraint failed"), openpca.CodeInternalFailure},
		{openpca.Errorf(openpca.CodeInvalidState, "no"), openpca.CodeInvalidState},
	} {
		wrapped := db.wrap("recording issuance", tc.err)
		if code := openpca.ErrorCode(wrapped); code != tc.code {
			t.Errorf("%v: %s, want %s", tc.err, code, tc.code)
		}
		if !errors.Is(wrapped, tc.err) {
			t.Errorf("%v: the cause is lost: %v", tc.err, wrapped)
		}
	}
	if err := db.Ready(t.Context()); err == nil || !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "want of disk space") {
		t.Errorf("Ready after a write refused for want of disk space: %v", err)
	}
}
