package app

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// refuseRootWriting refuses a command run as root that would write files
// at paths (a data folder, a master key's file or its folder) that belong
// to another user, the server's. What it wrote would be root's, of mode
// 600 or 700, which the server could not open; and root writing in a
// folder another user controls can be led, by a link or a folder swapped
// in meanwhile, to write elsewhere. Giving the files to that user instead
// (as a review's two rounds of it showed) only turned that into files of
// the user's wherever root was led. Run as that user, the command's files
// are its own, and it can write nowhere the server could not.
func refuseRootWriting(paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || owner(fi) == 0 {
			continue // to be made by the command, or root's
		}
		name := strconv.Itoa(int(owner(fi)))
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		return fmt.Errorf("%s belongs to user %s, which the server runs as, and this command writes there: run it as that user (runuser -u %s -- openpca ...), not as root, whose files the server could not open", p, name, name)
	}
	return nil
}
