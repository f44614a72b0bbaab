package main

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestAdminRefusesForeignMasterKey runs the operator commands on a
// server's data folder with a master key other than the one its database
// was set up with: each refuses, as serve does, and writes nothing.
func TestAdminRefusesForeignMasterKey(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	other := make([]byte, 32)
	rand.Read(other)
	foreign := base64.StdEncoding.EncodeToString(other)
	for _, args := range [][]string{
		{"keys", "create", "--account", app.DefaultAccountID},
		{"keys", "list"},
		{"keys", "revoke", testenv.AccessKeyID},
		{"accounts", "create", "--id", "999988887777"},
	} {
		out, err := runOpenpca(t, append(args, "--data-dir", data, "--master-key", foreign)...)
		if err == nil || !strings.Contains(err.Error(), "master key") {
			t.Errorf("openpca %s with a foreign master key: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := runOpenpca(t, "keys", "list", "--data-dir", data)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "active") {
		t.Errorf("after the refused commands, the keys are:\n%s", out)
	}
	if out, _ := runOpenpca(t, "accounts", "list", "--data-dir", data); strings.Contains(out, "999988887777") {
		t.Errorf("an account was created with a foreign master key:\n%s", out)
	}
}
