// Package sqliteuri writes the URIs by which the SQLite driver opens
// database files.
package sqliteuri

import (
	"path/filepath"
	"strings"
)

// escape escapes what SQLite's URIs give a meaning to: a "?" starts the
// parameters, a "#" the fragment, and "%" an escape.
var escape = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// File is the URI of the database file at path, with no parameters. A path
// not escaped would be cut at a "?": a folder named "a?b" would get its
// database in "a", outside it.
func File(path string) string {
	// Cleaned, a path cannot start with "//", which would make an authority.
	return "file:" + escape.Replace(filepath.Clean(path))
}
