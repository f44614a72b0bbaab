package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/server"
)

// binary is the openpca command the tests of this package run, built by
// TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "openpca-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "openpca")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building openpca: %v\n%s", err, out)
		os.Exit(1)
	}
	code := testenv.RunWithPostgres(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is several openpca serve processes sharing one PostgreSQL
// database, one master key and one S3-compatible object store.
type cluster struct {
	t         *testing.T
	dsn       string
	masterKey string
	previous  string // a previous master key the nodes open with too, if any
	s3        *testenv.S3
}

func newCluster(t *testing.T) *cluster {
	key := make([]byte, 32)
	rand.Read(key)
	c := &cluster{t: t, dsn: testenv.NewPostgresDB(t), masterKey: base64.StdEncoding.EncodeToString(key), s3: testenv.StartS3(t)}
	c.s3.CreateBucket(t, "reports")
	return c
}

// node is one server of a cluster.
type node struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	url    string
	data   string
	log    string
	client *acmpca.Client
	env    *testenv.Env
}

// start starts a node with extra flags.
func (c *cluster) start(extra ...string) *node {
	return c.startWith(c.s3.URL, extra...)
}

// startWith starts a node whose object store is at s3URL.
func (c *cluster) startWith(s3URL string, extra ...string) *node {
	c.t.Helper()
	return c.startIn(c.t.TempDir(), s3URL, extra...)
}

// startIn starts a node on the data folder data.
func (c *cluster) startIn(data, s3URL string, extra ...string) *node {
	t := c.t
	t.Helper()
	n := &node{data: data}
	n.log = filepath.Join(n.data, "server.log")
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", listenAny, "--data-dir", n.data, "--database", c.dsn, "--s3-endpoint", s3URL, "--log-format", "text"}, extra...)
	n.cmd = exec.Command(binary, args...)
	n.cmd.Env = append(os.Environ(), "OPENPCA_MASTER_KEY="+c.masterKey,
		"OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey,
		"AWS_ACCESS_KEY_ID="+c.s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+c.s3.SecretKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
	if c.previous != "" {
		n.cmd.Env = append(n.cmd.Env, "OPENPCA_PREVIOUS_MASTER_KEY="+c.previous)
	}
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		n.cmd.Wait()
		close(exited)
	}()
	n.exited = exited
	t.Cleanup(func() { n.kill() })
	n.url = servedURL(t, n.logs, "serving the AWS Private CA API", closed(exited))
	n.client = testenv.NewClient(n.url, &http.Transport{MaxIdleConnsPerHost: 64})
	n.env = &testenv.Env{Client: n.client}
	return n
}

func (n *node) logs() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// kill stops the node at once, as a crash would.
func (n *node) kill() {
	n.cmd.Process.Kill()
	<-n.exited
}

var ctx = context.Background()

func csr(t *testing.T) []byte {
	return testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cluster.example"}}).CSRPEM
}

