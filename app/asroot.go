package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// refuseRootWriting refuses a command run as root that would write files
// at paths (a data folder, a master key's file or its folder) where
// another user's files are: the path itself, or, for a folder, what it
// holds, which is how a container's volume of root's that the server's
// user writes in looks. What root wrote would be root's, of mode 600 or
// 700, which the server, as that user, could not open; and root writing
// in a folder another user controls can be led, by a link or a folder
// swapped in meanwhile, to write elsewhere. Giving the files to that user
// instead (as two rounds of review showed) only turned that into files
// of the user's wherever root was led. Run as that user, the command's
// files are its own, and it can write nowhere the server could not.
//
// A path that does not exist yet is judged by its folder: a folder root
// makes in one another user controls could be swapped for a link.
// Links are followed: checkFolder judges the links on the way to a data
// folder.
func refuseRootWriting(paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			fi, err = os.Stat(filepath.Dir(p))
		}
		if err != nil {
			continue // for the command to find and say
		}
		if err := notRoot(p, fi); err != nil {
			return err
		}
		if !fi.IsDir() {
			continue
		}
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if fi, err := os.Lstat(filepath.Join(p, e.Name())); err == nil {
				if err := notRoot(filepath.Join(p, e.Name()), fi); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// notRoot refuses fi, of path, if another user than root has it.
func notRoot(path string, fi os.FileInfo) error {
	uid := owner(fi)
	if uid == 0 {
		return nil
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	as := fmt.Sprintf("user %d (setpriv --reuid=%d --regid=%d --clear-groups -- openpca ...)", uid, uid, gid)
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		as = fmt.Sprintf("user %s (runuser -u %s -- openpca ...)", u.Username, u.Username)
	}
	return fmt.Errorf("%s belongs to %s, as the server runs, and this command writes there: run it as that user, not as root, whose files the server could not open", path, as)
}
