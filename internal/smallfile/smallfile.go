// Package smallfile reads the files an operator names that hold a few
// bytes or kilobytes (a key, a PIN, a policy, a CA bundle) within a bound:
// such a path mistyped, or handed over as /dev/zero, was read until
// memory ran out (23 GB, past SIGTERM, until the kernel killed the
// command).
package smallfile

import (
	"fmt"
	"io"
	"os"
)

// Max is the most Read takes: far more than any such file holds.
const Max = 16 << 20

// Read returns the contents of the file at path, refusing one of more than
// Max bytes.
func Read(path string) ([]byte, error) { return ReadUpTo(path, Max) }

// ReadUpTo returns the contents of the file at path, refusing one of more
// than max bytes, for files that may be larger than most such (a CRL).
func ReadUpTo(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s holds more than %d MiB, more than such a file does", path, max>>20)
	}
	return b, nil
}