// TestClusterIssuance issues from two nodes at once: every serial is
// distinct, every certificate is found on either node, and the CA's key-use
// log has one entry per certificate, without gaps.
func TestClusterIssuance(t *testing.T) {
	c := newCluster(t)
	a, b := c.start(), c.start()
	rootARN, _ := a.env.NewActiveRoot(t, "Cluster Root")
	leaf := csr(t)
	const perNode = 60
	arns := make([]string, 2*perNode)
	var wg sync.WaitGroup
	for i := range arns {
		n := []*node{a, b}[i%2]
		wg.Go(func() {
			arns[i] = n.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: leaf})
		})
	}
	wg.Wait()
	sorted := slices.Clone(arns)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(arns) {
		t.Fatal("two nodes issued the same serial")
	}
	for i, arn := range arns {
		other := []*node{b, a}[i%2] // the node that did not issue it
		other.env.Certificate(t, rootARN, arn)
	}
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, maxSeq int
	if err := db.QueryRow(`SELECT COUNT(*), MAX(seq) FROM key_uses WHERE ca_id = $1`, rootARN[strings.LastIndex(rootARN, "/")+1:]).Scan(&n, &maxSeq); err != nil {
		t.Fatal(err)
	}
	// The CSR, the root's own certificate, its import, and the leaves.
	if want := 3 + len(arns); n != want || maxSeq != want-1 {
		t.Errorf("the log has %d entries up to seq %d, want %d without gaps", n, maxSeq, want)
	}

	// Both nodes sign with one audit key, and the tree they grew together
	// is the tree of the log's records.
	keyA, keyB := fetch(t, a.url+server.PathPublicKey, false), fetch(t, b.url+server.PathPublicKey, false)
	if keyA != keyB {
		t.Fatalf("the nodes' audit keys differ: %s, %s", keyA, keyB)
	}
	checkpoint, err := auditlog.OpenCheckpoint([]byte(fetch(t, b.url+server.PathCheckpoint+"?certificateAuthorityArn="+url.QueryEscape(rootARN), true)), strings.TrimSpace(keyA))
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(t.Context(), c.dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var tree auditlogtest.Tree
	if err := store.LogRecords(t.Context(), rootARN[strings.LastIndex(rootARN, "/")+1:], checkpoint.Size, tree.Add); err != nil {
		t.Fatal(err)
	}
	if root, _ := tree.Root(tree.Size()); checkpoint.Size != tree.Size() || checkpoint.Root != root {
		t.Errorf("checkpoint of %d entries, root %v; the records make %d, root %v", checkpoint.Size, checkpoint.Root, tree.Size(), root)
	}
}

// fetch GETs url, signed as the SDK signs if signed, and returns the body.
func fetch(t *testing.T, url string, signed bool) string {
	t.Helper()
	status, _, body := testenv.Get(t, url, signed)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	return string(body)
}

// TestClusterIdempotency: a retry with the same token returns the first
// result whichever node gets it, even when both get it at once.
func TestClusterIdempotency(t *testing.T) {
	c := newCluster(t)
	a, b := c.start(), c.start()
	rootARN, _ := a.env.NewActiveRoot(t, "Idem Root")
	leaf := csr(t)
	issue := func(n *node, token string) string {
		return n.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: leaf, IdempotencyToken: aws.String(token)})
	}
	if first, retry := issue(a, "retry"), issue(b, "retry"); first != retry {
		t.Errorf("the retry on another node issued %s, want %s", retry, first)
	}
	results := make([]string, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = issue([]*node{a, b}[i%2], "race") })
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r != results[0] {
			t.Fatalf("concurrent requests with one token on two nodes issued %v", results)
		}
	}
	createCA := func(n *node) string {
		out, err := n.client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Idem CA"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot, IdempotencyToken: aws.String("ca-token")})
		if err != nil {
			t.Fatal(err)
		}
		return *out.CertificateAuthorityArn
	}
	if x, y := createCA(a), createCA(b); x != y {
		t.Errorf("CreateCertificateAuthority retried on another node made %s, want %s", y, x)
	}
}

func createReport(n *node, caARN string) error {
	_, err := n.client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &caARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	return err
}

// TestClusterReportWindow: requests for a report reaching both nodes at
// the same moment: exactly one is accepted.
func TestClusterReportWindow(t *testing.T) {
	c := newCluster(t)
	a, b := c.start(), c.start()
	rootARN, _ := a.env.NewActiveRoot(t, "Window Root")
	errs := make([]error, 16)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = createReport([]*node{a, b}[i%2], rootARN)
		})
	}
	close(start)
	wg.Wait()
	testenv.WantOneWinner(t, errs, "RequestInProgressException")
}

func waitReport(t *testing.T, n *node, caARN, id string) types.AuditReportStatus {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		d, err := n.client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: &id})
		if err != nil {
			t.Fatal(err)
		}
		if d.AuditReportStatus != types.AuditReportStatusCreating {
			return d.AuditReportStatus
		}
	}
	t.Fatal("the report stayed CREATING")
	return ""
}

