package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSecretFile: a secret's file (here a PIN's) is read without its
// newline, and a file others may read is warned of.
func TestReadSecretFile(t *testing.T) {
	for _, tc := range []struct {
		mode  os.FileMode
		warns bool
	}{{0o600, false}, {0o644, true}, {0o640, true}} {
		path := filepath.Join(t.TempDir(), "pin")
		if err := os.WriteFile(path, []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, tc.mode)
		var stderr bytes.Buffer
		pin, err := readSecretFile("--pkcs11-pin-file", path, &stderr)
		if err != nil || pin != "1234" {
			t.Errorf("mode %v: %q, %v", tc.mode, pin, err)
		}
		if got := strings.Contains(stderr.String(), "can be read by others"); got != tc.warns {
			t.Errorf("mode %v: warned %v, want %v: %s", tc.mode, got, tc.warns, stderr.String())
		}
	}
	if _, err := readSecretFile("--pkcs11-pin-file", filepath.Join(t.TempDir(), "missing"), &bytes.Buffer{}); err == nil {
		t.Error("a PIN file that is not there")
	}
}
