package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"runtime/debug"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// BenchmarkOCSP measures OCSP answers over HTTP, 16 clients at once,
// against a P-256 CA on SQLite: "signed", each about a certificate not
// asked about before (signed, logged and kept in the group commit);
// "kept", the same after a restart, answered from the database; and
// "cached", from the server's memory.
func BenchmarkOCSP(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as openpca serve runs
	env := testenv.Start(b)
	caARN, root := revocationCA(b, env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	leaf := testenv.NewLeaf(b, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ocsp.example"}})
	var serials []*big.Int
	issued := func(n int) []*big.Int {
		for len(serials) < n {
			cert, _ := env.Certificate(b, caARN, env.Issue(b, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
			serials = append(serials, cert.SerialNumber)
		}
		return serials[:n]
	}
	ask := func(b *testing.B) {
		requests := make([][]byte, b.N)
		for i, serial := range issued(b.N) {
			requests[i] = ocspRequest(b, root, serial)
		}
		var next atomic.Int64
		b.SetParallelism(8) // 16 clients on two processors
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := post(env.URL+"/ocsp", requests[next.Add(1)-1]); err != nil {
					b.Error(err)
				}
			}
		})
	}
	b.Run("answer=signed", ask)
	env.Restart(b)
	b.Run("answer=kept", ask)
	b.Run("answer=cached", ask)
}
