// Package ownership gives what an operator's command run as root makes in
// the folder of another user (the server's) to that user: the server, as
// that user, could not open it otherwise (a master key, a restored
// database, the folder's lock, a bucket's folder: each of mode 600 or
// 700, root's).
//
// It changes the owner of a file only through the file the command made
// and holds open, never by name: the folder's owner could have put, in
// the name's place, a file of root's it may not have (one linked in, or
// moved in from a folder it can write to), or a link; and swapped the
// folder for a link to another one.
package ownership

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Give gives f, a file or folder the caller made and holds open, to the
// owner of like (the file f replaces, or the folder f is in), if the
// caller is root and like is not. Someone able to swap like can have f
// given to itself, or kept by root; f is the caller's own either way.
func Give(f *os.File, like string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Lstat(like)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}

// Mkdir makes the folder path, of mode 700, unless it exists, and gives it,
// if made, to the owner of like (Give). Between its making and its
// opening, the folder's parent's owner could put another folder in its
// place; but moving a folder to another parent takes writing to it, and
// root's folders beside this one are root's making too.
func Mkdir(path, like string) error {
	err := os.Mkdir(path, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return Give(f, like)
}
