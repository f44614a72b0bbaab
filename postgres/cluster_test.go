package postgres_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/sqlstore"
)

// cluster opens two stores on one new database, as two servers of a
// cluster have, and returns them and a function that closes them, which
// the test's end calls too.
func cluster(t *testing.T) (dsn string, stores []*sqlstore.DB, closeAll func()) {
	t.Helper()
	dsn = testenv.NewPostgresDB(t)
	for range 2 {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	closeAll = sync.OnceFunc(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	t.Cleanup(closeAll)
	return dsn, stores, closeAll
}

// deadlocks is how many deadlocks PostgreSQL has broken in the database
// of dsn, once every other session of it has ended (a session reports its
// statistics as it ends, and when idle only now and then).
func deadlocks(t *testing.T, dsn string) int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var others int
		if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the database are still open", others)
		}
	}
	var n int64
	if err := db.QueryRow(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// withoutDeadlocks runs work on both stores at once, from workers
// goroutines each (si is the store's index, w the goroutine's), closes the
// stores, and fails the test if a write failed (work's fail) or if
// PostgreSQL broke a deadlock between them.
func withoutDeadlocks(t *testing.T, dsn string, stores []*sqlstore.DB, closeAll func(), workers int, work func(s *sqlstore.DB, si, w int, fail func(error))) {
	t.Helper()
	var failed atomic.Int64
	fail := func(err error) {
		if err != nil {
			failed.Add(1)
			t.Log(err)
		}
	}
	var wg sync.WaitGroup
	for si, s := range stores {
		for w := range workers {
			wg.Go(func() { work(s, si, w, fail) })
		}
	}
	wg.Wait()
	closeAll()
	if failed.Load() > 0 {
		t.Errorf("%d writes failed", failed.Load())
	}
	if n := deadlocks(t, dsn); n > 0 {
		t.Errorf("PostgreSQL broke %d deadlocks between the servers' batches", n)
	}
}

// TestIssuancesOfSeveralCAsDoNotDeadlock: two servers on one database
// each write batches of issuances of several CAs. A batch takes each CA's
// row in turn: two batches that took them in different orders would each
// wait for a row the other holds, until PostgreSQL aborted one (after
// deadlock_timeout, a second) and its issuances were written again, one
// by one.
func TestIssuancesOfSeveralCAsDoNotDeadlock(t *testing.T) {
	dsn, stores, closeAll := cluster(t)
	var cas []*openpca.CA
	for range 6 {
		cas = append(cas, storetest.ActiveCA(t, stores[0]))
	}
	var mu sync.Mutex // NewIssuance is not safe for concurrent use
	withoutDeadlocks(t, dsn, stores, closeAll, 32, func(s *sqlstore.DB, _, _ int, fail func(error)) {
		for range 60 {
			mu.Lock()
			is := storetest.NewIssuance(cas[rand.IntN(len(cas))])
			mu.Unlock()
			_, err := s.RecordIssuance(t.Context(), is)
			fail(err)
		}
	})
}

// TestRevocationsOfSeveralCAsDoNotDeadlock is
// TestIssuancesOfSeveralCAsDoNotDeadlock for revocations, which share
// their batches with the other writes (groupcommit.Committer).
func TestRevocationsOfSeveralCAsDoNotDeadlock(t *testing.T) {
	dsn, stores, closeAll := cluster(t)
	const perCA, workers = 300, 16
	var all [][]*openpca.Revocation
	for range 6 {
		all = append(all, storetest.RevocationsOfCRLCA(t, stores[0], perCA))
	}
	// Each server revokes half of each CA's certificates, taking the CAs
	// in turn: its batches hold revocations of several CAs.
	withoutDeadlocks(t, dsn, stores, closeAll, workers, func(s *sqlstore.DB, si, w int, fail func(error)) {
		for i := w; i < perCA/2; i += workers {
			for c := range all {
				fail(s.RecordRevocation(t.Context(), all[(c+w+si*3)%len(all)][si*perCA/2+i]))
			}
		}
	})
}

// TestMixedWritesDoNotDeadlock: two servers write batches of one CA that
// mix revocations, revocations that fail (of certificates not issued, or
// revoked already), and issuances with idempotency tokens both servers
// are sent (a client retrying on the other). Every write takes the CA's
// rows in one order: with a revocation's CRL row before the log's, and a
// token's row before the log's, they deadlocked, and PostgreSQL aborted
// one of each a second later. A failed revocation leaves nothing in the
// log: it grows by the revocations and issuances that were written, and
// its tree holds.
func TestMixedWritesDoNotDeadlock(t *testing.T) {
	dsn, stores, closeAll := cluster(t)
	const perServer, tokens, workers = 300, 480, 8 // workers of each kind
	rs := storetest.RevocationsOfCRLCA(t, stores[0], 2*perServer)
	var record openpca.KeyUseRecord
	if err := json.Unmarshal(rs[0].Use.Record, &record); err != nil {
		t.Fatal(err)
	}
	ca, err := stores[0].FindCA(t.Context(), record.Account, rs[0].CAID)
	if err != nil {
		t.Fatal(err)
	}
	before, err := stores[0].LogSize(t.Context(), ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // NewIssuance is not safe for concurrent use
	var revoked atomic.Int64
	issued := sync.Map{} // serials the tokens gave
	withoutDeadlocks(t, dsn, stores, closeAll, 2*workers, func(s *sqlstore.DB, si, w int, fail func(error)) {
		kind, w := w%2, w/2
		for i := w; kind == 0 && i < perServer; i += workers {
			// Its own half, then each of the other's: whichever server
			// comes second finds it revoked already. Then a serial never
			// issued.
			for _, r := range []openpca.Revocation{*rs[si*perServer+i], *rs[(1-si)*perServer+i]} {
				if err := s.RecordRevocation(t.Context(), &r); err == nil {
					revoked.Add(1)
				} else if !errors.Is(err, openpca.ErrAlreadyRevoked) {
					fail(err)
				}
			}
			missing := *rs[i]
			missing.Serial = fmt.Sprintf("ff%030x", i)
			if err := s.RecordRevocation(t.Context(), &missing); !errors.Is(err, openpca.ErrNotFound) {
				fail(fmt.Errorf("a revocation of a certificate never issued: %v", err))
			}
		}
		for i := w; kind == 1 && i < tokens; i += workers {
			mu.Lock()
			is := storetest.NewIssuance(ca)
			mu.Unlock()
			now := time.Now()
			is.Token = openpca.IdempotencyToken{AccountID: ca.AccountID, Operation: "IssueCertificate:" + ca.ID, Token: fmt.Sprint("token-", i), Now: now, Since: now.Add(-5 * time.Minute)}
			c, err := s.RecordIssuance(t.Context(), is)
			fail(err)
			if err == nil {
				if first, loaded := issued.LoadOrStore(i, c.Serial); loaded && first != c.Serial {
					t.Errorf("token %d gave two certificates, %s and %s", i, first, c.Serial)
				}
			}
		}
	})
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	after, err := store.LogSize(t.Context(), ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.Load() != 2*perServer || after-before != 2*perServer+tokens {
		t.Errorf("%d revocations written, and the log grew by %d; want %d, and %d", revoked.Load(), after-before, 2*perServer, 2*perServer+tokens)
	}
	storetest.CheckTree(t, store, ca)
}

// TestAuditReportWindowAcrossServers: requests for a CA's report at once
// on two servers, whose clocks differ by a second: one is accepted.
func TestAuditReportWindowAcrossServers(t *testing.T) {
	_, stores, _ := cluster(t)
	for round := range 5 {
		ca := storetest.ActiveCA(t, stores[0])
		t0 := time.Now().UTC()
		var accepted atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				at := t0.Add(time.Duration(i%2) * time.Second)
				_, err := stores[i%2].CreateAuditReport(t.Context(), storetest.NewReport(ca, at), at.Add(-30*time.Minute))
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, openpca.ErrTooSoon):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if accepted.Load() != 1 {
			t.Errorf("round %d: %d requests accepted, want 1", round, accepted.Load())
		}
	}
}
