package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

func testAccountsAndKeys(t *testing.T, s openpca.Store) {
	t0 := now()
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "222233334444", Name: "b", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "111122223333", Name: "a", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "111122223333", CreatedAt: t0}); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a second account with one id: %v", err)
	}
	if a, err := s.FindAccount(ctx, "111122223333"); err != nil || a.Name != "a" || !a.CreatedAt.Equal(t0) {
		t.Errorf("FindAccount = %+v, %v", a, err)
	}
	if _, err := s.FindAccount(ctx, "999999999999"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a missing account: %v", err)
	}
	if list, err := s.ListAccounts(ctx); err != nil || len(list) != 2 || list[0].ID != "111122223333" {
		t.Errorf("ListAccounts = %v, %v", list, err)
	}
	key := &openpca.AccessKey{ID: "OPCATESTKEY1", AccountID: "111122223333", SealedSecret: []byte{1, 2}, CreatedAt: t0}
	if err := s.PutAccessKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCATESTKEY2", AccountID: "999999999999", SealedSecret: []byte{3}, CreatedAt: t0}); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a key of a missing account: %v", err)
	}
	key.SealedSecret = []byte{9}
	if err := s.PutAccessKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindAccessKey(ctx, key.ID); err != nil || string(got.SealedSecret) != "\x09" || got.AccountID != "111122223333" || !got.RevokedAt.IsZero() {
		t.Errorf("FindAccessKey after replacing = %+v, %v", got, err)
	}
	readOnly := []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}
	if err := s.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCATESTKEY3", AccountID: "222233334444", SealedSecret: []byte{4}, CreatedAt: t0.Add(time.Second), Policies: readOnly}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindAccessKey(ctx, "OPCATESTKEY3"); err != nil || !reflect.DeepEqual(got.Policies, readOnly) {
		t.Errorf("a key with a policy reads back as %+v, %v", got, err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); got.Policies != nil {
		t.Errorf("a key without policies reads back with %v", got.Policies)
	}
	inline := []openpca.KeyPolicy{{Name: "issue", Document: `{"Statement":[]}`}, {Name: "ReadOnly", Managed: true}}
	set := func(policies []openpca.KeyPolicy) func(*openpca.AccessKey) ([]openpca.KeyPolicy, error) {
		return func(*openpca.AccessKey) ([]openpca.KeyPolicy, error) { return policies, nil }
	}
	if got, err := s.UpdateKeyPolicies(ctx, "OPCATESTKEY3", set(inline)); err != nil || !reflect.DeepEqual(got, inline) {
		t.Fatalf("UpdateKeyPolicies: %+v, %v", got, err)
	}
	if got, _ := s.FindAccessKey(ctx, "OPCATESTKEY3"); !reflect.DeepEqual(got.Policies, inline) {
		t.Errorf("after UpdateKeyPolicies the key has %+v", got.Policies)
	}
	if _, err := s.UpdateKeyPolicies(ctx, "OPCANOSUCHKEY", set(inline)); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("policies of a missing key: %v", err)
	}
	refused := errors.New("refused")
	if _, err := s.UpdateKeyPolicies(ctx, "OPCATESTKEY3", func(*openpca.AccessKey) ([]openpca.KeyPolicy, error) { return nil, refused }); err != refused {
		t.Errorf("an update that refuses: %v", err)
	}
	if got, _ := s.FindAccessKey(ctx, "OPCATESTKEY3"); !reflect.DeepEqual(got.Policies, inline) {
		t.Errorf("after an update that refused, the key has %+v", got.Policies)
	}
	// Updates at once each see the others': none is lost.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := s.UpdateKeyPolicies(ctx, "OPCATESTKEY3", func(k *openpca.AccessKey) ([]openpca.KeyPolicy, error) {
				return append(slices.Clone(k.Policies), openpca.KeyPolicy{Name: fmt.Sprint("p", i), Document: `{"Statement":[]}`}), nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := s.FindAccessKey(ctx, "OPCATESTKEY3"); len(got.Policies) != len(inline)+8 {
		t.Errorf("after 8 updates at once, each adding a policy, the key has %d policies, want %d", len(got.Policies), len(inline)+8)
	}
	if _, err := s.UpdateKeyPolicies(ctx, "OPCATESTKEY3", set(inline)); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListAccessKeys(ctx, "111122223333"); len(list) != 1 {
		t.Errorf("keys of one account: %d", len(list))
	}
	if list, _ := s.ListAccessKeys(ctx, ""); len(list) != 2 {
		t.Errorf("keys of every account: %d", len(list))
	}
	if err := s.RevokeAccessKey(ctx, key.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAccessKey(ctx, key.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked at %v, want the first revocation's time", got.RevokedAt)
	}
	// Storing the key again, as an unrevoked key with a new secret, leaves
	// it revoked.
	unrevoked := *key
	unrevoked.RevokedAt, unrevoked.SealedSecret = time.Time{}, []byte{9}
	if err := s.PutAccessKey(ctx, &unrevoked); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("a revoked key stored again is revoked at %v, want %v", got.RevokedAt, t0.Add(time.Minute))
	}
	if err := s.RevokeAccessKey(ctx, "OPCANOSUCHKEY", t0); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("revoking a missing key: %v", err)
	}
}

