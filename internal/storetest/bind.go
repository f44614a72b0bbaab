package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlstore"
)

// BoundAccessKeys checks the upgrade that binds access keys' secrets to
// their accounts (sqlstore.Binder): open opens the database with bind,
// migrating it; undo takes the migration's record out, as the version
// before had none. Each key's secret is given to bind once, with the
// key's account as the database has it at the upgrade, and a secret bind
// cannot open is left as it was. Once the migration is recorded, no
// start binds again; and an upgrade of a database that holds keys, with
// nothing to bind them, fails.
func BoundAccessKeys(t *testing.T, open func(t *testing.T, bind sqlstore.Binder) (*sqlstore.DB, error), undo func()) {
	t.Helper()
	db, err := open(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, a := range []string{"111122223333", "444455556666"} {
		if err := db.CreateAccount(ctx, &openpca.Account{ID: a, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []*openpca.AccessKey{
		{ID: "OPCABINDFIRST", AccountID: "111122223333", SealedSecret: []byte("unbound:OPCABINDFIRST"), CreatedAt: now},
		{ID: "OPCABINDMOVED", AccountID: "444455556666", SealedSecret: []byte("unbound:OPCABINDMOVED"), CreatedAt: now},
		{ID: "OPCABINDOTHER", AccountID: "111122223333", SealedSecret: []byte("sealed with another key"), CreatedAt: now},
	}
	for _, k := range keys {
		if err := db.PutAccessKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.InitSetting(ctx, sqlstore.MasterKeyCheck, []byte("the check")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	undo()
	if db, err := open(t, nil); err == nil || !strings.Contains(err.Error(), "master key") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("an upgrade with access keys and nothing to bind them: %v", err)
	}
	calls := 0
	bind := func(check []byte) (sqlstore.Bind, error) {
		if string(check) != "the check" {
			return nil, fmt.Errorf("the check given: %q", check)
		}
		return func(accountID, keyID string, sealed []byte) ([]byte, error) {
			calls++
			if string(sealed) != "unbound:"+keyID {
				return nil, errors.New("does not open")
			}
			return []byte("bound:" + accountID + ":" + keyID), nil
		}, nil
	}
	// The master key that does not open the check binds nothing.
	wrongKey := func([]byte) (sqlstore.Bind, error) {
		return nil, errors.New("another master key")
	}
	if db, err := open(t, wrongKey); err == nil || !strings.Contains(err.Error(), "another master key") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("an upgrade with a master key that does not open the check: %v", err)
	}
	for _, want := range []int{3, 0} { // and once done, again
		calls = 0
		db, err := open(t, bind)
		if err != nil {
			t.Fatal(err)
		}
		if calls != want {
			t.Errorf("the upgrade's binds: %d, want %d", calls, want)
		}
		for _, k := range keys {
			got, err := db.FindAccessKey(ctx, k.ID)
			want := k.SealedSecret
			if bytes.HasPrefix(want, []byte("unbound:")) {
				want = []byte("bound:" + k.AccountID + ":" + k.ID)
			}
			if err != nil || !bytes.Equal(got.SealedSecret, want) {
				t.Errorf("key %s after the upgrade: %q, %v; want %q", k.ID, got.SealedSecret, err, want)
			}
		}
		db.Close()
	}
}

// Unopened is a Binder that opens no secret, for upgrades of databases
// whose keys' secrets are not sealed (made up by a test): it leaves them
// as they are.
func Unopened([]byte) (sqlstore.Bind, error) {
	return func(string, string, []byte) ([]byte, error) {
		return nil, errors.New("a made-up secret, sealed with no key")
	}, nil
}
