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
	"time"
)

// Max is the most Read takes: far more than any such file holds.
const Max = 16 << 20

// Read returns the contents of the file at path, refusing one of more than
// Max bytes.
func Read(path string) ([]byte, error) { return ReadUpTo(path, Max) }

// ReadUpTo returns the contents of the file at path, refusing one of more
// than max bytes, for files that may be larger than most such (a CRL).
// A pipe is read too (a secret given as <(...), or piped to /dev/stdin),
// within pipeTime.
func ReadUpTo(path string, max int64) ([]byte, error) {
	f, err := open(path, true)
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

// pipeTime bounds the reading of a pipe.
const pipeTime = 10 * time.Second

// Open opens the regular file at path for reading, refusing anything
// else, for a file read more than once (a report's).
func Open(path string) (*os.File, error) { return open(path, false) }

// open opens path for reading without waiting: a named pipe given for a
// key's or a report's file had the command wait in open(2) for a writer,
// for good, past SIGTERM (which the commands catch, to end their work
// cleanly). A regular file is read as it is; a pipe, if pipes, through
// Go's poller, within pipeTime (one with no writer reads as empty); any
// other kind of file is refused.
func open(path string, pipes bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.Mode().IsRegular():
		err = syscall.SetNonblock(int(f.Fd()), false)
	case pipes && fi.Mode()&os.ModeNamedPipe != 0:
		err = f.SetReadDeadline(time.Now().Add(pipeTime))
	default:
		err = fmt.Errorf("%s is not a file (%s)", path, kind(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// kind says what a file of mode is, that is not a regular file.
func kind(mode os.FileMode) string {
	switch {
	case mode.IsDir():
		return "a folder"
	case mode&os.ModeNamedPipe != 0:
		return "a pipe"
	case mode&os.ModeDevice != 0:
		return "a device"
	case mode&os.ModeSocket != 0:
		return "a socket"
	}
	return mode.Type().String()
}
