//go:build cgo

package pkcs11_test

import (
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/openpca/openpca/pkcs11"
)

// TestSameOnNewLogin: only the token's codes that would be the same on a
// new login keep the store from logging in again; any other may be of a
// login gone, a vendor's code for a connection lost included (YubiHSM's
// module answers CKR_FUNCTION_FAILED), which a store that knew only the
// standard's codes of a login gone left failing until the server
// restarted.
func TestSameOnNewLogin(t *testing.T) {
	for _, tc := range []struct {
		code p11.Error
		same bool
	}{
		{p11.CKR_KEY_HANDLE_INVALID, true},
		{p11.CKR_OBJECT_HANDLE_INVALID, true},
		{p11.CKR_MECHANISM_INVALID, true},
		{p11.CKR_DATA_LEN_RANGE, true},
		{p11.CKR_SESSION_COUNT, true},
		{p11.CKR_DEVICE_MEMORY, true},
		{p11.CKR_SESSION_CLOSED, false},
		{p11.CKR_DEVICE_REMOVED, false},
		{p11.CKR_USER_NOT_LOGGED_IN, false},
		{p11.CKR_FUNCTION_FAILED, false},
		{0x80000001, false}, // a vendor's
	} {
		if got := pkcs11.SameOnNewLogin(tc.code); got != tc.same {
			t.Errorf("%v: the same on a new login %v, want %v", tc.code, got, tc.same)
		}
	}
}
