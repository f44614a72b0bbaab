//go:build linux

package nodump_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/openpca/openpca/internal/nodump"
)

// TestDisable: after Disable, the process writes no core and is not
// dumpable; with GOTRACEBACK=crash, which asks for a core, both are left.
// The GOTRACEBACK case goes first: the other leaves the test's process
// not dumpable.
func TestDisable(t *testing.T) {
	state := func() (limit uint64, dumpable int) {
		t.Helper()
		var l unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_CORE, &l); err != nil {
			t.Fatal(err)
		}
		d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return l.Cur, d
	}
	// A limit above 0 to begin with, where the test's own is 0.
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Max > 0 && l.Cur == 0 {
		l.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_CORE, &l); err != nil {
			t.Fatal(err)
		}
	}
	beforeLimit, beforeDumpable := state()
	crash := func(k string) (string, bool) { return map[string]string{"GOTRACEBACK": "crash"}[k], k == "GOTRACEBACK" }
	if err := nodump.Disable(crash); err != nil {
		t.Fatal(err)
	}
	if limit, dumpable := state(); limit != beforeLimit || dumpable != beforeDumpable {
		t.Errorf("with GOTRACEBACK=crash: core limit %d, dumpable %d; want them left (%d, %d)", limit, dumpable, beforeLimit, beforeDumpable)
	}
	if err := nodump.Disable(func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if limit, dumpable := state(); limit != 0 || dumpable != 0 {
		t.Errorf("core limit %d, dumpable %d; want 0, 0", limit, dumpable)
	}
}
