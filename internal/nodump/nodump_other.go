//go:build !linux

package nodump

// disable does nothing: the server is built and tested for Linux, and
// the README says that only there are core dumps turned off.
func disable() error { return nil }