// TestClusterReportOneGenerator: with every node generating reports, each
// report is written by exactly one.
func TestClusterReportOneGenerator(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.start(), c.start(), c.start()}
	var cas, ids []string
	for i := range 4 {
		arn, _ := nodes[i%3].env.NewActiveRoot(t, fmt.Sprintf("Root %d", i))
		out, err := nodes[(i+1)%3].client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
			CertificateAuthorityArn: &arn, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatCsv})
		if err != nil {
			t.Fatal(err)
		}
		cas, ids = append(cas, arn), append(ids, *out.AuditReportId)
	}
	for i, id := range ids {
		if s := waitReport(t, nodes[2], cas[i], id); s != types.AuditReportStatusSuccess {
			t.Fatalf("report %s: %s", id, s)
		}
		// The writer logs once it has recorded SUCCESS, so its line may
		// come a moment after the status.
		writers := 0
		for deadline := time.Now().Add(5 * time.Second); writers == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			writers = 0
			for _, n := range nodes {
				for _, line := range strings.Split(n.logs(), "\n") {
					if strings.Contains(line, "audit report written") && strings.Contains(line, "report="+id) {
						writers++
					}
				}
			}
		}
		if writers != 1 {
			t.Errorf("report %s was written %d times", id, writers)
		}
	}
}

// TestClusterReportTakeover: a node killed while it writes a report leaves
// it to another node, which finishes it.
func TestClusterReportTakeover(t *testing.T) {
	c := newCluster(t)
	api := c.start("--report-workers", "0", "--audit-report-lease", "2s")
	stuck := c.startWith(blackHole(t), "--report-workers", "1", "--audit-report-lease", "2s")
	rootARN, _ := api.env.NewActiveRoot(t, "Takeover Root")
	out, err := api.client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &rootARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	if err != nil {
		t.Fatal(err)
	}
	waitOwner(t, c, *out.AuditReportId)
	stuck.kill()
	c.start("--report-workers", "1", "--audit-report-lease", "2s")
	if s := waitReport(t, api, rootARN, *out.AuditReportId); s != types.AuditReportStatusSuccess {
		t.Fatalf("the report ended %s after its node died", s)
	}
	if len(c.s3.Get(t, "reports", "audit-report/"+rootARN[strings.LastIndex(rootARN, "/")+1:]+"/"+*out.AuditReportId+".json")) == 0 {
		t.Error("the report object is empty")
	}
}

// TestClusterCopiedNodeID: a node started on a copy of another's data
// folder (an image, a snapshot), its node id the same, does not take the
// report the other is writing as its own, until the other dies. It did,
// and both wrote the report at once.
func TestClusterCopiedNodeID(t *testing.T) {
	c := newCluster(t)
	hole := blackHole(t)
	api := c.start("--report-workers", "0")
	stuck := c.startWith(hole, "--report-workers", "1", "--audit-report-lease", "3s")
	rootARN, _ := api.env.NewActiveRoot(t, "Copied Root")
	out, err := api.client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &rootARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	if err != nil {
		t.Fatal(err)
	}
	waitOwner(t, c, *out.AuditReportId)
	copied := t.TempDir()
	id, err := os.ReadFile(filepath.Join(stuck.data, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copied, "node-id"), id, 0o600); err != nil {
		t.Fatal(err)
	}
	twin := c.startIn(copied, c.s3.URL, "--report-workers", "1", "--audit-report-lease", "3s")
	// A worker claims at its start; the stuck node renews its lease each
	// second meanwhile.
	time.Sleep(2 * time.Second)
	if strings.Contains(twin.logs(), "report="+*out.AuditReportId) {
		t.Fatalf("the node of the copied id took the report another writes:\n%s", twin.logs())
	}
	stuck.kill()
	if s := waitReport(t, api, rootARN, *out.AuditReportId); s != types.AuditReportStatusSuccess {
		t.Fatalf("the report ended %s after its node died", s)
	}
	if !strings.Contains(twin.logs(), "report="+*out.AuditReportId) {
		t.Error("the node of the copied id did not take the report over")
	}
}

// blackHole returns the address of an S3 endpoint that takes connections
// and never answers: a node writing to it is stuck until it is killed.
func blackHole(t *testing.T) string {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	go func() {
		var held []net.Conn
		for {
			conn, err := hole.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, conn)
		}
	}()
	return "http://" + hole.Addr().String()
}

