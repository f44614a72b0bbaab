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

// TestCommandsAsRootHandBack: operator commands run as root on the data
// folder of the server's user give what they make there to that user (a
// rotated master key, the TLS CA's key resealed, a bucket's folder, a
// restored database and its lock), which the server could not open
// otherwise; and give away nothing else: not a file of root's linked or
// moved in, nor a link. A master key file outside the folder keeps its
// owner.
func TestCommandsAsRootHandBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user takes root, as CI runs")
	}
	const nobody = 65534
	env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned = true })
	env.NewActiveRoot(t, "Handed Back")
	env.Stop(t)
	data := env.Config.DataDir
	if err := filepath.WalkDir(data, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	// Root's own file, linked into the folder, and a link to it; and one
	// of its files moved in (from a folder the server's user can write
	// to).
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "moved"), []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, filepath.Join(data, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(data, "tls", "pointer")); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(restored, 0o700); err != nil || os.Chown(restored, nobody, nobody) != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	for _, args := range [][]string{
		{"buckets", "create", "crls", "--account", app.DefaultAccountID, "--data-dir", data},
		{"master-key", "rotate", "--data-dir", data},
		{"backup", "--to", backup, "--data-dir", data},
		{"restore", "--from", backup, "--data-dir", restored, "--master-key-file", filepath.Join(data, "master.key")},
	} {
		if out, err := runOpenpca(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
	}
	for _, dir := range []string{data, restored} {
		var names []string
		for _, sub := range []string{".", "tls", "s3"} {
			entries, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range entries {
				names = append(names, filepath.Join(sub, e.Name()))
			}
		}
		for _, name := range names {
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			uid := fi.Sys().(*syscall.Stat_t).Uid
			switch want := uint32(nobody); {
			case dir == data && (name == "linked" || name == "moved" || name == filepath.Join("tls", "pointer")):
				want = 0
				fallthrough
			default:
				if uid != want {
					t.Errorf("%s belongs to user %d, want %d", filepath.Join(dir, name), uid, want)
				}
			}
		}
	}
	if fi, err := os.Stat(victim); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("root's file linked in was given away: %v", err)
	}
	// A master key file of the server's user outside the folder stays
	// its, rotated and wrapped.
	key, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(outside, key, 0o600); err != nil || os.Chown(outside, nobody, nobody) != nil {
		t.Fatal(err)
	}
	if out, err := runOpenpca(t, "master-key", "rotate", "--data-dir", data, "--master-key-file", outside); err != nil {
		t.Fatalf("master-key rotate: %v\n%s", err, out)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Errorf("the master key file outside the folder, rotated: %v, %v", fi.Sys(), err)
	}
}
