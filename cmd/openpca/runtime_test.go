package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
			// The shell moves itself into the cgroup, then becomes the
			// server: it reads its limit as it starts.
			cmd := exec.Command("sh", "-c", `echo $$ > "$1" && exec "$2" serve --listen "$3" --data-dir "$4"`,
				"sh", filepath.Join(cgroup, "cgroup.procs"), binary, listenAny, t.TempDir())
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "AUTOMEMLIMIT=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, tc.env...)
			cmd.Env = append(cmd.Env, "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
			got := ""
			soft := regexp.MustCompile(`soft memory limit.*"bytes":(\d+)`)
			for _, line := range startLog(t, cmd) {
				if m := soft.FindStringSubmatch(line); m != nil {
					got = m[1]
				}
			}
			if got != tc.want {
				t.Errorf("soft memory limit %q, want %q", got, tc.want)
			}
		})
	}
}

// startLog starts cmd, an openpca server, stopped at the end of the test,
// and returns what it logged until it served.
func startLog(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
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
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var log []string
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("openpca exited")
			}
			log = append(log, line)
			if strings.Contains(line, "serving the AWS Private CA API") {
				go func() {
					for range lines { // the server must not block on its log
					}
				}()
				return log
			}
		case <-deadline:
			t.Fatal("openpca did not start")
		}
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

func TestProcs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		def, cpus   int
		env, sqlite bool
		want        int
	}{
		{"SQLite", 2, 2, false, true, 4},
		{"SQLite, many CPUs", 16, 16, false, true, 18},
		{"PostgreSQL", 2, 2, false, false, 2},
		{"GOMAXPROCS set", 3, 2, true, true, 3},
		{"GOMAXPROCS set to the CPUs", 2, 2, true, true, 2},
		{"a CPU limit below the CPUs", 4, 16, false, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := procs(tc.def, tc.cpus, tc.env, tc.sqlite); got != tc.want {
				t.Errorf("procs(%d, %d, %v, %v) = %d, want %d", tc.def, tc.cpus, tc.env, tc.sqlite, got, tc.want)
			}
		})
	}
}

// TestServerProcs checks that a server on SQLite takes its spare Ps, and
// that GOMAXPROCS wins.
func TestServerProcs(t *testing.T) {
	if _, ok := os.LookupEnv("GOMAXPROCS"); ok || runtime.GOMAXPROCS(0) < runtime.NumCPU() {
		t.Skip("GOMAXPROCS is set, or a CPU limit holds this process below its CPUs")
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string // the GOMAXPROCS logged; "" is none
	}{
		{"default", nil, strconv.Itoa(runtime.NumCPU() + spareProcs)},
		{"GOMAXPROCS wins", []string{"GOMAXPROCS=3"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
			cmd.Env = append(os.Environ(), tc.env...)
			cmd.Env = append(cmd.Env, "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
			got := ""
			logged := regexp.MustCompile(`"GOMAXPROCS":(\d+)`)
			for _, line := range startLog(t, cmd) {
				if m := logged.FindStringSubmatch(line); m != nil {
					got = m[1]
				}
			}
			if got != tc.want {
				t.Errorf("GOMAXPROCS logged %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPortTheSystemChose: a server told to listen on port 0 names the
// port it was given in its public URL, which certificates carry, not 0,
// and the host as it was given.
func TestPortTheSystemChose(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "localhost"} {
		cmd := exec.Command(binary, "serve", "--listen", host+":0", "--data-dir", t.TempDir())
		cmd.Env = append(os.Environ(), "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
		var serving struct {
			URL       string `json:"url"`
			PublicURL string `json:"public_url"`
		}
		for _, line := range startLog(t, cmd) {
			if strings.Contains(line, "serving the AWS Private CA API") {
				if err := json.Unmarshal([]byte(line), &serving); err != nil {
					t.Fatal(err)
				}
			}
		}
		port := serving.URL[strings.LastIndex(serving.URL, ":"):]
		if serving.PublicURL != "http://"+host+port || port == ":0" {
			t.Errorf("--listen %s:0: serving at %q with the public URL %q", host, serving.URL, serving.PublicURL)
		}
	}
}

// TestNoCoreDumps: the server's memory, which holds the master key and
// CA keys, goes into no core (internal/nodump): its core limit is 0, hard
// too, unless GOTRACEBACK=crash asks for a core, when it keeps the limit
// it was started with.
func TestNoCoreDumps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("core dumps are turned off on Linux")
	}
	for _, tc := range []struct {
		name     string
		env      []string
		zeroHard bool
	}{
		{"default", nil, true},
		{"GOTRACEBACK=crash", []string{"GOTRACEBACK=crash"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server starts with this process's limit, which it must
			// lower to 0 where it is not already.
			var own syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &own); err != nil {
				t.Fatal(err)
			}
			if own.Max == 0 {
				t.Skip("this process's hard core limit is 0 already")
			}
			cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
			cmd.Env = append(os.Environ(), tc.env...)
			cmd.Env = append(cmd.Env, "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
			startLog(t, cmd)
			limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(limits)
			if m == nil {
				t.Fatalf("no core limit in:\n%s", limits)
			}
			if soft, hard := string(m[1]), string(m[2]); tc.zeroHard != (soft == "0" && hard == "0") {
				t.Errorf("core limit %s (hard %s); want 0 and 0: %v", soft, hard, tc.zeroHard)
			}
		})
	}
}
