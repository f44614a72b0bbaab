package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeStopsWhenSuperseded: once a later version has migrated its
// database, a running server stops, saying why, with a failure status (a
// supervisor that starts it again sees it refused at once).
func TestServeStopsWhenSuperseded(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, data, nil)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "openpca.db")+"?_pragma=busy_timeout(10000)")
	if err == nil {
		defer db.Close()
		_, err = db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ((SELECT MAX(version) + 1 FROM schema_migrations), 0)`)
	}
	if err != nil {
		s.stop(t)
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(s.logs(), "a later version of OpenPCA has migrated the database") {
			t.Errorf("the server exited with %v:\n%s", err, s.logs())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-exited
		t.Fatalf("the server ran on for 30 s on a database a later version migrated:\n%s", s.logs())
	}
}
