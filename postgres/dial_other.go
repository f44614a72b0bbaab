//go:build !linux

package postgres

import "syscall"

// setUserTimeout does nothing where TCP_USER_TIMEOUT is Linux's alone:
// there, the keepalives alone find a silent peer, and data sent stays
// unacknowledged as long as the system lets it.
func setUserTimeout(string, string, syscall.RawConn) error { return nil }
