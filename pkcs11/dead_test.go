//go:build cgo

package pkcs11_test

import (
	"errors"
	"fmt"
	"testing"

	p11 "github.com/miekg/pkcs11"
	"github.com/thales-e-security/pool"

	"github.com/openpca/openpca/pkcs11"
)

// TestDead: only what would be the same on a new login keeps the store
// from logging in again; any other error may be of a login gone, a
// vendor's code for a connection lost included (YubiHSM's module answers
// CKR_FUNCTION_FAILED), which a store that knew only the standard's codes
// of a login gone left failing until the server restarted.
func TestDead(t *testing.T) {
	for _, tc := range []struct {
		err  error
		dead bool
	}{
		{nil, false},
		{fmt.Errorf("finding: %w", pkcs11.ErrAnotherKey), false},
		{pool.ErrTimeout, false},
		{p11.Error(p11.CKR_KEY_HANDLE_INVALID), false},
		{p11.Error(p11.CKR_OBJECT_HANDLE_INVALID), false},
		{p11.Error(p11.CKR_MECHANISM_INVALID), false},
		{fmt.Errorf("signing: %w", p11.Error(p11.CKR_DATA_LEN_RANGE)), false},
		{p11.Error(p11.CKR_SESSION_CLOSED), true},
		{p11.Error(p11.CKR_DEVICE_REMOVED), true},
		{p11.Error(p11.CKR_FUNCTION_FAILED), true},
		{p11.Error(0x80000001), true}, // a vendor's
		{errors.New("context is closed"), true},
	} {
		if got := pkcs11.Dead(tc.err); got != tc.dead {
			t.Errorf("%v: dead %v, want %v", tc.err, got, tc.dead)
		}
	}
}
