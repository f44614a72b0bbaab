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
	"syscall"
)

// Max is the most Read takes: far more than any such file holds.
const Max = 16 << 20

// Read returns the contents of the file at path, refusing one of more than
// Max bytes.
func Read(path string) ([]byte, error) { return ReadUpTo(path, Max) }

// ReadUpTo returns the contents of the file at path, refusing one of more
// than max bytes, for files that may be larger than most such (a CRL).
func ReadUpTo(path string, max int64) ([]byte, error) {
	f, err := Open(path)
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

// Open opens the regular file at path for reading, refusing anything
// else: a named pipe given for a key's or a report's file had the command
// wait in open(2) for a writer, for good, past SIGTERM (which the
// commands catch, to end their work cleanly).
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a file (%s)", path, fi.Mode().Type())
	}
	if err == nil {
		// Reads of a regular file do not block; the flag is cleared all
		// the same, as the file is handed on.
		err = syscall.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
