package smallfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small, large := filepath.Join(dir, "small"), filepath.Join(dir, "large")
	if err := os.WriteFile(small, []byte("key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(large, make([]byte, Max+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want, fails string
	}{
		{small, "key\n", ""},
		{large, "", "more than 16 MiB"},
		{"/dev/zero", "", "is not a file"},
		{filepath.Join(dir, "none"), "", "no such file"},
	} {
		b, err := Read(c.path)
		if c.fails == "" && (err != nil || string(b) != c.want) || c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)) {
			t.Errorf("%s: %q, %v", c.path, b, err)
		}
	}
}
