package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
	"github.com/openpca/openpca/witness"
)

// witnessProc is "openpca witness serve" running in this process, behind
// a relay: started again, on a port of its own, it keeps its URL.
type witnessProc struct {
	url, key, dir string
	relay         *testenv.Relay
	stop          func()
	logs          *testenv.SyncBuffer
}

// startWitness runs a witness named name in dir, behind relay (nil for a
// new one), that trusts the logs of the default account's CAs under the
// server's audit key.
func startWitness(t *testing.T, dir string, relay *testenv.Relay, name, auditKey string) *witnessProc {
	t.Helper()
	if relay == nil {
		relay = testenv.NewRelay(t)
	}
	w := &witnessProc{url: "http://" + relay.Addr(), dir: dir, relay: relay, logs: &testenv.SyncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := run(ctx, []string{"witness", "serve", "--data-dir", dir, "--name", name, "--listen", listenAny,
			"--log", "openpca/arn:aws:acm-pca:us-east-1:" + app.DefaultAccountID + ":*=" + auditKey},
			w.logs, w.logs, func(string) (string, bool) { return "", false })
		if err != nil {
			fmt.Fprintln(w.logs, "openpca witness serve:", err)
		}
	}()
	w.stop = func() {
		relay.To("")
		cancel()
		<-done
	}
	t.Cleanup(w.stop)
	relay.To(strings.TrimPrefix(servedURL(t, w.logs.String, "serving the witness", closed(done)), "http://"))
	key, err := runOpenpca(t, "witness", "public-key", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	w.key = strings.TrimSpace(key)
	return w
}

// TestWitnessedAuditLog runs a server with two witnesses on 127.0.0.1: its
// checkpoints are cosigned by both and its reports verify with a quorum of
// 2; a witness that stops delays nothing but cosignatures; and a log forked
// under the server is refused by both witnesses, flagged by the server,
// and its report fails verification with the witnesses' keys.
func TestWitnessedAuditLog(t *testing.T) {
	signAsTestKey(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	auditKey, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	auditKey = strings.TrimSpace(auditKey)
	w1 := startWitness(t, t.TempDir(), nil, "witness.example/one", auditKey)
	// The second witness trusts a key beside the server's for the same
	// logs, as across a change of the audit key.
	_, nextKey, err := note.GenerateKey(rand.Reader, "next.example")
	if err != nil {
		t.Fatal(err)
	}
	w2 := startWitness(t, t.TempDir(), nil, "witness.example/two", auditKey+" "+nextKey)
	env.Stop(t)
	env.Config.Witnesses = []string{w1.url + "=" + w1.key, w2.url + "=" + w2.key}
	env.Config.ReportWitnessWait = 10 * time.Second // a round under load; the case of a witness down waits it out
	env.Restart(t)

	caARN, _ := env.NewActiveRoot(t, "Witnessed Root")
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "witnessed.example"}}).CSRPEM
	var serials []string
	issue := func(n int) {
		for range n {
			arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf})
			serials = append(serials, arn[strings.LastIndex(arn, "/")+1:])
		}
	}
	issue(5)
	verifiers := func(ws ...*witnessProc) []note.Verifier {
		var out []note.Verifier
		for _, w := range ws {
			v, err := auditlog.NewWitnessVerifier(w.key)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	serverKey, _ := note.NewVerifier(auditKey)
	// The audit log serves the checkpoint both witnesses cosigned.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		signed := fetch(t, env.URL+server.PathCheckpoint+"?certificateAuthorityArn="+url.QueryEscape(caARN), true)
		n, err := note.Open([]byte(signed), note.VerifierList(append([]note.Verifier{serverKey}, verifiers(w1, w2)...)...))
		if err == nil && len(n.Sigs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint cosigned by both witnesses: %v\n%s", err, signed)
		}
	}
	witnessed := []string{"--witness", w1.key, "--witness", w2.key, "--witness-quorum", "2"}
	// The log is cosigned to its end before the report is asked for; the
	// report has its own round all the same, whose cosignatures are
	// later than the ask (to the second, as cosignatures tell time).
	time.Sleep(1100 * time.Millisecond)
	asked := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	report := newReport(t, env, caARN)
	first := report
	out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", report, "--key", auditKey, "--witnessed-after", asked}, witnessed...)...)
	if err != nil {
		t.Fatalf("a witnessed report, cosigned after it was asked for: %v\n%s", err, out)
	}
	if !strings.Contains(out, "OK witnessed: the witnesses cosigned 8 entries of the log, the report's 8: witness.example/one at ") {
		t.Errorf("the verifier does not say what was witnessed:\n%s", out)
	}
	// A backup restores: its log is the one the witnesses cosigned.
	if out, err := backupAndRestore(t, env); err != nil {
		t.Errorf("a restore of the witnessed log: %v\n%s", err, out)
	}
	// A certificate's entries are in the log the witnesses cosigned.
	proofArgs := func(serial string) []string {
		return append([]string{"audit", "proof", "--server", env.URL, "--ca", caARN, "--serial", serial, "--key", auditKey}, witnessed...)
	}
	if out, err := runOpenpca(t, proofArgs(serials[len(serials)-1])...); err != nil {
		t.Errorf("a certificate's proof, with the witnesses: %v\n%s", err, out)
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", report, "--key", auditKey, "--witnessed-after", later}, witnessed...)...); !errors.Is(err, errVerification) ||
		!strings.Contains(out, "0 of the witnesses given cosigned the log at or after") {
		t.Errorf("a report cosigned before the time asked: %v\n%s", err, out)
	}

	// A witness stops: issuance goes on, and a report goes without the
	// cosignatures a quorum of 2 needs.
	w2.stop()
	env.Clock.Advance(31 * time.Minute)
	issue(3)
	report = newReport(t, env, caARN)
	if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", report, "--key", auditKey}, witnessed...)...); !errors.Is(err, errVerification) ||
		!strings.Contains(out, "not witnessed: its proof file has no checkpoint cosigned by witnesses (the server says: witnessing: too few witnesses have cosigned a checkpoint of the log that far, in the 10s a report waits)") {
		t.Errorf("a report while a witness is down: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey); err != nil {
		t.Errorf("the same report, without asking for witnesses: %v\n%s", err, out)
	}
	// Against the server's current log, which the witnesses have not
	// cosigned as far as the report: not truncated.
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey, "--server", env.URL); err != nil ||
		!strings.Contains(out, "OK the server's current log extends it") {
		t.Errorf("the same report, against the server's log, which the witnesses have cosigned less of: %v\n%s", err, out)
	}
	if m := metricsText(t, env.URL); !strings.Contains(m, `openpca_witness_submissions_total{outcome="unreachable",witness="witness.example/two"}`) {
		t.Errorf("the metrics do not show the stopped witness:\n%s", m)
	}
	w2 = startWitness(t, w2.dir, w2.relay, "witness.example/two", auditKey) // its database remembers the log
	env.Clock.Advance(31 * time.Minute)
	asked = time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	latest := newReport(t, env, caARN)
	if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", latest, "--key", auditKey, "--witnessed-after", asked}, witnessed...)...); err != nil {
		t.Fatalf("a report once the witness is back: %v\n%s\n%s", err, out, logs.String())
	}
	// The operator passes the first report, of 8 entries, off as this one
	// of 11: with this one's fresh cosignatures, and a proof that they
	// extend the first's log (the witness fields are not signed by the
	// audit key; had they been, the operator holds it). Without a time,
	// it verifies; with the time of the ask, it does not.
	stale := filepath.Join(t.TempDir(), filepath.Base(latest))
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stale, b, 0o600)
	readHeader := func(path string) *auditlog.ProofHeader {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h, err := auditlog.ReadProof(f, nil, func(int64, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := readHeader(first + auditlog.ProofSuffix)
	fresh := readHeader(latest + auditlog.ProofSuffix)
	client, err := server.NewAuditLogClient(env.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.WitnessProof, err = client.Consistency(t.Context(), caARN, 8, 11); err != nil {
		t.Fatal(err)
	}
	h.WitnessedCheckpoint, h.NotWitnessed = fresh.WitnessedCheckpoint, ""
	var records [][]byte
	f, _ := os.Open(first + auditlog.ProofSuffix)
	if _, err := auditlog.ReadProof(f, nil, func(_ int64, r []byte) error { records = append(records, bytes.Clone(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var proofFile bytes.Buffer
	if err := auditlogtest.WriteProof(&proofFile, h, func(yield func([]byte) error) error {
		for _, r := range records {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stale+auditlog.ProofSuffix, proofFile.Bytes(), 0o600)
	staleArgs := append([]string{"audit", "verify", "--report", stale, "--key", auditKey, "--report-id", filepath.Base(strings.TrimSuffix(first, ".json"))}, witnessed...)
	if out, err := runOpenpca(t, staleArgs...); err != nil {
		t.Errorf("the first report with fresh cosignatures, without a time: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, append(staleArgs, "--witnessed-after", asked)...); !errors.Is(err, errVerification) ||
		!strings.Contains(out, "the witnesses cosigned 11 entries of the log, past the report's 8") {
		t.Errorf("the first report passed off as a newer one: %v\n%s", err, out)
	}
	// A witness's database is replaced by a blank one under its key, as
	// an older copy's restore would: the server says the witness forgot.
	w2.stop()
	blank := startWitness(t, t.TempDir(), nil, "witness.example/blank", auditKey)
	blank.stop()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(w2.dir, "witness.db"+suffix))
	}
	if b, err := os.ReadFile(filepath.Join(blank.dir, "witness.db")); err != nil || os.WriteFile(filepath.Join(w2.dir, "witness.db"), b, 0o600) != nil {
		t.Fatal(err)
	}
	w2 = startWitness(t, w2.dir, w2.relay, "witness.example/two", auditKey)
	issue(1)
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "a witness answers that it knows less of this CA's log than it cosigned"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not say that a witness forgot the log:\n%s", logs.String())
		}
	}
	// A certificate just issued: its proof waits for the witnesses to
	// cosign it rather than fail.
	issue(1)
	if out, err := runOpenpca(t, proofArgs(serials[len(serials)-1])...); err != nil {
		t.Errorf("a certificate just issued, with the witnesses: %v\n%s", err, out)
	}
	// A new CA's first certificate: the witnesses have cosigned none of
	// its log yet, and the proof waits for their first round.
	newCA, _ := env.NewActiveRoot(t, "Second Witnessed Root")
	newLeaf := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &newCA, Csr: leaf})
	if out, err := runOpenpca(t, append([]string{"audit", "proof", "--server", env.URL, "--ca", newCA, "--serial", newLeaf[strings.LastIndex(newLeaf, "/")+1:], "--key", auditKey}, witnessed...)...); err != nil {
		t.Errorf("a new CA's first certificate, with the witnesses: %v\n%s", err, out)
	}

	// The operator forks the log: the last three issuances taken out of
	// it and out of the certificates, in the database under the server,
	// which then signs the forked log as its own and grows it past what the
	// witnesses cosigned.
	env.Stop(t)
	forkLog(t, env, env.DB(t), caARN[strings.LastIndex(caARN, "/")+1:], 3)
	env.Restart(t)
	issue(4)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := metricsText(t, env.URL)
		if strings.Contains(m, `openpca_witness_submissions_total{outcome="inconsistent",witness="witness.example/one"}`) &&
			strings.Contains(m, `openpca_witness_submissions_total{outcome="inconsistent",witness="witness.example/two"}`) &&
			strings.Contains(logs.String(), "a witness refuses the checkpoint: it does not extend") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not flag both witnesses' refusals:\n%s", m)
		}
	}
	for _, w := range []*witnessProc{w1, w2} {
		if !strings.Contains(w.logs.String(), "a consistency proof that does not hold (a fork of the log") {
			t.Errorf("witness %s did not log the fork:\n%s", w.key, w.logs)
		}
	}
	// A certificate of the forked log, within what the witnesses
	// cosigned of the true one, has its proof under the server's key
	// alone; with the witnesses, it fails. One past it is not witnessed.
	forked := serials[len(serials)-4]
	if out, err := runOpenpca(t, "audit", "proof", "--server", env.URL, "--ca", caARN, "--serial", forked, "--key", auditKey); err != nil {
		t.Errorf("a certificate of the forked log, without the witnesses: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, proofArgs(forked)...); !errors.Is(err, errVerification) || !strings.Contains(err.Error(), "not one history") {
		t.Errorf("a certificate of the forked log, with the witnesses: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, append(proofArgs(serials[len(serials)-1]), "--witness-wait", "1s")...); !errors.Is(err, errVerification) || !strings.Contains(err.Error(), "past the") {
		t.Errorf("a certificate past what the witnesses cosigned: %v\n%s", err, out)
	}
	// The forked log's report verifies under the server's key alone: only
	// the witnesses tell it apart.
	env.Clock.Advance(31 * time.Minute)
	report = newReport(t, env, caARN)
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey); err != nil {
		t.Errorf("the forked log's report, without asking for witnesses: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", report, "--key", auditKey}, witnessed...)...); !errors.Is(err, errVerification) ||
		!strings.Contains(out, "not witnessed") {
		t.Errorf("the forked log's report, with the witnesses' keys: %v\n%s", err, out)
	}
	// Nor does a backup of the forked log restore.
	if out, err := backupAndRestore(t, env); err == nil || !strings.Contains(err.Error(), "are not the log that witnesses cosigned") {
		t.Errorf("a restore of the forked log: %v\n%s", err, out)
	}
}

// witnessedEnv starts a server whose logs a witness cosigns, configured
// further by configure if not nil, and returns it, its audit key and the
// witness.
func witnessedEnv(t *testing.T, configure func(*app.Config)) (*testenv.Env, string, *witnessProc) {
	t.Helper()
	signAsTestKey(t)
	env := testenv.Start(t)
	auditKey, err := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if err != nil {
		t.Fatal(err)
	}
	auditKey = strings.TrimSpace(auditKey)
	w := startWitness(t, t.TempDir(), nil, "witness.example/one", auditKey)
	env.Stop(t)
	env.Config.Witnesses = []string{w.url + "=" + w.key}
	if configure != nil {
		configure(&env.Config)
	}
	env.Restart(t)
	return env, auditKey, w
}

// TestWitnessWaitZero: with --report-witness-wait 0, which the help says a
// report goes without witnesses past, a report waits for no round of the
// witnesses: it succeeds without their cosignatures, saying why, and does
// not fail.
func TestWitnessWaitZero(t *testing.T) {
	env, auditKey, w := witnessedEnv(t, func(c *app.Config) { c.ReportWitnessWait = 0 })
	caARN, _ := env.NewActiveRoot(t, "Root")
	report := newReport(t, env, caARN)
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey, "--witness", w.key); !errors.Is(err, errVerification) ||
		!strings.Contains(out, "in the 0s a report waits)") {
		t.Errorf("a report that waits for no witness, verified with the witness: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey); err != nil {
		t.Errorf("the same report, without asking for witnesses: %v\n%s", err, out)
	}
}

// TestWitnessedReportWrittenAgain: a witnessed report whose proof file a
// late write replaced is written again with the witnesses' checkpoint it
// had, not a new round's: with its witness gone meanwhile, it still
// verifies with the witness's key (a round would have waited, and the
// report gone without the witness).
func TestWitnessedReportWrittenAgain(t *testing.T) {
	env, auditKey, w := witnessedEnv(t, func(c *app.Config) { c.AuditReportLease = time.Second })
	caARN, _ := env.NewActiveRoot(t, "Root")
	report := newReport(t, env, caARN)
	verify := func() (string, error) {
		return runOpenpca(t, "audit", "verify", "--report", report, "--key", auditKey, "--witness", w.key)
	}
	if out, err := verify(); err != nil {
		t.Fatalf("the report: %v\n%s", err, out)
	}
	w.stop()
	if err := os.WriteFile(report+auditlog.ProofSuffix, []byte("a late write"), 0o600); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(3 * time.Minute) // past the first read-back
	var out string
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err = verify(); err == nil {
			return
		}
	}
	t.Errorf("the report written again, with its witness gone: %v\n%s", err, out)
}

// forkLog takes the last n entries of a CA's log, issuances, out of it and
// out of the certificates' tables, in the database under a stopped
// server, as an operator with the database could.
func forkLog(t *testing.T, env *testenv.Env, db *sql.DB, caID string, n int) {
	t.Helper()
	var kept int
	rewriteLog(t, db, filepath.Join(env.Config.DataDir, "openpca.db"), caID, func(records [][]byte) [][]byte {
		kept = len(records) - n
		return records[:kept]
	})
	for _, table := range []string{"certificates", "certificate_ders"} {
		if _, err := db.Exec(`DELETE FROM `+table+` WHERE ca_id = ? AND issue_seq >= ?`, caID, kept); err != nil {
			t.Fatal(err)
		}
	}
}

// newReport asks for a JSON report of the CA in a local bucket, waits for
// it, and returns its path.
func newReport(t *testing.T, env *testenv.Env, caARN string) string {
	t.Helper()
	_, path, err := awaitReport(t, env, caARN, types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestWitnessEnvironment checks that the witness's commands read
// variables of their own: a witness run in a server's environment must not
// take the server's folder (its key would be written among the server's
// files) or its address.
func TestWitnessEnvironment(t *testing.T) {
	serverDir, witnessDir := t.TempDir(), t.TempDir()
	env := map[string]string{"OPENPCA_DATA_DIR": serverDir, "OPENPCA_LISTEN": "127.0.0.1:1", "OPENPCA_WITNESS_DATA_DIR": witnessDir}
	lookupEnv := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	err := run(t.Context(), []string{"witness", "public-key"}, io.Discard, io.Discard, lookupEnv)
	if err == nil || !strings.Contains(err.Error(), witnessDir) {
		t.Errorf("witness public-key: %v, want the witness's folder %s", err, witnessDir)
	}
	// A witness set up with the server's variables, before the witness
	// had its own, is refused rather than started elsewhere, under a new
	// key; the command line settles it.
	delete(env, "OPENPCA_WITNESS_DATA_DIR")
	err = run(t.Context(), []string{"witness", "public-key"}, io.Discard, io.Discard, lookupEnv)
	if err == nil || !strings.Contains(err.Error(), "OPENPCA_DATA_DIR is set, which a witness no longer reads") {
		t.Errorf("witness public-key with OPENPCA_DATA_DIR alone: %v", err)
	}
	err = run(t.Context(), []string{"witness", "public-key", "--data-dir", witnessDir}, io.Discard, io.Discard, lookupEnv)
	if err == nil || !strings.Contains(err.Error(), witnessDir) {
		t.Errorf("witness public-key --data-dir with OPENPCA_DATA_DIR set: %v", err)
	}
	var usage bytes.Buffer
	if err := run(t.Context(), []string{"witness", "serve", "-h"}, io.Discard, &usage, lookupEnv); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, name := range []string{"OPENPCA_WITNESS_DATA_DIR", "OPENPCA_WITNESS_LISTEN", "OPENPCA_WITNESS_LOG"} {
		if !strings.Contains(usage.String(), "(env "+name+")") {
			t.Errorf("witness serve -h does not name %s:\n%s", name, usage.String())
		}
	}
	if strings.Contains(usage.String(), "(env OPENPCA_LISTEN)") {
		t.Errorf("witness serve -h names the server's variables:\n%s", usage.String())
	}
}

// TestWitnessRefusesHeldBodies runs "openpca witness serve" and sends it
// requests it refuses before reading their bodies, bodies whose bytes
// never come: each is answered at once, with its connection's end, not
// after the server's read timeout (15 s) for which net/http would read
// what is left of a body first, holding the answer and the connection.
func TestWitnessRefusesHeldBodies(t *testing.T) {
	_, auditKey, err := note.GenerateKey(rand.Reader, "openpca.example")
	if err != nil {
		t.Fatal(err)
	}
	w := startWitness(t, t.TempDir(), nil, "witness.example/held", auditKey)
	host := strings.TrimPrefix(w.url, "http://")
	// send sends head, a request whose body is declared but not sent
	// whole, and returns its connection and what it reads from it.
	send := func(t *testing.T, head string, body int) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, head+"Host: %s\r\n\r\n", host)
		conn.Write(make([]byte, body))
		// Short of the read timeout, and far longer than an answer
		// takes, and than smallbody.LeaveGrace.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		return conn, bufio.NewReader(conn)
	}
	const large = 64 << 10 // a body the witness reads in its budget of large ones
	for _, c := range []struct {
		name, head string
		sent       int
		want       int
	}{
		{"too large", "POST /add-checkpoint HTTP/1.1\r\nContent-Length: 100000\r\n", 1000, http.StatusRequestEntityTooLarge},
		{"another path", "POST /checkpoint HTTP/1.1\r\nContent-Length: 1000\r\n", 10, http.StatusNotFound},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nContent-Length: 1000\r\n", 10, http.StatusNotFound},
		// Its network's eight held below fill its share of the
		// budget of large bodies.
		{"past the share", fmt.Sprintf("POST /add-checkpoint HTTP/1.1\r\nContent-Length: %d\r\n", large), large - 1, http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // only the last takes room in the budget
			if c.want == http.StatusServiceUnavailable {
				// Each asks to be told to send its body: 100 Continue
				// says the witness took room for it.
				for i := range 8 {
					_, r := send(t, fmt.Sprintf("POST /add-checkpoint HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n", large), large-1)
					if line, err := r.ReadString('\n'); strings.TrimSpace(line) != "HTTP/1.1 100 Continue" {
						t.Fatalf("held request %d of 8: %q, %v; want HTTP/1.1 100 Continue", i+1, line, err)
					}
				}
			}
			_, r := send(t, c.head, c.sent)
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("the answer: %v, want %d at once", err, c.want)
			}
			res.Body.Close()
			if res.StatusCode != c.want || !res.Close {
				t.Fatalf("the answer: %d (Connection: %q), want %d and the connection's end", res.StatusCode, res.Header.Get("Connection"), c.want)
			}
			if n, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("after the answer, %d bytes, then %v; want the connection's end", n, err)
			}
		})
	}
}

