// Package race tells tests whether the race detector is on.
//
// Some tests measure what code allocates, which the race detector
// changes. Others run long computations, or long runs of requests one at
// a time: in them, the race detector costs five to ten times the CPU, and
// sees no goroutines meet that no test run under it makes meet. Under
// `go test -race` they skip themselves (Skip); scripts/test runs them
// without the race detector, each by its package and name, and fails if
// one does not pass or is not on its list.
package race

import "testing"

// Skip skips t's test when the race detector is on.
func Skip(t testing.TB) {
	t.Helper()
	if enabled {
		t.Skip("runs without the race detector (scripts/test runs it so)")
	}
}
