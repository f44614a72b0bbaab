package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// TestServerDiesMakingATokenKey: a server killed while it creates a CA
// whose key is in a PKCS#11 token leaves no key in the token that neither
// a CA nor a record of a key made names, for a purge to destroy. The
// database's writer is held meanwhile, so that the server waits on its
// writes: a key made before its record is written would be in the token,
// the record nowhere, when the server dies.
func TestServerDiesMakingATokenKey(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	pin := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pin, []byte(hsm.PIN), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, addr, data := startServe(t, true, "--key-store", "pkcs11", "--pkcs11-module", testenv.SoftHSMModule,
		"--pkcs11-token-label", hsm.Label, "--pkcs11-pin-file", pin)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "openpca.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	writer, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: hsm.Label, Pin: hsm.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer token.Close()
	keys := func() []crypto11.Signer {
		keys, err := token.FindAllKeyPairs()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}

	client := testenv.NewClientWith("http://"+addr, http.DefaultTransport.(*http.Transport).Clone(), testenv.AccessKeyID, testenv.SecretAccessKey)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Dies making its key")})
	// Until the token holds a key, or the server has waited on the writer
	// long enough to have made one: it waits up to 10 s.
	for deadline := time.Now().Add(3 * time.Second); len(keys()) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := writer.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	for _, key := range keys() {
		id, err := token.GetAttribute(key, crypto11.CkaId)
		if err != nil {
			t.Fatal(err)
		}
		var named int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM key_destructions WHERE key_handle = ?1) + (SELECT count(*) FROM certificate_authorities WHERE key_handle = ?1)`,
			id.Value).Scan(&named); err != nil {
			t.Fatal(err)
		}
		if named != 1 {
			t.Errorf("the token holds a key under the id %q that %d records name, want 1", id.Value, named)
		}
	}
}