// TestWitnessStateLost: a second witness on a running one's folder is
// refused; a witness whose key outlives its database (lost, or deleted by
// someone who wants a log cosigned again from nothing) does not start
// under that key, nor does one whose database was replaced by
// an empty file or another program's; with its key moved away, it starts
// under a new one.
func TestWitnessStateLost(t *testing.T) {
	dir := t.TempDir()
	_, auditKey, err := note.GenerateKey(rand.Reader, "openpca.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	w := startWitness(t, dir, nil, "witness.example/lost", auditKey)
	// Another on its folder is refused while it runs (two on a new
	// folder each made a key, and one was lost).
	second, cancel := context.WithTimeout(t.Context(), 5*time.Second) // started, it would serve until then
	defer cancel()
	if err := run(second, []string{"witness", "serve", "--data-dir", dir, "--name", "witness.example/lost", "--listen", listenAny,
		"--log", "openpca/arn:aws:acm-pca:us-east-1:" + app.DefaultAccountID + ":*=" + auditKey},
		io.Discard, io.Discard, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second witness on the folder: %v", err)
	}
	w.stop()
	matches, _ := filepath.Glob(filepath.Join(dir, "witness.db*"))
	if len(matches) == 0 {
		t.Fatalf("no database in %s", dir)
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	// Started, it would serve until the context ends.
	serve := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return run(ctx, []string{"witness", "serve", "--data-dir", dir, "--name", "witness.example/lost", "--listen", "127.0.0.1:0",
			"--log", "openpca/arn:aws:acm-pca:us-east-1:" + app.DefaultAccountID + ":*=" + auditKey},
			io.Discard, io.Discard, func(string) (string, bool) { return "", false })
	}
	if err := serve(); err == nil || !strings.Contains(err.Error(), "database") {
		t.Fatalf("started without its database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "witness.db")); err == nil {
		t.Error("the refused start made a database")
	}
	// Nor does it start on a file that holds no witness's tables, which
	// SQLite would make, empty; and it leaves the file as it was.
	foreign := func(journal string) []byte {
		t.Helper()
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`PRAGMA journal_mode = ` + journal + `; CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('another program''s')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		db   []byte
	}{
		{"an empty file", []byte{}},
		{"another program's database", foreign("DELETE")},
		// Read in WAL mode, even read-only, SQLite makes its -wal and
		// -shm files.
		{"another program's database in WAL mode", foreign("WAL")},
	} {
		path := filepath.Join(dir, "witness.db")
		if err := os.WriteFile(path, tc.db, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := serve(); err == nil || !strings.Contains(err.Error(), "holds no witness's state") {
			t.Errorf("started on %s: %v", tc.name, err)
		}
		got, _ := os.ReadFile(path)
		if matches, _ := filepath.Glob(path + "*"); !bytes.Equal(got, tc.db) || len(matches) != 1 {
			t.Errorf("the refused start on %s changed it: %d bytes, %d files", tc.name, len(got), len(matches))
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(dir, witnessKeyFile), filepath.Join(dir, "old.key")); err != nil {
		t.Fatal(err)
	}
	again := startWitness(t, dir, nil, "witness.example/lost", auditKey)
	if again.key == w.key {
		t.Error("the witness started under its old key")
	}
}

// TestWitnessQuorumMajority: a quorum an auditor requires must be more
// than half the witnesses given, unless --allow-split-view: two histories
// of a log, each cosigned by witnesses of its own, both verify otherwise.
func TestWitnessQuorumMajority(t *testing.T) {
	keys := make([]string, 4)
	for i := range keys {
		var err error
		if _, keys[i], err = witness.NewKey(fmt.Sprintf("witness.example/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		witnesses int
		args      []string
		want      string // the refusal, or "" for none
	}{
		{0, nil, ""},
		{1, nil, ""},
		{2, nil, ""},
		{2, []string{"--witness-quorum", "1"}, "--witness-quorum: a quorum of 1 of 2 witnesses: 1 could cosign one history of the log and 1 others another"},
		{2, []string{"--witness-quorum", "1", "--allow-split-view"}, ""},
		{3, []string{"--witness-quorum", "2"}, ""},
		{3, []string{"--witness-quorum", "1"}, "a quorum of 1 of 3"},
		{4, []string{"--witness-quorum", "2"}, "a quorum of 2 of 4"},
		{4, []string{"--witness-quorum", "3"}, ""},
		{4, []string{"--witness-quorum", "5"}, "between 1 and the 4 witnesses"},
	} {
		var w witnessFlags
		fs := flag.NewFlagSet("verify", flag.ContinueOnError)
		w.define(fs, "the log")
		args := slices.Clone(tt.args)
		for _, k := range keys[:tt.witnesses] {
			args = append(args, "--witness", k)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := w.check()
		if got := fmt.Sprint(err); (tt.want == "") != (err == nil) || !strings.Contains(got, tt.want) {
			t.Errorf("%d witnesses, %q: %v, want %q", tt.witnesses, tt.args, err, tt.want)
		}
	}
}