// testSharingAndPermissions: a CA's policy and the accounts it names are
// kept with it, and other accounts list it; permissions are kept, listed
// in pages and removed; purging the CA removes both.
func testSharingAndPermissions(t *testing.T, s openpca.Store) {
	t0 := now()
	shared, other := create(t, s, newCA(account, t0)), create(t, s, newCA(account, t0.Add(time.Second)))
	shared.Policy, shared.SharedWith = `{"Statement":[]}`, []string{"222233334444", "333344445555"}
	if err := s.UpdateCA(ctx, shared, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindCA(ctx, account, shared.ID); err != nil || got.Policy != shared.Policy {
		t.Errorf("the CA's policy reads back as %q, %v", got.Policy, err)
	}
	for acct, want := range map[string]int{"222233334444": 1, "333344445555": 1, "444455556666": 0, account: 0} {
		if list, err := s.ListSharedCAs(ctx, acct, openpca.CACursor{}, 10); err != nil || len(list) != want || want == 1 && list[0].ID != shared.ID {
			t.Errorf("CAs shared with %s: %d, %v; want %d", acct, len(list), err, want)
		}
	}
	// An update that keeps the policy keeps the sharing, though the record
	// read back does not carry the accounts.
	again, _ := s.FindCA(ctx, account, shared.ID)
	again.Tags = []openpca.Tag{{Key: "k", Value: "v"}}
	if err := s.UpdateCA(ctx, again, nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 1 {
		t.Errorf("after a tag change, %d CAs are shared", len(list))
	}
	again.Policy, again.SharedWith = "", nil
	if err := s.UpdateCA(ctx, again, nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 0 {
		t.Errorf("after the policy was removed, %d CAs are shared", len(list))
	}

	perm := func(principal, source string) *openpca.CAPermission {
		return &openpca.CAPermission{CAID: other.ID, Principal: principal, SourceAccount: source,
			Actions: []openpca.ActionType{openpca.ActionTypeIssueCertificate, openpca.ActionTypeGetCertificate}, CreatedAt: t0}
	}
	for _, p := range []*openpca.CAPermission{perm("b", "1"), perm("a", "2"), perm("a", "1")} {
		if err := s.CreatePermission(ctx, p, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreatePermission(ctx, perm("a", "1"), 10); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a permission again: %v", err)
	}
	if err := s.CreatePermission(ctx, perm("c", "1"), 3); !errors.Is(err, openpca.ErrLimitExceeded) {
		t.Errorf("a permission past the limit: %v", err)
	}
	page, err := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{}, 2)
	if err != nil || len(page) != 2 || page[0].Principal != "a" || page[0].SourceAccount != "1" || page[1].SourceAccount != "2" ||
		!reflect.DeepEqual(page[0].Actions, perm("a", "1").Actions) || !page[0].CreatedAt.Equal(t0) {
		t.Fatalf("first page %+v, %v", page, err)
	}
	if rest, _ := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{Principal: "a", SourceAccount: "2"}, 2); len(rest) != 1 || rest[0].Principal != "b" {
		t.Errorf("second page %+v", rest)
	}
	if err := s.DeletePermission(ctx, other.ID, "a", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePermission(ctx, other.ID, "a", "2"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}

	other.Policy, other.SharedWith = `{"Statement":[]}`, []string{"222233334444"}
	other.SetStatus(openpca.CertificateAuthorityStatusDeleted, t0)
	other.RestorableUntil = t0
	if err := s.UpdateCA(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeCAs(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 0 {
		t.Errorf("a purged CA is still shared")
	}
	if list, _ := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{}, 10); len(list) != 0 {
		t.Errorf("a purged CA still has %d permissions", len(list))
	}
}

// testBuckets: a bucket belongs to at most one account, which must
// exist; its record can be forgotten.
func testBuckets(t *testing.T, s openpca.Store) {
	t0 := now()
	for _, id := range []string{"111122223333", "222233334444"} {
		if err := s.CreateAccount(ctx, &openpca.Account{ID: id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FindBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a bucket without an owner: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "999999999999", CreatedAt: t0}); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a bucket of a missing account: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "222233334444", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "222233334444", CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Errorf("the owner's bucket again: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "111122223333", CreatedAt: t0}); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("another account's bucket: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "crls", AccountID: "111122223333", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.FindBucket(ctx, "reports"); err != nil || b.AccountID != "222233334444" || !b.CreatedAt.Equal(t0) {
		t.Errorf("FindBucket = %+v, %v", b, err)
	}
	if list, err := s.ListBuckets(ctx); err != nil || len(list) != 2 || list[0].Name != "crls" || list[1].Name != "reports" {
		t.Errorf("ListBuckets = %v, %v", list, err)
	}
	if owner, err := openpca.BucketOwner(ctx, s, "unrecorded", "111122223333"); err != nil || owner != "111122223333" {
		t.Errorf("the owner of a bucket without a record: %q, %v", owner, err)
	}
	if err := s.DeleteBucket(ctx, "reports"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}
	if _, err := s.FindBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a deleted bucket record: %v", err)
	}
}

// testSettings: of concurrent first writers of a setting, one wins and all
// read its value; later writers and readers read it too.
func testSettings(t *testing.T, s openpca.Store) {
	if none, err := s.Setting(ctx, "check"); err != nil || none != nil {
		t.Fatalf("a setting never written: %q, %v", none, err)
	}
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = s.InitSetting(ctx, "check", []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 1 || got[i][0] != got[0][0] {
			t.Fatalf("writers read different values: %v", got)
		}
	}
	if later, err := s.InitSetting(ctx, "check", []byte("other")); err != nil || string(later) != string(got[0]) {
		t.Errorf("a later writer read %q, %v", later, err)
	}
	if read, err := s.Setting(ctx, "check"); err != nil || string(read) != string(got[0]) {
		t.Errorf("a reader read %q, %v", read, err)
	}
	if other, err := s.InitSetting(ctx, "other", []byte("x")); err != nil || string(other) != "x" {
		t.Errorf("another setting: %q, %v", other, err)
	}
}

func testOperatorLog(t *testing.T, s openpca.Store) {
	if list, err := s.ListOperatorActions(ctx, 10); err != nil || len(list) != 0 {
		t.Fatalf("a new store's operator log: %v, %v", list, err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, command := range []string{"accounts create", "keys create", "keys revoke"} {
		a := &openpca.OperatorAction{At: at.Add(time.Duration(i) * time.Second), User: "root", Host: "ca1", Command: command, Detail: fmt.Sprint("detail ", i)}
		if err := s.RecordOperatorAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListOperatorActions(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Command != "keys revoke" || list[1].Command != "keys create" || !list[0].At.Equal(at.Add(2*time.Second)) ||
		list[0].User != "root" || list[0].Host != "ca1" || list[0].Detail != "detail 2" {
		t.Errorf("the 2 newest actions: %+v %+v", list[0], list[1])
	}
}
