package storetest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
)

func testCreateFind(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	if ca.Version != 1 {
		t.Errorf("version %d after create, want 1", ca.Version)
	}
	got, err := s.FindCA(ctx, account, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalCA(t, got, ca)
	if _, err := s.FindCA(ctx, account, uuid.NewString()); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("FindCA of a missing CA: %v, want ErrNotFound", err)
	}
}

func testIsolation(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	if _, err := s.FindCA(ctx, "999999999999", ca.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("another account found the CA: %v", err)
	}
	list, err := s.ListCAs(ctx, "999999999999", openpca.CACursor{}, 10)
	if err != nil || len(list) != 0 {
		t.Errorf("another account lists %d CAs (%v)", len(list), err)
	}
}

func testList(t *testing.T, s openpca.Store) {
	base := now()
	var ids []string
	for i := range 5 {
		ca := newCA(account, base.Add(time.Duration(i%3)*time.Second)) // ties on created_at
		create(t, s, ca)
		ids = append(ids, ca.ID)
	}
	create(t, s, newCA("999999999999", base))
	var got []string
	var cursor openpca.CACursor
	for {
		page, err := s.ListCAs(ctx, account, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ca := range page {
			got = append(got, ca.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		cursor = openpca.CACursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	// Order: created_at, then id.
	want := []string{ids[0], ids[3], ids[1], ids[4], ids[2]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v, want %v", got, want)
	}
}

func testUpdate(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	ca.SetStatus(openpca.CertificateAuthorityStatusActive, now())
	ca.Certificate, ca.CertificateChain, ca.Serial = []byte{7}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{8}}), "01:02"
	ca.NotBefore, ca.NotAfter = now(), now().Add(time.Hour)
	ca.Tags = append(ca.Tags, openpca.Tag{Key: "k", Value: "v"})
	ca.Revocation = nil
	// A certificate comes with the record of its import, and only so.
	imported, err := openpca.ImportUse(ca, "tester", "r", now())
	if err != nil {
		t.Fatal(err)
	}
	for _, use := range []*openpca.KeyUse{nil, openpca.CSRUse(ca, "tester", "r")} {
		if err := s.UpdateCA(ctx, ca, use); err == nil {
			t.Fatalf("a certificate written with %v as the record of its import", use)
		}
	}
	if err := s.UpdateCA(ctx, ca, imported); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastImport(ctx, account, ca.ID)
	if err != nil || last.Entry != 1 || last.LogSize != 2 || !bytes.Equal(last.Record, imported.Record) || last.CA.Version != 2 {
		t.Fatalf("last import: %+v, %v; want entry 1 of 2, its record, the CA's version 2", last, err)
	}
	var r openpca.KeyUseRecord
	if err := json.Unmarshal(last.Record, &r); err != nil {
		t.Fatal(err)
	}
	if err := openpca.CheckImported(last.CA, &r, last.Entry, last.LogSize); err != nil {
		t.Errorf("the stored CA is not its last import: %v", err)
	}
	// A renewal: the last import is the renewal's.
	ca.Certificate = []byte{9}
	renewed, err := openpca.ImportUse(ca, "tester", "r2", now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateCA(ctx, ca, renewed); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LastImport(ctx, account, ca.ID); err != nil || last.Entry != 2 || !bytes.Equal(last.Record, renewed.Record) {
		t.Fatalf("last import after a renewal: %+v, %v; want entry 2, the renewal's", last, err)
	}
	if ca.Version != 3 {
		t.Errorf("version %d after two updates, want 3", ca.Version)
	}
	got, err := s.FindCA(ctx, account, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != ca.Status || got.Serial != "01:02" || got.Revocation != nil || len(got.Tags) != 2 || !got.NotAfter.Equal(ca.NotAfter) || got.Version != 3 {
		t.Errorf("stored after update: %+v", got)
	}
	// A deletion's word that the CA's key may be destroyed is kept, and a
	// restoration drops it.
	for _, word := range [][]byte{[]byte("the word that its key may go"), nil} {
		ca.Destruction = word
		if err := s.UpdateCA(ctx, ca, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.FindCA(ctx, account, ca.ID); err != nil || !bytes.Equal(got.Destruction, word) {
			t.Errorf("the CA's word that its key may go, updated to %q: %+v, %v", word, got, err)
		}
	}
	missing := newCA(account, now())
	if err := s.UpdateCA(ctx, missing, nil); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("updating a missing CA: %v, want ErrNotFound", err)
	}
}

func testUpdateConflict(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	a, _ := s.FindCA(ctx, account, ca.ID)
	b, _ := s.FindCA(ctx, account, ca.ID)
	a.Tags = nil
	if err := s.UpdateCA(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	b.SetStatus(openpca.CertificateAuthorityStatusDeleted, now())
	if err := s.UpdateCA(ctx, b, nil); !errors.Is(err, openpca.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	got, _ := s.FindCA(ctx, account, ca.ID)
	if got.Status == openpca.CertificateAuthorityStatusDeleted {
		t.Error("a stale update was written")
	}
}

func testIdempotency(t *testing.T, s openpca.Store) {
	t0 := now()
	token := func(accountID string, at time.Time) openpca.IdempotencyToken {
		return openpca.IdempotencyToken{AccountID: accountID, Operation: "CreateCertificateAuthority", Token: "tok", Now: at, Since: at.Add(-5 * time.Minute)}
	}
	first := newCA(account, t0)
	got, err := createCA(s, first, token(account, t0), 1000)
	if err != nil || got.ID != first.ID {
		t.Fatalf("first create: %v, %v", got, err)
	}
	second := newCA(account, t0.Add(time.Minute))
	got, err = createCA(s, second, token(account, t0.Add(time.Minute)), 1000)
	if err != nil || got.ID != first.ID {
		t.Fatalf("retry within the window returned %v (%v), want the first CA", got, err)
	}
	if _, err := s.FindCA(ctx, account, second.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Error("the retry stored a second CA")
	}
	other := newCA("999999999999", t0)
	if got, err := createCA(s, other, token("999999999999", t0), 1000); err != nil || got.ID != other.ID {
		t.Errorf("another account's same token: %v, %v", got, err)
	}
	late := newCA(account, t0.Add(6*time.Minute))
	if got, err := createCA(s, late, token(account, t0.Add(6*time.Minute)), 1000); err != nil || got.ID != late.ID {
		t.Errorf("a token past its window: %v, %v", got, err)
	}
}

func testIdempotencyConcurrent(t *testing.T, s openpca.Store) {
	t0 := now()
	tok := openpca.IdempotencyToken{AccountID: account, Operation: "CreateCertificateAuthority", Token: "race", Now: t0, Since: t0.Add(-5 * time.Minute)}
	const n = 10
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := createCA(s, newCA(account, t0), tok, 1000)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = got.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates with one token returned %v", ids)
		}
	}
	list, _ := s.ListCAs(ctx, account, openpca.CACursor{}, 100)
	if len(list) != 1 {
		t.Errorf("%d CAs stored, want 1", len(list))
	}
}

func testLimit(t *testing.T, s openpca.Store) {
	at := openpca.IdempotencyToken{Now: now()}
	for range 3 {
		if _, err := createCA(s, newCA(account, now()), at, 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := createCA(s, newCA(account, now()), at, 3); !errors.Is(err, openpca.ErrLimitExceeded) {
		t.Errorf("fourth CA with a limit of 3: %v, want ErrLimitExceeded", err)
	}
	if _, err := createCA(s, newCA("999999999999", now()), at, 3); err != nil {
		t.Errorf("the limit is per account: %v", err)
	}
	// A CA deleted for good counts no more.
	gone := newCA(account, now())
	gone.Status, gone.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, now().Add(-time.Minute)
	create(t, s, gone)
	if n, err := s.AccountCAs(ctx, account, now()); err != nil || n != 3 {
		t.Errorf("AccountCAs = %d, %v; want 3", n, err)
	}
}

func testCount(t *testing.T, s openpca.Store) {
	t0 := now()
	for range 2 {
		create(t, s, newCA(account, t0))
	}
	withStatus := func(status openpca.CertificateAuthorityStatus, notAfter, restorableUntil time.Time) {
		ca := newCA("999999999999", t0)
		ca.Status, ca.NotAfter, ca.RestorableUntil = status, notAfter, restorableUntil
		create(t, s, ca)
	}
	withStatus(openpca.CertificateAuthorityStatusActive, t0.Add(time.Hour), time.Time{})
	withStatus(openpca.CertificateAuthorityStatusDisabled, t0.Add(-time.Hour), time.Time{})  // expired
	withStatus(openpca.CertificateAuthorityStatusDeleted, time.Time{}, t0.Add(time.Hour))    // restorable
	withStatus(openpca.CertificateAuthorityStatusDeleted, time.Time{}, t0.Add(-time.Minute)) // gone
	counts, err := s.CountCAs(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[openpca.CAKind]int{
		{Status: openpca.CertificateAuthorityStatusPendingCertificate, KeyStore: "software"}: 2,
		{Status: openpca.CertificateAuthorityStatusActive, KeyStore: "software"}:             1,
		{Status: openpca.CertificateAuthorityStatusExpired, KeyStore: "software"}:            1,
		{Status: openpca.CertificateAuthorityStatusDeleted, KeyStore: "software"}:            1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

func testPurge(t *testing.T, s openpca.Store) {
	t0 := now()
	keep, gone := newCA(account, t0), activeCA(t, s)
	keep.Status, keep.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, t0.Add(time.Second)
	create(t, s, keep)
	c := newCertificate(gone)
	if _, err := s.RecordIssuance(ctx, issuance(gone, c)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordOCSP(ctx, openpca.OCSPUse(gone, c.Serial, "good", t0, []byte{0x30}), &openpca.OCSPResponse{CAID: gone.ID, Serial: c.Serial, Status: "good", SignedAt: t0, DER: []byte{0x30}},
		[]openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}); err != nil {
		t.Fatal(err)
	}
	gone.SetStatus(openpca.CertificateAuthorityStatusDeleted, t0)
	gone.RestorableUntil = t0
	gone.Destruction = []byte("the word that its key may go")
	if err := s.UpdateCA(ctx, gone, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindCA(ctx, account, gone.ID); err != nil || string(got.Destruction) != string(gone.Destruction) {
		t.Fatalf("the deleted CA's word that its key may go: %+v, %v", got, err)
	}
	// A CA deleted for good no longer counts toward the limit.
	if _, err := createCA(s, newCA(account, t0), openpca.IdempotencyToken{Now: t0}, 2); err != nil {
		t.Errorf("creating beside a CA deleted for good: %v", err)
	}
	// Of servers purging at once, one returns the CA, whose key is then
	// destroyed once.
	var mu sync.Mutex
	var purged []*openpca.CA
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			p, err := s.PurgeCAs(ctx, t0)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			purged = append(purged, p...)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if len(purged) != 1 || purged[0].ID != gone.ID || string(purged[0].KeyHandle) != string(gone.KeyHandle) {
		t.Fatalf("PurgeCAs = %v; want %s with its key handle, once", purged, gone.ID)
	}
	if _, err := s.FindCA(ctx, account, gone.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a purged CA is still found: %v", err)
	}
	if _, err := s.FindCA(ctx, account, keep.ID); err != nil {
		t.Errorf("a restorable CA was purged: %v", err)
	}
	if _, err := s.FindCertificate(ctx, gone.ID, c.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a purged CA's certificate is still found: %v", err)
	}
	if uses, _ := s.KeyUses(ctx, gone.ID, 0, 10); len(uses) != 0 {
		t.Errorf("a purged CA's log has %d entries", len(uses))
	}
	if _, err := s.OCSPResponse(ctx, gone.ID, c.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a purged CA's OCSP response is still kept: %v", err)
	}
	// Its key is to be destroyed until it is known destroyed.
	// (A software key is sealed in the CA's row, and not copied.)
	keys, err := s.KeysToDestroy(ctx, time.Now())
	if err != nil || len(keys) != 1 || keys[0].ID != gone.ID || keys[0].ARN != gone.ARN || keys[0].KeyStore != gone.KeyStore ||
		len(keys[0].KeyHandle) != 0 || keys[0].KeyID != gone.KeyID || string(keys[0].Destruction) != string(gone.Destruction) {
		t.Fatalf("keys to destroy: %+v, %v; want %s's, without its sealed key", keys, err, gone.ID)
	}
	if err := s.KeyDestroyed(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.KeysToDestroy(ctx, time.Now()); err != nil || len(keys) != 0 {
		t.Errorf("keys to destroy once destroyed: %+v, %v", keys, err)
	}
}

// testKeysMade: a key made for a CA is destroyed if the CA is not stored
// within KeyMadeGrace (its server stopped, or its request failed and the
// key could not be destroyed then), and forgotten once the CA is. A key
// recorded before it was made, and again once made, is destroyed
// KeyMadeGrace after its first record, by its key id.
func testKeysMade(t *testing.T, s openpca.Store) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	orphan, held := newCA(account, now), newCA(account, now)
	for _, ca := range []*openpca.CA{orphan, held} {
		ca.KeyStore, ca.KeyHandle = "pkcs11", []byte("handle-"+ca.ID)
		made := *ca
		made.Destruction = []byte("the word before it was made")
		if err := s.RecordKeyMade(ctx, &made, now); err != nil {
			t.Fatal(err)
		}
		ca.KeyID = "kid-" + ca.ID
		made = *ca
		made.Destruction = []byte("the word once made")
		if err := s.RecordKeyMade(ctx, &made, now.Add(openpca.KeyMadeGrace/2)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateCA(ctx, held, openpca.CSRUse(held, "tester", "r"), openpca.IdempotencyToken{Now: now}, 10); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.KeysToDestroy(ctx, now.Add(openpca.KeyMadeGrace/2)); err != nil || len(keys) != 0 {
		t.Errorf("keys to destroy while their CAs may still be stored: %+v, %v", keys, err)
	}
	keys, err := s.KeysToDestroy(ctx, now.Add(openpca.KeyMadeGrace+time.Second))
	if err != nil || len(keys) != 1 || keys[0].ID != orphan.ID || string(keys[0].KeyHandle) != string(orphan.KeyHandle) ||
		keys[0].KeyStore != "pkcs11" || keys[0].ARN != orphan.ARN || keys[0].KeyID != orphan.KeyID || string(keys[0].Destruction) != "the word once made" {
		t.Fatalf("keys to destroy past the grace: %+v, %v; want the key of %s, never stored, alone", keys, err, orphan.ID)
	}
	// A creation that comes after: its key is being destroyed, and its
	// CA is not stored, whatever the clocks said.
	if _, err := s.CreateCA(ctx, orphan, openpca.CSRUse(orphan, "tester", "r"), openpca.IdempotencyToken{Now: now}, 10); !errors.Is(err, openpca.ErrKeyGivenUp) {
		t.Errorf("a CA whose key was taken to be destroyed: %v; want ErrKeyGivenUp", err)
	}
	if _, err := s.FindCA(ctx, account, orphan.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a CA whose key was taken to be destroyed was stored: %v", err)
	}
	if err := s.KeyDestroyed(ctx, orphan.ID); err != nil {
		t.Fatal(err)
	}
	// Recorded again without its word, a record keeps the first, and
	// the key id its word names.
	unsigned := newCA(account, now)
	unsigned.KeyStore, unsigned.KeyHandle = "pkcs11", []byte("handle-"+unsigned.ID)
	made := *unsigned
	made.Destruction = []byte("the word before it was made")
	if err := s.RecordKeyMade(ctx, &made, now); err != nil {
		t.Fatal(err)
	}
	made.KeyID, made.Destruction = "kid-"+unsigned.ID, nil
	if err := s.RecordKeyMade(ctx, &made, now); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.KeysToDestroy(ctx, now.Add(2*openpca.KeyMadeGrace)); err != nil || len(keys) != 1 || keys[0].ID != unsigned.ID || keys[0].KeyID != "" ||
		string(keys[0].Destruction) != "the word before it was made" {
		t.Errorf("keys to destroy, recorded again without a word: %+v, %v; want the first record", keys, err)
	}
	if err := s.KeyDestroyed(ctx, unsigned.ID); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.KeysToDestroy(ctx, now.Add(2*openpca.KeyMadeGrace)); err != nil || len(keys) != 0 {
		t.Errorf("keys to destroy once destroyed: %+v, %v", keys, err)
	}
	// A CA with a key outside the database and no record of it made.
	unrecorded := newCA(account, now)
	unrecorded.KeyStore = "kms"
	if _, err := s.CreateCA(ctx, unrecorded, openpca.CSRUse(unrecorded, "tester", "r"), openpca.IdempotencyToken{Now: now}, 10); !errors.Is(err, openpca.ErrKeyGivenUp) {
		t.Errorf("a CA whose key was never recorded: %v; want ErrKeyGivenUp", err)
	}
	// A creation refused (the account's limit) keeps the record.
	refused := newCA(account, now)
	refused.KeyStore, refused.KeyHandle = "kms", []byte("handle-refused")
	if err := s.RecordKeyMade(ctx, refused, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCA(ctx, refused, openpca.CSRUse(refused, "tester", "r"), openpca.IdempotencyToken{Now: now}, 1); !errors.Is(err, openpca.ErrLimitExceeded) {
		t.Fatalf("a CA over the limit: %v", err)
	}
	if keys, err := s.KeysToDestroy(ctx, now.Add(2*openpca.KeyMadeGrace)); err != nil || len(keys) != 1 || keys[0].ID != refused.ID {
		t.Errorf("keys to destroy after a refused creation: %+v, %v; want %s's", keys, err, refused.ID)
	}
}
