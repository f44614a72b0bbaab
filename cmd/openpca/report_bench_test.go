package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/server"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// BenchmarkAuditReport measures audit reports of a CA with many issued
// certificates (OPENPCA_BENCH_CERTS, default 1,000,000), seeded through
// the store: the time from the request to SUCCESS, for JSON and CSV, and
// the peak resident memory of the server process, which runs as its own
// process so that its memory is its own. On SQLite with the local folder
// store and with S3 (versitygw), and on PostgreSQL with the local folder
// store; with the local folder store, it also times openpca audit verify
// of the JSON report. On SQLite, also with every certificate revoked after
// all were issued, as a CA's compromise would: the report checks each
// revocation where the log has it, and holds none from its issuance on;
// and with an OCSP response signed for each certificate, whose entries the
// report checks and puts in its proof file, as it does every record the
// store keeps.
func BenchmarkAuditReport(b *testing.B) {
	n := benchCerts()
	for _, tc := range []struct {
		db, objects   string
		revoked, ocsp int
	}{{"sqlite", "local", 0, 0}, {"sqlite", "s3", 0, 0}, {"postgres", "local", 0, 0}, {"sqlite", "local", n, 0}, {"sqlite", "local", 0, n}} {
		name := fmt.Sprintf("db=%s/objects=%s/certificates=%d", tc.db, tc.objects, n)
		if tc.revoked > 0 {
			name += fmt.Sprintf("/revoked=%d", tc.revoked)
		}
		if tc.ocsp > 0 {
			name += fmt.Sprintf("/ocsp=%d", tc.ocsp)
		}
		b.Run(name, func(b *testing.B) {
			var extra []string
			if tc.objects == "s3" {
				s3srv := testenv.StartS3(b)
				s3srv.CreateBucket(b, "reports")
				s3srv.Use(b, s3srv.AccessKey, s3srv.SecretKey)
				extra = append(extra, "--s3-endpoint", s3srv.URL)
			}
			data := b.TempDir()
			open := func(ctx context.Context) (*sqlstore.DB, error) {
				return sqlite.Open(ctx, filepath.Join(data, "openpca.db"), sqlite.Options{})
			}
			if tc.db == "postgres" {
				dsn := testenv.NewPostgresDB(b)
				extra = append(extra, "--database", dsn)
				if !slices.Contains(extra, "--s3-endpoint") {
					extra = append(extra, "--object-store", "local")
				}
				open = func(ctx context.Context) (*sqlstore.DB, error) { return postgres.Open(ctx, dsn, postgres.Options{}) }
			}
			srv := startServer(b, data, extra)
			env := &testenv.Env{Client: testenv.NewClient(srv.url, &http.Transport{})}
			caARN, _ := env.NewActiveRoot(b, "Bench Root")
			srv.stop(b)
			seed(b, open, caARN, n, tc.revoked, tc.ocsp)
			// The disk's writing back of the seeded database is not the
			// report's work: it made the first report seconds slower.
			syscall.Sync()
			if tc.objects == "local" {
				os.MkdirAll(filepath.Join(data, "s3", "reports"), 0o755)
			}
			srv = startServer(b, data, extra)
			defer srv.stop(b)
			env.Client = testenv.NewClient(srv.url, &http.Transport{})
			b.ResetTimer()
			stopAnon := srv.peakAnon()
			for _, format := range []types.AuditReportResponseFormat{types.AuditReportResponseFormatJson, types.AuditReportResponseFormatCsv} {
				start := time.Now()
				out, err := env.Client.CreateCertificateAuthorityAuditReport(context.Background(), &acmpca.CreateCertificateAuthorityAuditReportInput{
					CertificateAuthorityArn: &caARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: format})
				if err != nil {
					b.Fatal(err)
				}
				for {
					d, err := env.Client.DescribeCertificateAuthorityAuditReport(context.Background(), &acmpca.DescribeCertificateAuthorityAuditReportInput{
						CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
					if err != nil {
						b.Fatal(err)
					}
					if d.AuditReportStatus == types.AuditReportStatusFailed {
						b.Fatalf("report FAILED:\n%s", srv.logs())
					}
					if d.AuditReportStatus == types.AuditReportStatusSuccess {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				b.ReportMetric(time.Since(start).Seconds(), strings.ToLower(string(format))+"-seconds")
				if tc.objects == "local" && format == types.AuditReportResponseFormatJson {
					report := filepath.Join(data, "s3", "reports", *out.S3Key)
					b.ReportMetric(verifySeconds(b, srv.url, report), "verify-seconds")
				}
			}
			b.ReportMetric(float64(srv.peakRSS(b))/(1<<20), "peak-MiB")
			b.ReportMetric(float64(stopAnon())/(1<<20), "peak-anon-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// verifySeconds times openpca audit verify of a report, offline, with the
// server's public key.
func verifySeconds(b *testing.B, url, report string) float64 {
	res, err := http.Get(url + server.PathPublicKey)
	if err != nil {
		b.Fatal(err)
	}
	key, _ := io.ReadAll(res.Body)
	res.Body.Close()
	start := time.Now()
	if out, err := exec.Command(binary, "audit", "verify", "--report", report, "--key", strings.TrimSpace(string(key))).CombinedOutput(); err != nil {
		b.Fatalf("openpca audit verify: %v\n%s", err, out)
	}
	return time.Since(start).Seconds()
}

type benchServer struct {
	cmd  *exec.Cmd
	url  string
	log  string
	from int64 // where this start's lines begin in log
}

// startServer runs openpca serve on data with a report interval short
// enough for two reports in a row.
func startServer(b testing.TB, data string, extra []string) *benchServer {
	b.Helper()
	s := &benchServer{log: filepath.Join(data, "server.log")}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if fi, err := logf.Stat(); err == nil {
		s.from = fi.Size() // the log of an earlier start on data is not this one's
	}
	s.cmd = exec.Command(binary, append([]string{"serve", "--listen", listenAny, "--data-dir", data, "--audit-report-interval", "1ms"}, extra...)...)
	s.cmd.Env = append(os.Environ(), "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	logf.Close()
	// Its exit is not watched for: stop and the tests wait for it.
	s.url = servedURL(b, s.logs, "serving the AWS Private CA API", func() bool { return false })
	return s
}

func (s *benchServer) stop(b testing.TB) {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		b.Errorf("openpca exited: %v\n%s", err, s.logs())
	}
}

// logs is what this start of the server logged.
func (s *benchServer) logs() string {
	b, _ := os.ReadFile(s.log)
	return string(b[min(s.from, int64(len(b))):])
}

// peakRSS reads the process's peak resident set size (VmHWM).
func (s *benchServer) peakRSS(b testing.TB) int64 {
	kb, err := s.status("VmHWM")
	if err != nil {
		b.Fatal(err)
	}
	return kb << 10
}

// status reads one of the process's /proc status fields, in kB.
func (s *benchServer) status(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// peakAnon samples the process's anonymous resident memory (RssAnon)
// every 10 ms until stop is called, which returns the largest sample.
// VmHWM also counts the executable's pages mapped from its file, which
// the kernel keeps or drops as it likes: a binary the linker has just
// written is mapped whole, in huge pages, and one read from disk only in
// part.
func (s *benchServer) peakAnon() (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := s.status("RssAnon"); err == nil && kb<<10 > peak.Load() {
				peak.Store(kb << 10)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// seed records n issuances of the CA through the store, then the
// revocation of the first revoked of them, as many at once as the group
// commit takes.
func seed(b *testing.B, open func(context.Context) (*sqlstore.DB, error), caARN string, n, revoked, ocsp int) {
	b.Helper()
	ctx := context.Background()
	db, err := open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := openpca.ParseCAARN(caARN)
	if err != nil {
		b.Fatal(err)
	}
	der := make([]byte, 650) // the size of a P-256 end-entity certificate; reports do not read it
	rand.Read(der)
	active := []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}
	certs := make([]*openpca.Certificate, n)
	// each calls fn for each of the first n certificates from 256
	// goroutines.
	each := func(n int, fn func(i int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 256 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if err := fn(i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	each(n, func(i int) error {
		serial := make([]byte, 16)
		rand.Read(serial)
		serial[0] = serial[0]&0x7f | 0x01
		s := hex.EncodeToString(serial)
		at := time.Now().UTC().Truncate(time.Microsecond) // as the service stores times
		c := &openpca.Certificate{CAID: p.CAID, AccountID: p.AccountID, Serial: s, ARN: caARN + "/certificate/" + s, DER: der,
			Subject:   fmt.Sprintf("CN=host-%d.example.com,OU=Engineering,O=Example Corp,L=Seattle,ST=Washington,C=US", i+1),
			NotBefore: at.Add(-time.Hour), NotAfter: at.AddDate(0, 0, 30), IssuedAt: at,
			TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "account:" + p.AccountID, RequestID: s}
		certs[i] = c
		_, err := db.RecordIssuance(ctx, &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(caARN, c), Statuses: active})
		return err
	})
	b.Logf("seeded %d certificates in %v", n, time.Since(start).Round(time.Millisecond))
	if revoked > 0 && !b.Failed() {
		start = time.Now()
		each(revoked, func(i int) error {
			c := certs[i]
			at := time.Now().UTC().Truncate(time.Microsecond)
			return db.RecordRevocation(ctx, &openpca.Revocation{CAID: c.CAID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonKeyCompromise,
				Use: openpca.RevokeUse(caARN, c, at, openpca.RevocationReasonKeyCompromise, "account:"+p.AccountID, c.Serial), Statuses: active})
		})
		b.Logf("revoked %d of them in %v", revoked, time.Since(start).Round(time.Millisecond))
	}
	if ocsp > 0 && !b.Failed() {
		start = time.Now()
		ca := &openpca.CA{ID: p.CAID, ARN: caARN, AccountID: p.AccountID}
		response := make([]byte, 300) // about a P-256 CA's OCSP response
		rand.Read(response)
		each(ocsp, func(i int) error {
			at := time.Now().UTC().Truncate(time.Microsecond)
			return db.RecordOCSP(ctx, openpca.OCSPUse(ca, certs[i].Serial, "good", at, response), nil, active)
		})
		b.Logf("signed an OCSP response for %d of them in %v", ocsp, time.Since(start).Round(time.Millisecond))
	}
}

// BenchmarkBackupRestore times openpca backup and openpca restore of a
// SQLite database with a CA of a million certificates
// (OPENPCA_BENCH_CERTS), seeded as for BenchmarkAuditReport: the restore
// checks every CA's key-use log before it settles the copy.
func BenchmarkBackupRestore(b *testing.B) {
	data, _ := seededSQLite(b)
	syscall.Sync()
	b.ResetTimer()
	for range b.N {
		backup := filepath.Join(b.TempDir(), "openpca.backup")
		start := time.Now()
		if out, err := exec.Command(binary, "backup", "--data-dir", data, "--to", backup).CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		b.ReportMetric(time.Since(start).Seconds(), "backup-seconds")
		start = time.Now()
		if out, err := exec.Command(binary, "restore", "--from", backup, "--data-dir", filepath.Join(b.TempDir(), "restored"),
			"--master-key-file", filepath.Join(data, "master.key")).CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		b.ReportMetric(time.Since(start).Seconds(), "restore-seconds")
	}
	b.ReportMetric(0, "ns/op")
}

// benchCerts is how many certificates a benchmark seeds its CA with:
// OPENPCA_BENCH_CERTS, by default a million.
func benchCerts() int {
	if v := os.Getenv("OPENPCA_BENCH_CERTS"); v != "" {
		n, _ := strconv.Atoi(v)
		return n
	}
	return 1_000_000
}

// seededSQLite makes a data folder whose SQLite database holds an active
// root CA with benchCerts certificates (seed), and returns it and the
// CA's ARN. No server runs on it.
func seededSQLite(b *testing.B) (data, caARN string) {
	data = b.TempDir()
	srv := startServer(b, data, nil)
	env := &testenv.Env{Client: testenv.NewClient(srv.url, &http.Transport{})}
	caARN, _ = env.NewActiveRoot(b, "Bench Root")
	srv.stop(b)
	seed(b, func(ctx context.Context) (*sqlstore.DB, error) {
		return sqlite.Open(ctx, filepath.Join(data, "openpca.db"), sqlite.Options{})
	}, caARN, benchCerts(), 0, 0)
	return data, caARN
}
