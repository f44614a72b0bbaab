// Package bench measures OpenPCA under sustained load beside step-ca, the
// best-known self-hosted CA, with one load generator for both: a closed
// loop of clients, each getting certificates for P-256 CSRs one after the
// other, over HTTP(S), from servers that make every certificate durable
// before they return it. It reports certificates per second, p50 and p99
// latency, the server process's CPU time per certificate, OpenPCA's
// certificates per durable commit (group commit's batch size), and the
// ceiling: what checking the CSR and signing the certificate alone cost,
// in this process, on every core.
//
//	go test -run XXX -bench Load -benchtime 20000x -timeout 60m ./bench
//
// OPENPCA_BENCH_BINARY=path measures that openpca binary instead of this
// tree's, so that two builds can be compared run for run.
//
// The step-ca leg installs step-ca with go install if it is not on the
// PATH or in GOPATH/bin.
package bench_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }

// client gets one certificate for a CSR from a server, as its clients
// would: for OpenPCA, IssueCertificate then GetCertificate.
type client interface {
	certificate(ctx context.Context, csr *csr) error
}

// server is a server under load: a process whose CPU time is counted,
// whose CPU profile is at profile, and whose Prometheus metrics are at
// metrics, if it serves them.
type server struct {
	name             string
	pid              int
	client           client
	profile, metrics string
}

// profileEnv names a folder to keep the servers' CPU profiles in, one per
// leg and concurrency, taken over the middle of each run.
const profileEnv = "OPENPCA_BENCH_PROFILE"

// csr is a CSR in the forms the servers take it.
type csr struct {
	pem []byte // PEM
	cn  string
}

func newCSR(b *testing.B) *csr {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "bench.example"}, DNSNames: []string{"bench.example"}}, key)
	if err != nil {
		b.Fatal(err)
	}
	return &csr{pem: pemBlock("CERTIFICATE REQUEST", der), cn: "bench.example"}
}

// BenchmarkLoad runs the load against each server at concurrency 1, 4, 16
// and 64, b.N certificates each, and measures the ceiling.
func BenchmarkLoad(b *testing.B) {
	req := newCSR(b)
	legs := []struct {
		name  string
		start func(b *testing.B) *server
	}{
		{"server=openpca/store=sqlite", func(b *testing.B) *server { return startOpenPCA(b, "") }},
		{"server=openpca/store=postgres", func(b *testing.B) *server { return startOpenPCA(b, testenv.NewPostgresDB(b)) }},
		{"server=step-ca/store=bbolt", startStepCA},
	}
	for _, leg := range legs {
		b.Run(leg.name, func(b *testing.B) {
			s := leg.start(b)
			for _, c := range []int{1, 4, 16, 64} {
				b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) { load(b, s, req, c) })
			}
		})
	}
	b.Run("ceiling=csr-check+x509.CreateCertificate", func(b *testing.B) { ceiling(b, req) })
}

// load gets b.N certificates from s with c clients at once.
func load(b *testing.B, s *server, req *csr, c int) {
	ctx := context.Background()
	// Each client warms its connection first.
	for range c {
		if err := s.client.certificate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, self0 := cpuTime(b, s.pid), cpuTime(b, os.Getpid())
	writes0, commits0 := commits(b, s)
	if dir := os.Getenv(profileEnv); dir != "" && s.profile != "" {
		name := filepath.Join(dir, strings.NewReplacer("/", "-", "=", "-").Replace(b.Name())+".pprof")
		go saveProfile(b, s.profile+"?seconds=3", name)
	}
	b.ResetTimer()
	start := time.Now()
	for range c {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				t0 := time.Now()
				if err := s.client.certificate(ctx, req); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu, self := cpuTime(b, s.pid)-cpu0, cpuTime(b, os.Getpid())-self0
	if writes, commits := commits(b, s); commits > commits0 {
		b.ReportMetric((writes-writes0)/(commits-commits0), "certs/commit")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "certs/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(cpu)/float64(b.N), "server-cpu-ms/cert")
	b.ReportMetric(ms(self)/float64(b.N), "client-cpu-ms/cert")
	b.ReportMetric(0, "ns/op")
}

// commits reads how many writes and durable commits a server's group
// commit has made, if it says.
func commits(b *testing.B, s *server) (writes, commits float64) {
	if s.metrics == "" {
		return 0, 0
	}
	res, err := http.Get(s.metrics)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "openpca_store_commit_writes_total":
			writes = v
		case "openpca_store_commit_transactions_total":
			commits = v
		}
	}
	return writes, commits
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime reads the CPU time, user and system, process pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// ceiling checks the CSR and signs a certificate for it with a P-256 CA
// key, b.N times, on every core, as a server must at least.
func ceiling(b *testing.B, req *csr) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Root"}, PublicKey: caKey.Public(),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, SubjectKeyId: []byte{1, 2, 3}}
	der := pemDER(b, req.pem)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := x509.ParseCertificateRequest(der)
			if err == nil {
				err = r.CheckSignature()
			}
			if err != nil {
				b.Error(err)
				return
			}
			serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
			tmpl := &x509.Certificate{SerialNumber: serial, Subject: r.Subject, DNSNames: r.DNSNames,
				NotBefore: time.Now(), NotAfter: time.Now().AddDate(0, 0, 7), KeyUsage: x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, ca, r.PublicKey, caKey); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "certs/s")
	// Every core was busy all along.
	b.ReportMetric(ms(elapsed)*float64(runtimeCPUs())/float64(b.N), "cpu-ms/cert")
	b.ReportMetric(0, "ns/op")
}

// saveProfile fetches a CPU profile from url into file.
func saveProfile(b *testing.B, url, file string) {
	res, err := http.Get(url)
	if err != nil {
		b.Log(err)
		return
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	os.WriteFile(file, data, 0o644)
}
