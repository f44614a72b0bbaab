package app

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// handBack gives the files and folders that an operator command run as
// root made in the data folder dir to the folder's owner, when that is
// another user (the server's). The server, as that user, could not open
// them: a master key, a database and its lock, the TLS CA's key, a
// bucket's folder, each of mode 600 or 700.
//
// It looks at the folder's own entries and those of its tls and s3
// folders, which is where commands write, through os.Root, which follows
// no link out of the folder; and it leaves what another user could have
// put there for root to give away: a link, or a file with another link
// (/etc/shadow, linked in, is root's too).
func handBack(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	uid, gid := owner(fi), fi.Sys().(*syscall.Stat_t).Gid
	if uid == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, sub := range []string{".", "tls", "s3"} {
		entries, err := fs.ReadDir(root.FS(), sub)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := path.Join(sub, e.Name())
			fi, err := root.Lstat(name)
			if err != nil {
				return err
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || !fi.IsDir() && !(fi.Mode().IsRegular() && st.Nlink == 1) {
				continue
			}
			if err := root.Lchown(name, int(uid), int(gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keepOwner returns what gives file, once a command run as
// root has replaced it, the owner it has now: a master key file outside
// the data folder is the server's user's, which must read it.
func keepOwner(file string) func() error {
	fi, err := os.Lstat(file)
	if os.Geteuid() != 0 || err != nil || owner(fi) == 0 {
		return func() error { return nil }
	}
	uid, gid := owner(fi), fi.Sys().(*syscall.Stat_t).Gid
	return func() error {
		// Through the file itself: by name, a link put in its place
		// would be followed, or another's file linked in given away.
		f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || !fi.Mode().IsRegular() || st.Nlink != 1 {
			return nil
		}
		return f.Chown(int(uid), int(gid))
	}
}
