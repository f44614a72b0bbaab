package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// supersede has the database in data look migrated by a later version.
func supersede(data string) error {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "openpca.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ((SELECT MAX(version) + 1 FROM schema_migrations), 0)`)
	return err
}

// TestServeStopsWhenSuperseded: once a later version has migrated its
// database, a running server stops, saying why, with a failure status (a
// supervisor that starts it again sees it refused at once).
func TestServeStopsWhenSuperseded(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, data, nil)
	if err := supersede(data); err != nil {
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

// TestBackupOfAnEarlierVersion: a backup of a database of a version
// before the operator log's, as the README has one taken before an
// upgrade, says so plainly rather than with the SQL error of a missing
// table.
func TestBackupOfAnEarlierVersion(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	startServer(t, data, nil).stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "openpca.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE operator_actions`, `DELETE FROM schema_migrations WHERE version >= 19`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, err := exec.Command(binary, "backup", "--data-dir", data, "--to", filepath.Join(t.TempDir(), "openpca.backup")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "earlier version, backed up as it is") || strings.Contains(string(out), "SQL") {
		t.Errorf("openpca backup of a database without an operator log: %v\n%s", err, out)
	}
}
