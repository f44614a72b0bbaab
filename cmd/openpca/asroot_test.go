package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestCommandsAsRootRefuseOthersFolder: the operator commands that write
// files in the data folder (or a master key's file) refuse to run as root
// on those of another user, the server's, saying to run them as that
// user, and leave the folder as it was: what they wrote would be root's,
// which the server could not open. Commands that only read it run.
func TestCommandsAsRootRefuseOthersFolder(t *testing.T) {
	asRoot(t)
	env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned = true })
	env.NewActiveRoot(t, "Not Root's")
	env.Stop(t)
	data := env.Config.DataDir
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", data); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	giveToNobody(t, data)
	empty := t.TempDir()
	giveToNobody(t, empty)
	key := filepath.Join(data, "master.key")
	keyValue, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	// A container's volume: root's folder, the server's user's files.
	volume := t.TempDir()
	if err := os.WriteFile(filepath.Join(volume, "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	giveToNobody(t, filepath.Join(volume, "lock"))
	// A link of root's to the server's user's folder.
	linked := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(empty, linked); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"master-key", "rotate", "--data-dir", data},
		{"buckets", "create", "crls", "--account", app.DefaultAccountID, "--data-dir", data},
		{"restore", "--from", backup, "--data-dir", empty, "--master-key-file", key},
		// The key given itself: the folders alone are judged.
		{"restore", "--from", backup, "--data-dir", volume, "--master-key", strings.TrimSpace(string(keyValue))},
		{"restore", "--from", backup, "--data-dir", linked, "--master-key", strings.TrimSpace(string(keyValue))},
		// Not on to KMS: the port is closed.
		{"master-key", "wrap", "--data-dir", data, "--master-key-kms-key", "arn:aws:kms:us-east-1:111122223333:key/unused", "--kms-endpoint", "http://127.0.0.1:1"},
	} {
		if out, err := runOpenpca(t, args...); err == nil || !strings.Contains(err.Error(), "run it as that user") || !strings.Contains(err.Error(), "runuser -u nobody") {
			t.Errorf("%s as root on another user's files: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, _ := runOpenpca(t, "buckets", "list", "--data-dir", data); strings.Contains(out, "crls") {
		t.Errorf("the refused bucket was recorded:\n%s", out)
	}
	for _, dir := range []string{data, empty, volume} {
		filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if fi, err := os.Lstat(p); err == nil && fi.Sys().(*syscall.Stat_t).Uid != nobody && p != volume {
				t.Errorf("%s is root's", p)
			}
			return nil
		})
	}
	if out, err := runOpenpca(t, "cas", "list", "--data-dir", data); err != nil || !strings.Contains(out, "ACTIVE") {
		t.Errorf("cas list as root on another user's folder: %v\n%s", err, out)
	}
	// A command that would settle an interrupted rotation (rename the new
	// key's file, write the TLS CA's key) refuses too.
	next := filepath.Join(data, "master.key.new")
	if err := os.WriteFile(next, []byte("bm90IGEga2V5Cg==\n"), 0o600); err != nil || os.Chown(next, nobody, nobody) != nil {
		t.Fatal(err)
	}
	if out, err := runOpenpca(t, "cas", "list", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "run it as that user") {
		t.Errorf("cas list as root, with a rotation to settle: %v\n%s", err, out)
	}
}

// TestBackupRefusesOthersFolder: a backup is written only in a folder no
// other user can change under the command: another user's, or one others
// may write to without the sticky bit, or one reached through another
// user's link, is refused, and nothing is written. Another user who could
// swap the folder the backup is made in for a link had root's backup
// write the whole database, readable by all, where they chose. /tmp's
// kind of folder (root's, world-writable, sticky) takes it.
func TestBackupRefusesOthersFolder(t *testing.T) {
	asRoot(t)
	env := testenv.Start(t)
	env.Stop(t)
	theirs, open, sticky := t.TempDir(), t.TempDir(), t.TempDir()
	if err := errors.Join(os.Chown(theirs, nobody, nobody), os.Chmod(open, 0o777), os.Chmod(sticky, 0o777|os.ModeSticky)); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(t.TempDir(), "linked")
	if err := errors.Join(os.Symlink(sticky, linked), os.Lchown(linked, nobody, nobody)); err != nil {
		t.Fatal(err)
	}
	above := t.TempDir()
	below := filepath.Join(above, "root's")
	if err := errors.Join(os.Mkdir(below, 0o700), os.Chown(above, nobody, nobody)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"another user's folder", theirs, "is a folder of user 65534"},
		{"root's folder in another user's", below, "is a folder of user 65534"},
		{"a folder all may write to", open, "can be written by users outside"},
		{"through another user's link", linked, "is a link of user 65534"},
		{"a sticky folder all may write to", sticky, ""},
	} {
		to := filepath.Join(tc.dir, "backup.db")
		out, err := runOpenpca(t, "backup", "--to", to, "--data-dir", env.Config.DataDir)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v\n%s", tc.name, err, out)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q\n%s", tc.name, err, tc.want, out)
		}
		if entries, _ := os.ReadDir(tc.dir); len(entries) > 0 {
			t.Errorf("%s: the refused backup left %v", tc.name, entries)
		}
	}
	// Root's backup of the server's user's data folder, into a folder of
	// that user's, which holds the database already: taken.
	giveToNobody(t, env.Config.DataDir)
	if out, err := runOpenpca(t, "backup", "--to", filepath.Join(theirs, "backup.db"), "--data-dir", env.Config.DataDir); err != nil {
		t.Errorf("root's backup into a folder of the data folder's owner: %v\n%s", err, out)
	}
}

