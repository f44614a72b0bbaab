package app_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// inDoubtServer starts a server on PostgreSQL through a CommitCutter,
// with an active root CA, and returns them with a connection to the
// database that goes around the cutter.
func inDoubtServer(t *testing.T) (env *testenv.Env, caARN string, cutter *testenv.CommitCutter, admin *sql.DB) {
	t.Helper()
	dsn := testenv.NewPostgresDB(t)
	cutter, via := testenv.NewCommitCutter(t, dsn)
	env = testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore = via, "local" })
	caARN, _ = env.NewActiveRoot(t, "In Doubt")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return env, caARN, cutter, admin
}

// TestInDoubtCommitIssuesOnce: a group commit's batch of issuances whose
// COMMIT PostgreSQL carried out, but whose answer never reached the server
// (the connection broke between the two: a network cut, a crash of a
// proxy, a failover), is not written again, and its requests get their
// certificates: PostgreSQL, asked on another connection, says the batch
// committed. A batch written again found each certificate's serial taken
// (by itself), and the server drew another serial and signed again, so
// that one request made two certificates, the first of them never
// returned to anyone.
func TestInDoubtCommitIssuesOnce(t *testing.T) {
	env, caARN, cutter, admin := inDoubtServer(t)
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM

	const requests = 48
	var issued, failed int
	for round := 1; cutter.Cuts() == 0; round++ {
		if round > 10 {
			t.Skip("no batch of several issuances formed to cut")
		}
		cutter.CutNext(testenv.MultiRowInsert)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() {
				_, err := env.Client.IssueCertificate(context.Background(), &acmpca.IssueCertificateInput{
					CertificateAuthorityArn: &caARN, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
					Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)},
				})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					t.Errorf("an issuance whose batch's commit was cut after it committed: %v", err)
					return
				}
				issued++
			})
		}
		wg.Wait()
	}
	// One certificate at most per request: a request id names the
	// request that made each.
	rows, err := admin.Query(`SELECT request_id, count(*) FROM certificates WHERE request_id <> '' GROUP BY request_id HAVING count(*) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	twice := 0
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		twice++
		t.Logf("request %s made %d certificates", id, n)
	}
	if twice > 0 {
		t.Errorf("%d requests each made more than one certificate (%d issued, %d failed)", twice, issued, failed)
	}
	var total int
	if err := admin.QueryRow(`SELECT count(*) FROM certificates`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	// The CA's own certificate, and one per request at most.
	if attempts := 1 + issued + failed; total > attempts {
		t.Errorf("%d certificates stored for %d requests", total, attempts)
	}
}

// load issues certificates of caARN from each server of envs, with workers
// goroutines each, until its stop is called, which returns the ARNs
// returned and the errors' codes and statuses, counted.
type load struct {
	mu    sync.Mutex
	acked []string
	codes map[string]int
	ok    atomic.Int64
	stop  atomic.Bool
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, envs []*testenv.Env, caARN string, workers int) *load {
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
	l := &load{codes: map[string]int{}}
	for _, env := range envs {
		for range workers {
			l.wg.Go(func() {
				for !l.stop.Load() {
					out, err := env.Client.IssueCertificate(context.Background(), &acmpca.IssueCertificateInput{
						CertificateAuthorityArn: &caARN, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
						Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)},
					})
					l.mu.Lock()
					if err != nil {
						code, status := testenv.ErrorCode(err)
						l.codes[fmt.Sprintf("%s %d", code, status)]++
					} else {
						l.acked = append(l.acked, *out.CertificateArn)
						l.ok.Add(1)
					}
					l.mu.Unlock()
					if err != nil {
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
	}
	return l
}

// waitServed waits for n more issuances to succeed.
func (l *load) waitServed(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	before, start := l.ok.Load(), time.Now()
	for l.ok.Load() < before+n {
		if time.Since(start) > within {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%d issuances succeeded within %v, want %d; errors %v", l.ok.Load()-before, within, n, l.codes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("served %d issuances %v after", n, time.Since(start).Round(time.Millisecond))
}

// finish stops the load and checks that every error was
// ServiceUnavailableException, the logs' internal failures told.
func (l *load) finish(t *testing.T, logs ...*testenv.SyncBuffer) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	t.Logf("%d issued; errors %v", len(l.acked), l.codes)
	for code, n := range l.codes {
		if !strings.HasPrefix(code, "ServiceUnavailableException ") {
			t.Errorf("%d issuances failed with %s, want ServiceUnavailableException", n, code)
		}
	}
	for _, log := range logs {
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, `msg="internal failure"`) {
				t.Log(line)
			}
		}
	}
}

// checkStored checks, on the database at dsn, that every certificate
// returned is stored, once, that each CA's log has its entries numbered
// without a gap or a duplicate, and that the servers hold at most sessions
// sessions.
func (l *load) checkStored(t *testing.T, dsn string, sessions int) {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, arn := range l.acked {
		serial := arn[strings.LastIndex(arn, "/")+1:]
		var n int
		if err := admin.QueryRow(`SELECT count(*) FROM certificates WHERE serial = $1`, serial).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("certificate %s was returned, and is stored %d times", arn, n)
		}
	}
	rows, err := admin.Query(`SELECT l.ca_id, l.size, count(k.seq), COALESCE(min(k.seq), -1), COALESCE(max(k.seq), -1)
		FROM key_use_logs l LEFT JOIN key_uses k ON k.ca_id = l.ca_id GROUP BY l.ca_id, l.size`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ca string
		var size, n, lo, hi int64
		if err := rows.Scan(&ca, &size, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != size || (size > 0 && (lo != 0 || hi != size-1)) {
			t.Errorf("CA %s's log: size %d, %d entries, numbered %d to %d", ca, size, n, lo, hi)
		}
	}
	var held int
	if err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held > sessions {
		t.Errorf("the servers hold %d sessions, want %d at most", held, sessions)
	}
}

// twoServers starts two servers on the database at dsn, as a cluster
// has, each logging to its own buffer.
func twoServers(t *testing.T, dsn string) ([]*testenv.Env, []*testenv.SyncBuffer) {
	logs := []*testenv.SyncBuffer{{}, {}}
	key, err := app.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	a := testenv.Start(t, func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKey = dsn, "local", key
		c.Logger = slog.New(slog.NewTextHandler(logs[0], nil))
	})
	b := testenv.Start(t, func(c *app.Config) {
		c.Database, c.ObjectStore, c.MasterKey = dsn, "local", key
		c.RootAccessKeyID, c.RootSecretAccessKey = a.Config.RootAccessKeyID, a.Config.RootSecretAccessKey
		c.Logger = slog.New(slog.NewTextHandler(logs[1], nil))
	})
	return []*testenv.Env{a, b}, logs
}

// TestPostgresCrashMidLoad: PostgreSQL crashes (pg_ctl stop -m immediate)
// under a load of issuances on two servers, and starts again. Meanwhile
// the servers answer ServiceUnavailableException, never an internal
// failure, and /readyz says they are not ready; once PostgreSQL is back,
// they serve again without a restart of their own, and say they are
// ready. Every certificate they returned is stored, and the CA's log has
// its entries without a gap or a duplicate.
func TestPostgresCrashMidLoad(t *testing.T) {
	pg := testenv.NewOwnPostgres(t)
	dsn, err := pg.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	envs, logs := twoServers(t, dsn)
	caARN, _ := envs[0].NewActiveRoot(t, "Crash")
	l := startLoad(t, envs, caARN, 6)
	l.waitServed(t, 100, 10*time.Second)
	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	for i, env := range envs {
		if status, _, _ := env.Get(t, "/readyz"); status != http.StatusServiceUnavailable {
			t.Errorf("server %d's /readyz with PostgreSQL down: %d, want 503", i, status)
		}
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	l.waitServed(t, 100, 30*time.Second)
	for i, env := range envs {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if status, _, _ := env.Get(t, "/readyz"); status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("server %d's /readyz not ready 10 s after PostgreSQL is back and issuances succeed", i)
				break
			}
		}
	}
	l.finish(t, logs...)
	l.checkStored(t, dsn, 40)
}

// TestSessionsTerminatedMidLoad: the sessions of two servers are ended
// (pg_terminate_backend, as an operator or a failover's fencing does)
// again and again under a load of issuances: the servers answer
// ServiceUnavailableException meanwhile, never an internal failure, and
// what they returned is stored.
func TestSessionsTerminatedMidLoad(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	envs, logs := twoServers(t, dsn)
	caARN, _ := envs[0].NewActiveRoot(t, "Terminated")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	admin.SetMaxOpenConns(1)
	l := startLoad(t, envs, caARN, 6)
	l.waitServed(t, 100, 10*time.Second)
	for range 20 {
		if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.waitServed(t, 100, 10*time.Second)
	l.finish(t, logs...)
	l.checkStored(t, dsn, 40)
}

// TestInDoubtCommitWithToken: an issuance with an idempotency token whose
// COMMIT's answer was lost, with the database out of reach since, so that
// the server cannot learn whether it committed, is told to retry
// (ServiceUnavailableException, not InternalFailure: the commit failed
// with pgx's "conn closed", which was not taken for a connection lost),
// and its retry with the same token, once the database is back, gets the
// certificate that committed, not a second one.
func TestInDoubtCommitWithToken(t *testing.T) {
	env, caARN, cutter, admin := inDoubtServer(t)
	count := func() (n int) {
		if err := admin.QueryRow(`SELECT count(*) FROM certificates`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	in := &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &caARN, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, IdempotencyToken: aws.String("in-doubt"),
		Csr:      testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)},
	}
	// The token's claim, the log's entry, the certificate and its DER.
	cutter.Arm(testenv.Cut{Apart: true, Match: func(tags []string) bool {
		n := 0
		for _, tag := range tags {
			if tag == "INSERT 0 1" {
				n++
			}
		}
		return n >= 4
	}})
	_, err := env.Client.IssueCertificate(context.Background(), in)
	if cutter.Cuts() != 1 {
		t.Fatalf("the issuance's commit was not cut: %v", err)
	}
	testenv.WantError(t, err, "ServiceUnavailableException")
	cutter.Heal()
	out, err := env.Client.IssueCertificate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := count() - before; n != 1 {
		t.Errorf("%d certificates stored for one issuance retried with its token", n)
	}
	serial := (*out.CertificateArn)[strings.LastIndex(*out.CertificateArn, "/")+1:]
	var n int
	if err := admin.QueryRow(`SELECT count(*) FROM certificates WHERE serial = $1`, serial).Scan(&n); err != nil || n != 1 {
		t.Errorf("the retry's certificate %s is not the one stored (%d, %v)", *out.CertificateArn, n, err)
	}
}

// TestLockedCAHoldsOnlyItsOwn: a CA whose log another transaction holds
// locked (a server frozen within one, until PostgreSQL ends its session)
// fails its issuances after lock_timeout, ServiceUnavailable, and holds
// back no other CA's, batched with them or behind them. Every CA's waited
// for the batch's 30 s, and failed (a red-team measured 15 s and more).
func TestLockedCAHoldsOnlyItsOwn(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	env := testenv.Start(t, func(c *app.Config) { c.Database, c.ObjectStore = dsn, "local" })
	locked, _ := env.NewActiveRoot(t, "Locked")
	free, _ := env.NewActiveRoot(t, "Free")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	holder, err := admin.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for _, q := range []string{`SET idle_in_transaction_session_timeout = 0`, `BEGIN`} {
		if _, err := holder.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := holder.ExecContext(t.Context(), `SELECT 1 FROM key_use_logs WHERE ca_id = $1 FOR UPDATE`, locked[strings.LastIndex(locked, "/")+1:]); err != nil {
		t.Fatal(err)
	}
	defer holder.ExecContext(context.Background(), `ROLLBACK`)
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
	issue := func(ca string, within time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), within)
		defer cancel()
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
		return err
	}
	var wg sync.WaitGroup
	lockedErrs, freeErrs := make([]error, 4), make([]error, 4)
	for i := range 4 {
		wg.Go(func() { lockedErrs[i] = issue(locked, time.Minute) })
		// Under the batch's 30 s, well over lock_timeout's 2 s, a few
		// times over.
		wg.Go(func() { freeErrs[i] = issue(free, 20*time.Second) })
	}
	wg.Wait()
	for i := range 4 {
		testenv.WantError(t, lockedErrs[i], "ServiceUnavailableException")
		if freeErrs[i] != nil {
			t.Errorf("an issuance under a CA no one holds, beside one held: %v", freeErrs[i])
		}
	}
}
