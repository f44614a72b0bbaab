//go:build race

package sqlite_test

// raceEnabled says the race detector is on, and everything ten to thirty
// times slower: tests that drive load drive less.
const raceEnabled = true