// TestMasterKeyFileOfAnotherUser: a master key's file outside the data
// folder that another user wrote, or can replace (one all may write to,
// or in or below a folder of theirs, or in one others may write to
// without the sticky bit), is refused: the server took such a file's key
// at its first start, a key that user knows, and warned only of the
// file's mode.
func TestMasterKeyFileOfAnotherUser(t *testing.T) {
	asRoot(t)
	env := testenv.Start(t)
	env.Stop(t)
	key, err := os.ReadFile(filepath.Join(env.Config.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		fileOwner  int
		fileMode   os.FileMode
		folderMode os.FileMode
		folderOf   int
		below      bool // in a folder of root's, in the folder
	}{
		{"root's, in root's folder", "", 0, 0o600, 0o700, 0, false},
		{"root's, in a sticky folder all may write to", "", 0, 0o600, 0o777 | os.ModeSticky, 0, false},
		{"another user's", "belongs to user 65534", nobody, 0o600, 0o700, 0, false},
		{"one all may write to", "chmod 600 it", 0, 0o666, 0o700, 0, false},
		{"in another user's folder", "is a folder of user 65534", 0, 0o600, 0o700, nobody, false},
		{"in root's folder in another user's", "is a folder of user 65534", 0, 0o600, 0o700, nobody, true},
		{"in a folder all may write to", "can be written by users outside", 0, 0o600, 0o777, 0, false},
	} {
		dir := t.TempDir()
		if err := errors.Join(os.Chmod(dir, tc.folderMode), os.Chown(dir, tc.folderOf, tc.folderOf)); err != nil {
			t.Fatal(err)
		}
		if tc.below {
			dir = filepath.Join(dir, "root's")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "master.key")
		if err := errors.Join(os.WriteFile(path, key, 0o600), os.Chown(path, tc.fileOwner, tc.fileOwner), os.Chmod(path, tc.fileMode)); err != nil {
			t.Fatal(err)
		}
		out, err := runOpenpca(t, "keys", "list", "--data-dir", env.Config.DataDir, "--master-key-file", path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q\n%s", tc.name, err, tc.want, out)
		}
	}
}

// TestRotationKeyFilesOfAnotherUser: a rotation's new and previous master
// keys' files are judged as --master-key-file's is: another user's is
// refused, before anything is resealed, and the data folder still opens
// with its key.
func TestRotationKeyFilesOfAnotherUser(t *testing.T) {
	asRoot(t)
	env := testenv.Start(t)
	env.Stop(t)
	dir := t.TempDir()
	files := map[int]string{}
	for _, owner := range []int{0, nobody} {
		key, err := app.NewMasterKey()
		if err != nil {
			t.Fatal(err)
		}
		files[owner] = filepath.Join(dir, fmt.Sprintf("%d.key", owner))
		if err := errors.Join(os.WriteFile(files[owner], []byte(key), 0o600), os.Chown(files[owner], owner, owner)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ flag, other string }{
		{"--new-master-key-file", "--previous-master-key-file"},
		{"--previous-master-key-file", "--new-master-key-file"},
	} {
		out, err := runOpenpca(t, "master-key", "rotate", "--data-dir", env.Config.DataDir, tc.flag, files[nobody], tc.other, files[0])
		if want := tc.flag + ": the master key's file " + files[nobody] + " belongs to user 65534"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s of another user: %v, want %q\n%s", tc.flag, err, want, out)
		}
	}
	if out, err := runOpenpca(t, "keys", "list", "--data-dir", env.Config.DataDir); err != nil {
		t.Errorf("the data folder after the refusals: %v\n%s", err, out)
	}
}

// nobody is the other user these tests give files to.
const nobody = 65534

// asRoot skips a test that is not run as root, which files of another
// user take to make.
func asRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("files of another user take root to make, as CI runs")
	}
}

// giveToNobody gives dir, and all in it, to nobody.
func giveToNobody(t *testing.T, dir string) {
	t.Helper()
	if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		return errors.Join(err, os.Lchown(p, nobody, nobody))
	}); err != nil {
		t.Fatal(err)
	}
}
