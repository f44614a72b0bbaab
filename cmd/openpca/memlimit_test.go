package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// TestMemoryLimitFromCgroup runs the server in a memory cgroup of its own,
// limited to 800 MiB, and checks that it gives the garbage collector a
// soft limit of 90% of that; with GOMEMLIMIT set, it leaves it alone.
func TestMemoryLimitFromCgroup(t *testing.T) {
	const limit = 800 << 20
	for _, tc := range []struct {
		name string
		env  []string
		want string // the soft limit logged; "" is none
	}{
		{"from the cgroup", nil, "754974720"}, // 90% of 800 MiB
		{"GOMEMLIMIT wins", []string{"GOMEMLIMIT=200MiB"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cgroup := newMemoryCgroup(t, limit)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			// The shell moves itself into the cgroup, then becomes the
			// server: it reads its limit as it starts.
			cmd := exec.Command("sh", "-c", `echo $$ > "$1" && exec "$2" serve --listen "$3" --data-dir "$4"`,
				"sh", filepath.Join(cgroup, "cgroup.procs"), binary, addr, t.TempDir())
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "AUTOMEMLIMIT=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, tc.env...)
			cmd.Env = append(cmd.Env, "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
			})
			// The server logs its soft limit, if any, before it serves.
			lines := make(chan string)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			soft := regexp.MustCompile(`soft memory limit.*"bytes":(\d+)`)
			got := ""
			deadline := time.After(30 * time.Second)
		read:
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatal("openpca exited")
					}
					if m := soft.FindStringSubmatch(line); m != nil {
						got = m[1]
					}
					if strings.Contains(line, "serving the AWS Private CA API") {
						break read
					}
				case <-deadline:
					t.Fatal("openpca did not start")
				}
			}
			go func() {
				for range lines { // the server must not block on its log
				}
			}()
			if got != tc.want {
				t.Errorf("soft memory limit %q, want %q", got, tc.want)
			}
		})
	}
}

// newMemoryCgroup makes a memory cgroup limited to limit bytes, removed
// at the end of the test, and returns its folder. It skips the test where
// it cannot (not root, or no writable cgroup file system).
func newMemoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	name := fmt.Sprintf("openpca-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	// cgroup v2: one hierarchy, whose root must hand the memory
	// controller down.
	dir, file := filepath.Join("/sys/fs/cgroup", name), "memory.max"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil { // cgroup v1
		dir, file = filepath.Join("/sys/fs/cgroup/memory", name), "memory.limit_in_bytes"
	} else {
		os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup (this test needs root and a writable cgroup file system): %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		t.Skipf("cannot limit a memory cgroup: %v", err)
	}
	return dir
}