// waitOwner waits until a node holds the report of id.
func waitOwner(t *testing.T, c *cluster, id string) {
	t.Helper()
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var owner string
		db.QueryRow(`SELECT owner FROM audit_reports WHERE id = $1`, id).Scan(&owner)
		if owner != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no node took the report")
		}
	}
}

// TestClusterStatusChanges: a CA disabled or deleted through one node is
// so at once on the others.
func TestClusterStatusChanges(t *testing.T) {
	c := newCluster(t)
	a, b := c.start(), c.start()
	rootARN, _ := a.env.NewActiveRoot(t, "Status Root")
	b.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr(t)}) // B has it cached
	if _, err := a.client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &rootARN, Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	_, err := b.client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr(t),
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidStateException")
	if _, err := a.client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &rootARN}); err != nil {
		t.Fatal(err)
	}
	if s := b.env.Status(t, rootARN); s != types.CertificateAuthorityStatusDeleted {
		t.Errorf("the other node sees %s, want DELETED", s)
	}
	if _, err := b.client.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &rootARN}); err != nil {
		t.Fatal(err)
	}
	if s := a.env.Status(t, rootARN); s != types.CertificateAuthorityStatusDisabled {
		t.Errorf("after a restore on the other node: %s, want DISABLED", s)
	}
}

