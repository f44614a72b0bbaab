//go:build !linux

package sqlite

import "golang.org/x/sys/unix"

// blockSize is the unit of statfs's counts of blocks: f_bsize, on the
// systems whose statfs has no f_frsize.
func blockSize(st *unix.Statfs_t) int64 { return int64(st.Bsize) }
