package sqlite

import "golang.org/x/sys/unix"

// blockSize is the unit of statfs's counts of blocks on Linux: fragments
// (f_frsize, as statvfs has it), which some file systems make smaller than
// f_bsize, the size they like to be written in.
func blockSize(st *unix.Statfs_t) int64 {
	if st.Frsize != 0 {
		return int64(st.Frsize)
	}
	return int64(st.Bsize)
}