// TestClusterRefusesOtherMasterKey: a node started with a master key other
// than the cluster's stops at once, saying why, rather than serving
// requests it cannot sign.
func TestClusterRefusesOtherMasterKey(t *testing.T) {
	c := newCluster(t)
	c.start()
	other := make([]byte, 32)
	rand.Read(other)
	run, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(run, binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", c.dsn, "--object-store", "local")
	cmd.Env = append(os.Environ(), "OPENPCA_MASTER_KEY="+base64.StdEncoding.EncodeToString(other))
	out, err := cmd.CombinedOutput()
	if err == nil || run.Err() != nil || !strings.Contains(string(out), "master key is not the one this database was set up with") {
		t.Errorf("a node with another master key: %v\n%s", err, out)
	}
}

// TestClusterRevocation: a revocation through one node shows at once in
// the OCSP answers of another (which had a response for the certificate
// cached), and in a CRL in the bucket within seconds, whichever node
// publishes it.
func TestClusterRevocation(t *testing.T) {
	c := newCluster(t)
	c.s3.CreateBucket(t, "crls")
	a, b := c.start(), c.start()
	out, err := a.client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Cluster Revocation"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration: &types.RevocationConfiguration{
			CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")},
			OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	caARN := *out.CertificateAuthorityArn
	root := a.env.ActivateRoot(t, caARN)
	cert, _ := b.env.Certificate(t, caARN, b.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr(t)}))
	status := func(n *node) int {
		t.Helper()
		req, err := ocsp.CreateRequest(cert, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Post(n.url+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		resp, err := ocsp.ParseResponseForCert(body, cert, root)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	if status(a) != ocsp.Good {
		t.Fatal("a new certificate is not good")
	}
	if _, err := b.client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	if status(a) != ocsp.Revoked {
		t.Error("the other node still says good")
	}
	key := "crl/" + caARN[strings.LastIndex(caARN, "/")+1:] + ".crl"
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if der, err := c.s3.TryGet(t, "crls", key); err == nil {
			if crl, err := x509.ParseRevocationList(der); err == nil && len(crl.RevokedCertificateEntries) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL lists the revocation within 15 s")
		}
	}
}

// TestClusterMasterKeyRoll rotates the cluster's master key as the README
// says, restarting one server at a time: at every step, each server opens
// what every other sealed (a CA's key, made on one and used on all).
func TestClusterMasterKeyRoll(t *testing.T) {
	c := newCluster(t)
	oldKey := c.masterKey
	newKey, err := app.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*node{c.start(), c.start()}
	var cas []string
	check := func(step string) {
		t.Helper()
		for i, n := range nodes {
			arn, _ := n.env.NewActiveRoot(t, fmt.Sprintf("Roll %d %s", i, step))
			cas = append(cas, arn)
		}
		for i, n := range nodes {
			for _, ca := range cas {
				_, err := n.client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr(t),
					SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
				if err != nil {
					t.Errorf("%s: node %d cannot issue with %s: %v", step, i, ca, err)
				}
			}
		}
	}
	roll := func(step string) {
		t.Helper()
		for i := range nodes {
			nodes[i].kill()
			nodes[i] = c.start()
			check(fmt.Sprintf("%s, node %d restarted", step, i))
		}
	}
	check("before")
	c.masterKey, c.previous = oldKey, newKey
	roll("opening with the new key too")
	c.masterKey, c.previous = newKey, oldKey
	roll("sealing with the new key")
	dir := t.TempDir()
	oldFile, newFile := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	os.WriteFile(oldFile, []byte(oldKey), 0o600)
	os.WriteFile(newFile, []byte(newKey), 0o600)
	if out, err := runOpenpca(t, "master-key", "rotate", "--database", c.dsn, "--master-key-file", newFile); err == nil || !strings.Contains(err.Error(), "--new-master-key-file") {
		t.Fatalf("a rotation to a new random key on PostgreSQL, which no running server holds: %v\n%s", err, out)
	}
	// From a folder without a data folder, as the README's step runs,
	// while the servers run; the old key's file stays, for older dumps.
	t.Chdir(t.TempDir())
	out, err := runOpenpca(t, "master-key", "rotate", "--database", c.dsn, "--master-key-file", oldFile, "--new-master-key-file", newFile)
	if err != nil || strings.Contains(out, "not recorded") {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, _ := os.ReadFile(oldFile); string(got) != oldKey {
		t.Errorf("the rotation replaced the old key's file with %q", got)
	}
	if _, err := runOpenpca(t, "master-key", "wrap", "--database", c.dsn, "--master-key-file", filepath.Join(dir, "none.key"), "--master-key-kms-key", "alias/x"); err == nil {
		t.Error("a wrap of a key file that is not there: no error")
	}
	if _, err := os.Stat("openpca-data"); !os.IsNotExist(err) {
		t.Errorf("the rotation or the wrap made a data folder where it ran: %v", err)
	}
	// A command on PostgreSQL that writes in a data folder checks it as a
	// server does, though it takes no lock there.
	open := t.TempDir()
	os.Chmod(open, 0o777)
	if out, err := runOpenpca(t, "buckets", "create", "roll-bucket", "--account", app.DefaultAccountID, "--object-store", "local", "--database", c.dsn, "--data-dir", open, "--master-key-file", newFile); err == nil || !strings.Contains(err.Error(), "can be written by users") {
		t.Errorf("a local bucket in a folder anyone may write to: %v\n%s", err, out)
	}
	check("rotated")
	c.previous = ""
	roll("with the new key alone")
}

// TestClusterRefusesOtherIdentity: a node started with another
// --account-id or --region than the cluster's first node stops at once,
// naming the flag and the value the database records, rather than serve
// another account's buckets or say the cluster's CAs do not exist; one
// given the same starts.
func TestClusterRefusesOtherIdentity(t *testing.T) {
	c := newCluster(t)
	c.start("--account-id", "999999999999", "--region", "eu-west-1")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--account-id", app.DefaultAccountID, "--region", "eu-west-1"}, "--account-id is " + app.DefaultAccountID + ", but this database's is 999999999999"},
		{[]string{"--account-id", "999999999999"}, "--region is " + app.DefaultRegion + ", but this database's is eu-west-1"},
	} {
		run, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(run, binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", c.dsn, "--object-store", "local"}, tc.flags...)...)
		cmd.Env = append(os.Environ(), "OPENPCA_MASTER_KEY="+c.masterKey)
		out, err := cmd.CombinedOutput()
		if err == nil || run.Err() != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("a node with %v: %v\n%s", tc.flags, err, out)
		}
	}
	c.start("--account-id", "999999999999", "--region", "eu-west-1")
}
