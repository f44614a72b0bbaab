// Package race tells tests whether the race detector is on.
//
// Some tests measure what code allocates, which the race detector
// changes, or run long computations on one goroutine, where it has
// nothing to watch and costs five to ten times the CPU. Under
// `go test -race` they skip themselves (Skip); scripts/test runs them
// without the race detector, by name, and fails if one does not pass.
package race

import "testing"

// Skip skips t's test when the race detector is on.
func Skip(t testing.TB) {
	t.Helper()
	if enabled {
		t.Skip("runs without the race detector (scripts/test runs it so)")
	}
}
