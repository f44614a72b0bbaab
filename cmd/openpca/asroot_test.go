package main

import (
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
	if os.Geteuid() != 0 {
		t.Skip("files of another user take root to make, as CI runs")
	}
	const nobody = 65534
	env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned = true })
	env.NewActiveRoot(t, "Not Root's")
	env.Stop(t)
	data := env.Config.DataDir
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := runOpenpca(t, "backup", "--to", backup, "--data-dir", data); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	chown := func(dir string) {
		t.Helper()
		if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nobody, nobody)
		}); err != nil {
			t.Fatal(err)
		}
	}
	chown(data)
	empty := t.TempDir()
	chown(empty)
	key := filepath.Join(data, "master.key")
	for _, args := range [][]string{
		{"master-key", "rotate", "--data-dir", data},
		{"buckets", "create", "crls", "--account", app.DefaultAccountID, "--data-dir", data},
		{"restore", "--from", backup, "--data-dir", empty, "--master-key-file", key},
		{"master-key", "wrap", "--data-dir", data, "--master-key-kms-key", "arn:aws:kms:us-east-1:111122223333:key/unused"},
	} {
		if out, err := runOpenpca(t, args...); err == nil || !strings.Contains(err.Error(), "run it as that user (runuser -u nobody") {
			t.Errorf("%s as root on another user's folder: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
	}
	for _, dir := range []string{data, empty} {
		filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if fi, err := os.Lstat(p); err == nil && fi.Sys().(*syscall.Stat_t).Uid != nobody {
				t.Errorf("%s is root's", p)
			}
			return nil
		})
	}
	if out, err := runOpenpca(t, "cas", "list", "--data-dir", data); err != nil || !strings.Contains(out, "ACTIVE") {
		t.Errorf("cas list as root on another user's folder: %v\n%s", err, out)
	}
}
