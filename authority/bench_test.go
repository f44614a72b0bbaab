package authority_test

import (
	"bufio"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// BenchmarkIssueAndGet measures IssueCertificate followed by GetCertificate
// over HTTP with the SDK client, against a P-256 CA, with the client and
// the server sharing the machine and the server's garbage collector set
// as openpca serve sets it. Each certificate is durable (SQLite with
// synchronous=FULL, or PostgreSQL with fsync) before IssueCertificate
// returns. It reports certificates per second and the p50 and p99 latency
// of the pair, on each store. On SQLite it runs with a key without a
// policy and with a key whose three-statement policy the server evaluates
// at each request, and with the CA's key in a SoftHSM2 token instead of
// the software store. The whole server runs in this process, beside the
// SDK client: package bench measures a server process on its own.
func BenchmarkIssueAndGet(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as openpca serve runs
	b.Run("store=postgres", func(b *testing.B) {
		dsn := testenv.NewPostgresDB(b)
		env := testenv.Start(b, func(c *app.Config) { c.Database, c.ObjectStore = dsn, "local" })
		rootARN, _ := env.NewActiveRoot(b, "Bench Root")
		benchmarkIssueAndGet(b, env, env.Client, rootARN)
	})
	b.Run("store=sqlite", func(b *testing.B) {
		env := testenv.Start(b)
		rootARN, _ := env.NewActiveRoot(b, "Bench Root")
		b.Run("key=full", func(b *testing.B) { benchmarkIssueAndGet(b, env, env.Client, rootARN) })
		client, _ := env.NewKey(b, app.DefaultAccountID, openpca.KeyPolicy{Name: "issuer", Document: `{"Version":"2012-10-17","Statement":[
			{"Sid":"Issue","Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"` + rootARN + `",
			 "Condition":{"StringEquals":{"acm-pca:TemplateArn":"arn:aws:acm-pca:::template/EndEntityCertificate/V1"}}},
			{"Sid":"Fetch","Effect":"Allow","Action":"acm-pca:GetCertificate","Resource":"` + rootARN + `"},
			{"Sid":"NoDeletes","Effect":"Deny","Action":"acm-pca:Delete*","Resource":"*"}]}`})
		b.Run("key=policy", func(b *testing.B) { benchmarkIssueAndGet(b, env, client, rootARN) })
	})
	b.Run("store=sqlite/keys=pkcs11", func(b *testing.B) {
		env := testenv.Start(b, testenv.NewSoftHSM(b).Use())
		rootARN, _ := env.NewActiveRoot(b, "Bench Root in SoftHSM")
		benchmarkIssueAndGet(b, env, env.Client, rootARN)
	})
}

func benchmarkIssueAndGet(b *testing.B, env *testenv.Env, client *acmpca.Client, rootARN string) {
	csr := testenv.NewLeaf(b, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench.example"}, DNSNames: []string{"bench.example"}}).CSRPEM
	for _, conc := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			w0, t0, s0 := commitStats(b, env.URL)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						out, err := client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
							CertificateAuthorityArn: &rootARN, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
							Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(7)},
						})
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &rootARN, CertificateArn: out.CertificateArn}); err != nil {
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
			slices.Sort(lat)
			writes, txs, secs := commitStats(b, env.URL)
			b.ReportMetric((writes-w0)/max(txs-t0, 1), "writes/commit")
			b.ReportMetric((secs-s0)*1000/max(txs-t0, 1), "ms/commit")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "certs/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// commitStats reads the group commit counters from the server's metrics.
func commitStats(b *testing.B, url string) (writes, txs, seconds float64) {
	res, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var v float64
		switch f := strings.Fields(sc.Text()); {
		case len(f) != 2:
		case f[0] == "openpca_store_commit_writes_total":
			fmt.Sscan(f[1], &v)
			writes = v
		case f[0] == "openpca_store_commit_transactions_total":
			fmt.Sscan(f[1], &v)
			txs = v
		case f[0] == "openpca_store_commit_seconds_total":
			fmt.Sscan(f[1], &v)
			seconds = v
		}
	}
	return
}
