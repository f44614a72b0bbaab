//go:build !linux

package nodump

// disable does nothing where Go's standard library cannot set a limit of
// core dumps portably; the README says so.
func disable() error { return nil }
