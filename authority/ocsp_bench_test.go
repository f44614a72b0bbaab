package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"runtime/debug"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// BenchmarkOCSP measures OCSP answers over HTTP, 16 clients at once,
// against a P-256 CA on SQLite, whose key is kept in software or in
// SoftHSM2, and whose answers its delegated responder signs or the CA
// itself (--ocsp-signed-by-ca): "signed", each about a certificate not
// asked about before (signed and kept in a group commit, and logged if
// the CA signs); "kept", the same after a restart, answered from the
// database; and "cached", from the server's memory. With -benchtime Nx,
// "kept" asks about each certificate once; otherwise it cycles through
// them, and its later answers come from memory.
func BenchmarkOCSP(b *testing.B) {
	byCA := func(c *app.Config) { c.OCSPSignedByCA = true }
	for _, c := range []struct {
		name string
		opts func(b *testing.B) []testenv.Option
	}{
		{"keys=software/signer=responder", func(*testing.B) []testenv.Option { return nil }},
		{"keys=software/signer=ca", func(*testing.B) []testenv.Option { return []testenv.Option{byCA} }},
		{"keys=pkcs11/signer=responder", func(b *testing.B) []testenv.Option { return []testenv.Option{testenv.NewSoftHSM(b).Use()} }},
		{"keys=pkcs11/signer=ca", func(b *testing.B) []testenv.Option { return []testenv.Option{testenv.NewSoftHSM(b).Use(), byCA} }},
	} {
		b.Run(c.name, func(b *testing.B) { benchmarkOCSP(b, c.opts(b)...) })
	}
}

func benchmarkOCSP(b *testing.B, opts ...testenv.Option) {
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as openpca serve runs
	env := testenv.Start(b, opts...)
	caARN, root := revocationCA(b, env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	leaf := testenv.NewLeaf(b, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ocsp.example"}})
	var signed [][]byte // requests about the certificates answered so far
	run := func(b *testing.B, requests [][]byte) {
		var next atomic.Int64
		b.SetParallelism(8) // 16 clients on two processors
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := post(env.URL+"/ocsp", requests[int(next.Add(1)-1)%len(requests)]); err != nil {
					b.Error(err)
				}
			}
		})
	}
	// Each round of the first, the calibration's too, asks about
	// certificates issued for it; the others ask again about those.
	b.Run("answer=signed", func(b *testing.B) {
		fresh := make([][]byte, b.N)
		for i := range fresh {
			cert, _ := env.Certificate(b, caARN, env.Issue(b, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
			fresh[i] = ocspRequest(b, root, cert.SerialNumber)
		}
		signed = append(signed, fresh...)
		run(b, fresh)
	})
	env.Restart(b)
	b.Run("answer=kept", func(b *testing.B) { run(b, signed) })
	b.Run("answer=cached", func(b *testing.B) { run(b, signed) })
}
