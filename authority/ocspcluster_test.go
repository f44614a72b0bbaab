package authority_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// ocspCluster starts two servers on one PostgreSQL database with one
// master key, as the `openpca serve` nodes of a cluster run, each with a
// clock of its own, and a CA answering OCSP with a certificate it issued.
func ocspCluster(t *testing.T, opts ...testenv.Option) (a, b *ocspEnv) {
	t.Helper()
	dsn := testenv.NewPostgresDB(t)
	key := make([]byte, 32)
	rand.Read(key)
	mk := base64.StdEncoding.EncodeToString(key)
	shared := func(c *app.Config) { c.Database, c.ObjectStore, c.MasterKey = dsn, "local", mk }
	a = newOCSPEnv(t, append([]testenv.Option{shared}, opts...)...)
	b = &ocspEnv{env: testenv.Start(t, append([]testenv.Option{shared}, opts...)...), caARN: a.caARN, root: a.root, cert: a.cert}
	return a, b
}

// statusOf asks e about serial and returns the answer's status, or -1 for
// an OCSP error response.
func statusOf(t *testing.T, e *ocspEnv, serial *big.Int) int {
	t.Helper()
	body := e.ask(t, serial)
	if len(body) < 16 {
		return -1
	}
	resp, err := ocsp.ParseResponse(body, e.root)
	if err != nil {
		t.Fatalf("the answer about %x does not verify: %v", serial, err)
	}
	return resp.Status
}

// TestOCSPClusterSeesChangesAtOnce: what one server of a cluster changes,
// another's OCSP answers show at once, though it keeps the earlier answer in memory and in the database:
// a certificate issued there, a revocation, OCSP turned off and on, the
// CA disabled, deleted, restored. GET (escaped or not) answers as POST.
func TestOCSPClusterSeesChangesAtOnce(t *testing.T) {
	a, b := ocspCluster(t)
	if s := statusOf(t, b, b.cert.SerialNumber); s != ocsp.Good {
		t.Fatalf("b: %d, want good", s)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "other.example"}})
	other, _ := b.env.Certificate(t, b.caARN, b.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &b.caARN, Csr: leaf.CSRPEM}))
	if s := statusOf(t, a, other.SerialNumber); s != ocsp.Good {
		t.Errorf("a certificate issued on b, on a: %d, want good", s)
	}
	if _, err := a.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &a.caARN,
		CertificateSerial: aws.String(a.cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, b, b.cert.SerialNumber); s != ocsp.Revoked {
		t.Errorf("revoked on a, on b: %d, want revoked", s)
	}
	update := func(in *acmpca.UpdateCertificateAuthorityInput) {
		t.Helper()
		in.CertificateAuthorityArn = &a.caARN
		if _, err := a.env.Client.UpdateCertificateAuthority(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	ocspOn := func(on bool) *types.RevocationConfiguration {
		return &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(on)}}
	}
	update(&acmpca.UpdateCertificateAuthorityInput{RevocationConfiguration: ocspOn(false)})
	if body := b.ask(t, other.SerialNumber); !bytes.Equal(body, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("OCSP turned off on a, b answers %x, want unauthorized", body)
	}
	update(&acmpca.UpdateCertificateAuthorityInput{RevocationConfiguration: ocspOn(true)})
	update(&acmpca.UpdateCertificateAuthorityInput{Status: types.CertificateAuthorityStatusDisabled})
	if s := statusOf(t, b, other.SerialNumber); s != ocsp.Good {
		t.Errorf("the CA disabled on a, b: %d, want good (a DISABLED CA answers)", s)
	}
	if _, err := a.env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &a.caARN}); err != nil {
		t.Fatal(err)
	}
	if body := b.ask(t, other.SerialNumber); !bytes.Equal(body, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("the CA deleted on a, b answers %x, want unauthorized", body)
	}
	if _, err := a.env.Client.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &a.caARN}); err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, b, b.cert.SerialNumber); s != ocsp.Revoked {
		t.Errorf("restored: %d, want revoked", s)
	}
	req := ocspRequest(t, b.root, other.SerialNumber)
	for _, p := range []string{url.PathEscape(base64.StdEncoding.EncodeToString(req)), base64.StdEncoding.EncodeToString(req)} {
		body, err := send(http.MethodGet, b.env.URL+"/ocsp/"+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := ocsp.ParseResponseForCert(body, other, b.root); err != nil || r.Status != ocsp.Good {
			t.Errorf("GET /ocsp/%s...: %v, %v", p[:12], r, err)
		}
	}
}
