package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// listenAny is the address the tests' servers listen on: the system picks
// a free port, and servedURL reads it from the server's log. A port found
// free beforehand is not reserved: another test's server could take it
// before this one binds it.
const listenAny = "127.0.0.1:0"

// servedRE finds the URL in a JSON or text log line.
var servedRE = regexp.MustCompile(`"url":"([^"]+)"|\burl=(\S+)`)

// servedURL waits for the line msg in a server's log, which it writes once
// it listens, and returns the URL the line names. It fails the test if
// exited says the server has stopped, or after 30 s.
func servedURL(t testing.TB, logs func() string, msg string, exited func() bool) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		gone := exited() // before the log is read: its last lines may come just before it exits
		text := logs()
		for line := range strings.Lines(text) {
			if m := servedRE.FindStringSubmatch(line); m != nil && strings.Contains(line, msg) {
				return m[1] + m[2]
			}
		}
		if gone || time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", msg, text)
		}
	}
}

// closed says, for servedURL, whether ch is closed.
func closed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// serveInProcess runs openpca serve with args in the test's process until
// the test ends, and returns its log and a function that says whether it
// has exited.
func serveInProcess(t *testing.T, args ...string) (*testenv.SyncBuffer, func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", listenAny, "--data-dir", t.TempDir(), "--log-format", "text"}, args...),
			&logs, &logs, func(string) (string, bool) { return "", false })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("openpca serve: %v\n%s", err, logs.String())
		}
	})
	return &logs, func() bool { return len(done) > 0 }
}

// TestRevocationListen: with --revocation-listen, the OCSP responder is
// served there too, in plain HTTP beside the API's HTTPS, certificates
// name it there (the port the system chose; for every address, the
// public URL's host), and nothing else is served there.
func TestRevocationListen(t *testing.T) {
	logs, exited := serveInProcess(t, "--tls-self-signed", "--revocation-listen", listenAny)
	revocation := servedURL(t, logs.String, "serving the OCSP responder and local CRLs", exited)
	if !strings.HasPrefix(revocation, "http://127.0.0.1:") || !strings.Contains(logs.String(), "revocation_url="+revocation) {
		t.Errorf("served at %s, named in certificates as the log says:\n%s", revocation, logs.String())
	}
	for path, want := range map[string]int{"/ocsp/": http.StatusOK, "/healthz": http.StatusNotFound} {
		res, err := http.Get(revocation + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	// On every address, behind the public URL's host: certificates name
	// that host, not 0.0.0.0, which no relying party reaches.
	logs, exited = serveInProcess(t, "--public-url", "https://ca.example", "--revocation-listen", ":0")
	served := servedURL(t, logs.String, "serving the OCSP responder and local CRLs", exited)
	_, port, _ := strings.Cut(strings.TrimPrefix(served, "http://"), "]:")
	if !strings.Contains(logs.String(), "revocation_url=http://ca.example:"+port) {
		t.Errorf("served at %s; certificates name:\n%s", served, logs.String())
	}
}

// TestMetricsListen: with --metrics-listen, /metrics is served there, and
// not on the API's listener, which every account reaches.
func TestMetricsListen(t *testing.T) {
	logs, exited := serveInProcess(t, "--metrics-listen", listenAny)
	api := servedURL(t, logs.String, "serving the AWS Private CA API", exited)
	metrics := servedURL(t, logs.String, "serving the metrics", exited)
	get := func(url string) (int, string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			res, err := http.Get(url)
			if err == nil {
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v\n%s", url, err, logs.String())
			}
		}
	}
	if status, body := get(metrics); status != http.StatusOK || !strings.Contains(body, "openpca_certificate_authorities") {
		t.Errorf("--metrics-listen's /metrics: %d\n%.300s", status, body)
	}
	if status, body := get(api + "/metrics"); status == http.StatusOK || strings.Contains(body, "openpca_") {
		t.Errorf("the API's /metrics: %d\n%.300s", status, body)
	}
}

// TestFlagsFromEnvironment: a flag takes the command line's value, or
// else its environment variable's; a flag given several times does not
// add the two (the environment's trusted proxies stayed trusted beside
// the command line's).
func TestFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{"OPENPCA_LIST": "from-env", "OPENPCA_ONE": "env-one", "OPENPCA_NUMBER": "not a number"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		args       []string
		positional string
		list, one  string
		err        string
	}{
		{[]string{"--list", "a", "--list", "b", "--number", "1"}, "", "a,b", "env-one", ""},
		{[]string{"--one", "cli-one", "--number", "2", "positional"}, "ARG", "from-env", "cli-one", ""},
		{nil, "", "from-env", "env-one", "OPENPCA_NUMBER"},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var list []string
		fs.Func("list", "given several times", func(v string) error { list = append(list, v); return nil })
		one := fs.String("one", "default", "given once")
		fs.Int("number", 0, "a number")
		err := parseFlags(fs, tc.positional, tc.args, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error naming %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(list, ",") != tc.list || *one != tc.one {
			t.Errorf("%q: list %q, one %q, %v; want %q, %q", tc.args, list, *one, err, tc.list, tc.one)
		}
	}
}

// TestMasterKeyGivenTwice: a master key is given itself or as a file: the
// command line's wins over the environment's, and two given on the
// command line, or in the environment, are refused, by the server and by
// the operator's commands, rather than one of them taken.
func TestMasterKeyGivenTwice(t *testing.T) {
	const key, file = "OPENPCA_MASTER_KEY", "OPENPCA_MASTER_KEY_FILE"
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"serve", "--listen", listenAny, "--master-key-file", "other.key", "--master-key", "a2V5"}, nil},
		{[]string{"serve", "--listen", listenAny}, map[string]string{key: "a2V5", file: "other.key"}},
		{[]string{"operator-log"}, map[string]string{key: "a2V5", file: "other.key"}},
	} {
		args := append(append([]string{}, tc.args...), "--data-dir", t.TempDir())
		err := run(t.Context(), args, io.Discard, io.Discard, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), "two master keys") {
			t.Errorf("%q with %v: %v, want both keys refused", tc.args, tc.env, err)
		}
	}
	for _, tc := range []struct {
		args              []string
		env               map[string]string
		wantKey, wantFile string
	}{
		{[]string{"--master-key-file", "new.key"}, map[string]string{key: "b2xk"}, "", "new.key"},
		{[]string{"--master-key", "bmV3"}, map[string]string{file: "old.key"}, "bmV3", ""},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		gotKey, gotFile := fs.String("master-key", "", ""), fs.String("master-key-file", "", "")
		if err := parseFlags(fs, "", tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }); err != nil || *gotKey != tc.wantKey || *gotFile != tc.wantFile {
			t.Errorf("%q with %v: key %q, file %q, %v; want %q, %q", tc.args, tc.env, *gotKey, *gotFile, err, tc.wantKey, tc.wantFile)
		}
	}
}

// TestServeFlagsRefused: serve refuses, naming the flag, values that
// would otherwise start a server that misbehaves.
func TestServeFlagsRefused(t *testing.T) {
	for _, tc := range []struct{ args []string }{
		{[]string{"--shutdown-timeout", "-1s"}},
		{[]string{"--public-url", "https://ca.example/?"}},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", listenAny}, tc.args...)
		err := run(t.Context(), args, io.Discard, io.Discard, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.args[0]) {
			t.Errorf("%q: %v, want an error naming %s", tc.args, err, tc.args[0])
		}
	}
}
