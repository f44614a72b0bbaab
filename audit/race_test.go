//go:build race

package audit

// raceEnabled says the race detector is on: tests of what allocation
// alone decides run without it (scripts/test runs them so).
const raceEnabled = true
