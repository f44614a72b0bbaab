package authority_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// revocationCA creates and activates a root CA with rc, and returns its ARN
// and certificate.
func revocationCA(t testing.TB, env *testenv.Env, rc *types.RevocationConfiguration) (string, *x509.Certificate) {
	t.Helper()
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Revocation Root"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration:           rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return *out.CertificateAuthorityArn, env.ActivateRoot(t, *out.CertificateAuthorityArn)
}

// waitCRL waits for fetch to give a CRL newer than number, and returns
// it, parsed and as fetched.
func waitCRL(t *testing.T, env *testenv.Env, number int64, fetch func() ([]byte, error)) (*x509.RevocationList, []byte) {
	t.Helper()
	return awaitCRL(t, env, fmt.Sprintf("newer than number %d", number), fetch, func(crl *x509.RevocationList) bool { return crl.Number.Int64() > number })
}

// crlListing waits for the CRL of caARN in local bucket bucket to list
// serial alone, and returns it: of whichever number, as one CRL may
// answer requests for several.
func crlListing(t *testing.T, env *testenv.Env, bucket, caARN string, serial *big.Int) []byte {
	t.Helper()
	path := filepath.Join(env.Config.DataDir, "s3", bucket, "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl")
	_, der := awaitCRL(t, env, fmt.Sprintf("listing %x alone", serial), func() ([]byte, error) { return os.ReadFile(path) }, func(crl *x509.RevocationList) bool {
		return len(crl.RevokedCertificateEntries) == 1 && crl.RevokedCertificateEntries[0].SerialNumber.Cmp(serial) == 0
	})
	return der
}

// awaitCRL waits for fetch to give a CRL that is what want, and returns
// it, parsed and as fetched.
func awaitCRL(t *testing.T, env *testenv.Env, what string, fetch func() ([]byte, error), want func(*x509.RevocationList) bool) (*x509.RevocationList, []byte) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// A CRL waits for the second after the last CRL's.
		env.Clock.CatchUp()
		der, err := fetch()
		if err != nil {
			last = err
			continue
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("the published CRL does not parse: %v", err)
		}
		if want(crl) {
			return crl, der
		}
		last = fmt.Errorf("CRL %d lists %d certificates", crl.Number, len(crl.RevokedCertificateEntries))
	}
	t.Fatalf("no CRL %s within 30 s (last: %v)", what, last)
	return nil, nil
}

func httpGet(url string) ([]byte, error) { return send(http.MethodGet, url, nil) }

func post(url string, body []byte) ([]byte, error) { return send(http.MethodPost, url, body) }

// send sends a request and returns the body of a 200 answer.
func send(method, url string, body []byte) ([]byte, error) {
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/ocsp-request")
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, errors.New(res.Status)
	}
	return io.ReadAll(res.Body)
}

// writePEM writes DER blocks as a PEM file in dir.
func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	for _, d := range ders {
		pem.Encode(&b, &pem.Block{Type: typ, Bytes: d})
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openssl runs Debian's openssl and returns its output and whether it
// succeeded.
func openssl(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running openssl: %v", err)
	}
	return string(out), err == nil
}

// logKinds returns the kinds of a CA's key uses, in order.
func logKinds(t testing.TB, env *testenv.Env, caARN string) []string {
	t.Helper()
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	uses, err := a.Store.KeyUses(ctx, caARN[strings.LastIndex(caARN, "/")+1:], 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range uses {
		kinds = append(kinds, u.Kind)
	}
	return kinds
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestCRLAndOCSP follows a certificate from good to revoked through what
// relying parties see: the CRL in a local bucket, served at the
// distribution point the certificate names, and the OCSP responder the
// certificate names, both checked with Debian's openssl.
func TestCRLAndOCSP(t *testing.T) {
	env := testenv.Start(t)
	bucket := makeLocalBucket(t, env, "crls")
	caARN, root := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)},
		OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
	})
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	crlPath := filepath.Join(bucket, "crl", caID+".crl")
	fromFile := func() ([]byte, error) { return os.ReadFile(crlPath) }

	// A CRL with no revocations is published once the CA has its
	// certificate.
	crl, _ := waitCRL(t, env, 0, fromFile)
	if len(crl.RevokedCertificateEntries) != 0 || crl.NextUpdate.Sub(crl.ThisUpdate) != 72*time.Hour {
		t.Errorf("first CRL: %d entries, valid %v", len(crl.RevokedCertificateEntries), crl.NextUpdate.Sub(crl.ThisUpdate))
	}
	if err := crl.CheckSignatureFrom(root); err != nil {
		t.Errorf("the CRL is not signed by the CA: %v", err)
	}

	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "revoked.example"}, DNSNames: []string{"revoked.example"}})
	other := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kept.example"}})
	leafARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM})
	otherARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: other.CSRPEM})
	cert, _ := env.Certificate(t, caARN, leafARN)
	otherCert, _ := env.Certificate(t, caARN, otherARN)
	wantCDP := env.URL + "/s3/crls/crl/" + caID + ".crl"
	if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCDP {
		t.Errorf("CRL distribution points %v, want %s", cert.CRLDistributionPoints, wantCDP)
	}
	if len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != env.URL+"/ocsp" {
		t.Errorf("OCSP servers %v, want %s/ocsp", cert.OCSPServer, env.URL)
	}
	if len(root.CRLDistributionPoints) != 0 {
		t.Errorf("the root's self-signed certificate names a CRL: %v", root.CRLDistributionPoints)
	}
	served, err := httpGet(wantCDP)
	if onDisk, _ := os.ReadFile(crlPath); err != nil || !bytes.Equal(served, onDisk) {
		t.Fatalf("the distribution point does not serve the CRL: %v", err)
	}
	if _, err := httpGet(env.URL + "/s3/crls/audit-report/x.json"); err == nil {
		t.Error("the local bucket serves more than CRLs")
	}

	dir := t.TempDir()
	rootPEM := writePEM(t, dir, "root.pem", "CERTIFICATE", root.Raw)
	writePEM(t, dir, "leaf.pem", "CERTIFICATE", cert.Raw)
	writePEM(t, dir, "other.pem", "CERTIFICATE", otherCert.Raw)
	checkCRL := func(der []byte) {
		t.Helper()
		writePEM(t, dir, "crl.pem", "X509 CRL", der)
		if out, ok := openssl(t, dir, "crl", "-in", "crl.pem", "-noout", "-text", "-CAfile", rootPEM); !ok || !strings.Contains(out, "verify OK") {
			t.Fatalf("openssl crl refuses the CRL:\n%s", out)
		}
	}
	verify := func(name string) (string, bool) {
		return openssl(t, dir, "verify", "-crl_check", "-CAfile", rootPEM, "-CRLfile", "crl.pem", name)
	}
	askOCSP := func(name string) string {
		t.Helper()
		out, ok := openssl(t, dir, "ocsp", "-issuer", rootPEM, "-cert", name, "-url", env.URL+"/ocsp", "-CAfile", rootPEM, "-no_nonce", "-resp_text")
		if !ok {
			t.Fatalf("openssl ocsp failed:\n%s", out)
		}
		return out
	}
	_, der := waitCRL(t, env, 0, fromFile)
	checkCRL(der)
	if out, ok := verify("leaf.pem"); !ok {
		t.Fatalf("openssl verify -crl_check refuses a good certificate:\n%s", out)
	}
	if out := askOCSP("leaf.pem"); !strings.Contains(out, "leaf.pem: good") || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("OCSP for a good certificate:\n%s", out)
	}
	before := logKinds(t, env, caARN)
	if out := askOCSP("leaf.pem"); !strings.Contains(out, "leaf.pem: good") {
		t.Fatalf("OCSP again:\n%s", out)
	}
	if after := logKinds(t, env, caARN); count(after, openpca.KeyUseOCSP) != count(before, openpca.KeyUseOCSP) {
		t.Errorf("a second request was signed again instead of answered from the cache: %v", after)
	}

	// Revoke: a new CRL within seconds lists it, and OCSP says revoked,
	// in an answer not dated before the revocation.
	_, err = env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise})
	if err != nil {
		t.Fatal(err)
	}
	crl, der = waitCRL(t, env, crl.Number.Int64(), fromFile)
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 ||
		crl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("CRL after the revocation: %+v", crl.RevokedCertificateEntries)
	}
	checkCRL(der)
	if out, ok := verify("leaf.pem"); ok || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check accepts a revoked certificate:\n%s", out)
	}
	if out, ok := verify("other.pem"); !ok {
		t.Errorf("openssl verify -crl_check refuses a certificate not revoked:\n%s", out)
	}
	if out := askOCSP("leaf.pem"); !strings.Contains(out, "leaf.pem: revoked") || !strings.Contains(out, "Reason: keyCompromise") {
		t.Errorf("OCSP for a revoked certificate:\n%s", out)
	}

	// The same by GET, with the request in the path.
	req, err := ocsp.CreateRequest(cert, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := httpGet(env.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(req)))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := ocsp.ParseResponseForCert(body, cert, root); err != nil || resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("OCSP by GET: %+v, %v", resp, err)
	} else if resp.RevokedAt.After(resp.ThisUpdate) || !resp.ProducedAt.Equal(resp.ThisUpdate) {
		t.Errorf("OCSP answer produced at %s, for %s, of a revocation at %s", resp.ProducedAt, resp.ThisUpdate, resp.RevokedAt)
	}
	// A serial the CA never issued is unknown.
	req, _ = ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(0xbadbad)}, root, nil)
	body, err = post(env.URL+"/ocsp", req)
	if resp, perr := ocsp.ParseResponse(body, root); err != nil || perr != nil || resp.Status != ocsp.Unknown {
		t.Errorf("OCSP for an unknown serial: %+v, %v, %v", resp, err, perr)
	}
	// A request whose base64 has "//", left unescaped as some clients
	// leave '/', is the request sent: no redirect to a cleaned path.
	for n := int64(1); ; n++ {
		req, _ = ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(n)}, root, nil)
		if b64 := base64.StdEncoding.EncodeToString(req); strings.Contains(b64, "//") {
			body, err = httpGet(env.URL + "/ocsp/" + b64)
			if resp, perr := ocsp.ParseResponse(body, root); err != nil || perr != nil || resp.Status != ocsp.Unknown || resp.SerialNumber.Int64() != n {
				t.Errorf("OCSP by GET of %s: %+v, %v, %v", b64, resp, err, perr)
			}
			break
		}
	}
	// Malformed requests get malformedRequest, never a server error.
	for _, bad := range [][]byte{nil, []byte("not DER"), bytes.Repeat([]byte{0x30}, 70000)} {
		if body, err := post(env.URL+"/ocsp", bad); err != nil || !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
			t.Errorf("POST %q...: %x, %v", bad[:min(len(bad), 8)], body, err)
		}
	}
	if body, err := httpGet(env.URL + "/ocsp/not-base64!"); err != nil || !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
		t.Errorf("GET of a bad path: %x, %v", body, err)
	}

	kinds := logKinds(t, env, caARN)
	// OCSP answers are signed by the CA's responder, whose certificate
	// is the CA's last issuance.
	if count(kinds, openpca.KeyUseCRL) < 2 || count(kinds, openpca.KeyUseOCSP) != 0 {
		t.Errorf("the key-use log has not the CRL signings, or has OCSP signings: %v", kinds)
	}

	// Describe shows the configuration back; disabling CRLs stops their
	// publication.
	d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
	if err != nil {
		t.Fatal(err)
	}
	if rc := d.CertificateAuthority.RevocationConfiguration; rc == nil || !*rc.CrlConfiguration.Enabled || *rc.CrlConfiguration.S3BucketName != "crls" ||
		*rc.CrlConfiguration.ExpirationInDays != 3 || !*rc.OcspConfiguration.Enabled {
		t.Errorf("described revocation configuration %+v", rc)
	}
	_, err = env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(false)}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(otherCert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonSuperseded})
	if err != nil {
		t.Fatal(err)
	}
	// The revocation asks for a CRL; the publisher takes the request and,
	// CRLs being disabled, settles it without one.
	db := env.DB(t)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var published, wanted int64
		if err := db.QueryRow(`SELECT published, wanted FROM crl_publications WHERE ca_id = ?`, caID).Scan(&published, &wanted); err != nil {
			t.Fatal(err)
		}
		if published == wanted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL the revocation asked for was never settled (published %d, wanted %d)", published, wanted)
		}
	}
	if n := count(logKinds(t, env, caARN), openpca.KeyUseCRL); n != count(kinds, openpca.KeyUseCRL) {
		t.Errorf("a CRL was signed after CRLs were disabled: %d CRLs in the log, %d before", n, count(kinds, openpca.KeyUseCRL))
	}
	if last, _ := waitCRL(t, env, 0, fromFile); last.Number.Cmp(crl.Number) != 0 {
		t.Errorf("CRL %v was published after CRLs were disabled", last.Number)
	}
	later := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "later.example"}})
	laterCert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: later.CSRPEM}))
	if len(laterCert.CRLDistributionPoints) != 0 || len(laterCert.OCSPServer) != 1 {
		t.Errorf("after disabling CRLs: distribution points %v, OCSP %v", laterCert.CRLDistributionPoints, laterCert.OCSPServer)
	}
}

// TestCRLS3 publishes to an S3-compatible server, with its distribution
// point at the bucket's address there.
func TestCRLS3(t *testing.T) {
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "pca-crls")
	env := testenv.Start(t, s3.Use(t, s3.AccessKey, s3.SecretKey))
	caARN, root := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("pca-crls"), S3ObjectAcl: types.S3ObjectAclBucketOwnerFullControl},
	})
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	crl, _ := waitCRL(t, env, 0, func() ([]byte, error) { return s3.TryGet(t, "pca-crls", "crl/"+caID+".crl") })
	if err := crl.CheckSignatureFrom(root); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "s3.example"}})
	cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
	if want := s3.URL + "/pca-crls/crl/" + caID + ".crl"; len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != want {
		t.Errorf("distribution points %v, want %s", cert.CRLDistributionPoints, want)
	}
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonCessationOfOperation}); err != nil {
		t.Fatal(err)
	}
	crl, _ = waitCRL(t, env, crl.Number.Int64(), func() ([]byte, error) { return s3.TryGet(t, "pca-crls", "crl/"+caID+".crl") })
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].ReasonCode != 5 {
		t.Errorf("CRL after the revocation: %+v", crl.RevokedCertificateEntries)
	}
}

// TestCRLConfiguration: the bucket must exist; CustomPath, CustomCname,
// OmitExtension and PARTITIONED shape where the CRL goes and what
// certificates and CRLs say.
func TestCRLConfiguration(t *testing.T) {
	env := testenv.Start(t)
	bucket := makeLocalBucket(t, env, "crls")
	_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "No Bucket"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
			Enabled: aws.Bool(true), S3BucketName: aws.String("no-such-bucket")}},
	})
	testenv.WantError(t, err, "InvalidArgsException")
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket does not exist") {
		t.Errorf("a missing CRL bucket: %v", err)
	}

	caARN, root := revocationCA(t, env, &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
		Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), CustomPath: aws.String("pki/revoked"),
		CustomCname: aws.String("crl.example.com"), CrlType: types.CrlTypePartitioned}})
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	crl, _ := waitCRL(t, env, 0, func() ([]byte, error) { return os.ReadFile(filepath.Join(bucket, "pki", "revoked", caID+".crl")) })
	wantCDP := "http://crl.example.com/pki/revoked/" + caID + ".crl"
	var idp *pkix.Extension
	for _, e := range crl.Extensions {
		if e.Id.String() == "2.5.29.28" {
			idp = &e
		}
	}
	if idp == nil || !idp.Critical || !bytes.Contains(idp.Value, []byte(wantCDP)) {
		t.Errorf("a PARTITIONED CRL's issuing distribution point: %+v", idp)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cname.example"}})
	cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
	if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCDP || len(cert.OCSPServer) != 0 {
		t.Errorf("distribution points %v (want %s), OCSP %v", cert.CRLDistributionPoints, wantCDP, cert.OCSPServer)
	}
	writePEM(t, bucket, "root.pem", "CERTIFICATE", root.Raw)

	omitted, _ := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"),
			CrlDistributionPointExtensionConfiguration: &types.CrlDistributionPointExtensionConfiguration{OmitExtension: aws.Bool(true)}},
		OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true), OcspCustomCname: aws.String("ocsp.example.com")},
	})
	cert, _ = env.Certificate(t, omitted, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &omitted, Csr: leaf.CSRPEM}))
	if len(cert.CRLDistributionPoints) != 0 || len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != "http://ocsp.example.com/ocsp" {
		t.Errorf("with the extension omitted: distribution points %v, OCSP %v", cert.CRLDistributionPoints, cert.OCSPServer)
	}

	// A CustomPath with what a URL would read otherwise ("%41" as "A", a
	// "?" as the query's start) is escaped in the distribution point,
	// which serves the CRL.
	// What a path holds as it is stays so, in the distribution points of
	// certificates issued before the escaping as after.
	for path, escaped := range map[string]string{"a%41b": "a%2541b", "q?x": "q%3Fx", "sub;x=1": "sub;x=1", "a(1),b!c*d'e": "a(1),b!c*d'e"} {
		ca, _ := revocationCA(t, env, &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
			Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), CustomPath: aws.String(path)}})
		cert, _ := env.Certificate(t, ca, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf.CSRPEM}))
		want := env.URL + "/s3/crls/" + escaped + "/" + ca[strings.LastIndex(ca, "/")+1:] + ".crl"
		if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != want {
			t.Fatalf("CustomPath %q: distribution points %v, want %s", path, cert.CRLDistributionPoints, want)
		}
		waitCRL(t, env, 0, func() ([]byte, error) { return httpGet(want) })
	}

	// A CA without revocation configuration describes both as disabled.
	plain := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Plain")
	d, err := env.Client.DescribeCertificateAuthority(context.Background(), &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &plain})
	if err != nil {
		t.Fatal(err)
	}
	if rc := d.CertificateAuthority.RevocationConfiguration; rc == nil || rc.CrlConfiguration == nil || *rc.CrlConfiguration.Enabled ||
		rc.OcspConfiguration == nil || *rc.OcspConfiguration.Enabled {
		t.Errorf("a CA without revocation describes %+v", rc)
	}
}

// TestRevocationInfoIsTheCAs: a certificate of a CA that publishes CRLs
// and answers OCSP names the CA's distribution point and responder,
// whatever the CSR or the API passes through for them: elsewhere, a
// revocation would never reach relying parties. One of a CA that
// publishes CRLs alone names no responder passed through, which clients
// would ask first, but keeps where its issuer's certificate is; one that
// answers OCSP alone, no distribution point; neither, a delta CRL. One
// whose CRLs omit the extension keeps the distribution point passed
// through, as AWS documents. A CA that publishes neither keeps what was
// passed through.
func TestRevocationInfoIsTheCAs(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	crls := &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)}
	published, _ := revocationCA(t, env, &types.RevocationConfiguration{CrlConfiguration: crls, OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	crlsOnly, _ := revocationCA(t, env, &types.RevocationConfiguration{CrlConfiguration: crls})
	ocspOnly, _ := revocationCA(t, env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	omitted, _ := revocationCA(t, env, &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"),
		CrlDistributionPointExtensionConfiguration: &types.CrlDistributionPointExtensionConfiguration{OmitExtension: aws.Bool(true)}}})
	unpublished, _ := revocationCA(t, env, nil)
	// The extensions' values, as a certificate that names the elsewhere
	// carries them; its delta CRL, in the same form as its CRL.
	elsewhere := &x509.Certificate{SerialNumber: big.NewInt(1), CRLDistributionPoints: []string{"http://elsewhere.example/never.crl"},
		OCSPServer: []string{"http://elsewhere.example/ocsp"}, IssuingCertificateURL: []string{"http://elsewhere.example/ca.crt"}}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, elsewhere, elsewhere, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(der)
	var exts []pkix.Extension
	var custom []types.CustomExtension
	for _, e := range parsed.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 31}) {
			exts = append(exts, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 46}, Value: e.Value})
		}
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 31}) || e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}) {
			exts = append(exts, e)
		}
	}
	for _, e := range exts {
		custom = append(custom, types.CustomExtension{ObjectIdentifier: aws.String(e.Id.String()), Value: aws.String(base64.StdEncoding.EncodeToString(e.Value))})
	}
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "passed.example"}, ExtraExtensions: exts}).CSRPEM
	api := &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: custom}}
	ownCRL := func(ca string) []string {
		return []string{env.URL + "/s3/crls/crl/" + ca[strings.LastIndex(ca, "/")+1:] + ".crl"}
	}
	for _, tc := range []struct {
		name, template string
		api            *types.ApiPassthrough
	}{
		{"API passthrough", "arn:aws:acm-pca:::template/EndEntityCertificate_APIPassthrough/V1", api},
		{"CSR passthrough", "arn:aws:acm-pca:::template/EndEntityCertificate_CSRPassthrough/V1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for ca, want := range map[string]string{
				published:   fmt.Sprint(ownCRL(published), []string{env.URL + "/ocsp"}, []string(nil), false),
				crlsOnly:    fmt.Sprint(ownCRL(crlsOnly), []string(nil), []string{"http://elsewhere.example/ca.crt"}, false),
				ocspOnly:    fmt.Sprint([]string(nil), []string{env.URL + "/ocsp"}, []string(nil), false),
				omitted:     fmt.Sprint([]string{"http://elsewhere.example/never.crl"}, []string(nil), []string{"http://elsewhere.example/ca.crt"}, false),
				unpublished: fmt.Sprint([]string{"http://elsewhere.example/never.crl"}, []string{"http://elsewhere.example/ocsp"}, []string{"http://elsewhere.example/ca.crt"}, true),
			} {
				arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr, TemplateArn: &tc.template, ApiPassthrough: tc.api})
				cert, _ := env.Certificate(t, ca, arn)
				delta := slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 46}) })
				if got := fmt.Sprint(cert.CRLDistributionPoints, cert.OCSPServer, cert.IssuingCertificateURL, delta); got != want {
					t.Errorf("a certificate of %s: %s, want %s", ca, got, want)
				}
			}
		})
	}
}

// TestImportedCertificateWithoutKeyID: a subordinate CA whose imported
// certificate has no subject key identifier (OpenSSL makes one so when
// told) names its key in what it signs all the same: its certificates
// have an authority key identifier, and its CRLs are signed, and list its
// revocations.
func TestImportedCertificateWithoutKeyID(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "No Key ID"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeSubordinate,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
			Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ca := *out.CertificateAuthorityArn
	root := testenv.NewExternalRoot(t, "OpenSSL Root")
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(root.Key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "root.key", "PRIVATE KEY", keyDER)
	writePEM(t, dir, "root.pem", "CERTIFICATE", root.Cert.Raw)
	writePEM(t, dir, "sub.csr", "CERTIFICATE REQUEST", env.CSR(t, ca).Raw)
	os.WriteFile(filepath.Join(dir, "ext.cnf"), []byte("basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n"), 0o600)
	cmd := exec.Command("openssl", "x509", "-req", "-in", "sub.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "7",
		"-days", "365", "-extfile", "ext.cnf", "-out", "sub.pem")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, b)
	}
	sub, _ := os.ReadFile(filepath.Join(dir, "sub.pem"))
	if c := testenv.ParsePEM(t, string(sub)); len(c[0].SubjectKeyId) != 0 {
		t.Fatalf("OpenSSL made a subject key identifier: %x", c[0].SubjectKeyId)
	}
	// OpenSSL's certificate is valid from the second it was made, which
	// the server's clock, taken at the test's start, may not have reached.
	env.Clock.Advance(time.Minute)
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &ca, Certificate: sub, CertificateChain: root.PEM}); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
	arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf.CSRPEM})
	cert, _ := env.Certificate(t, ca, arn)
	want, _ := pki.SubjectKeyID(env.CSR(t, ca).PublicKey)
	if !bytes.Equal(cert.AuthorityKeyId, want) {
		t.Errorf("the certificate's authority key identifier is %x, want the CA key's %x", cert.AuthorityKeyId, want)
	}
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &ca,
		CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	crlListing(t, env, "crls", ca, cert.SerialNumber)
}

// TestImportedKeyUsage: an imported CA certificate without the key usage
// extension, which RFC 5280 lets do everything, signs CRLs that list its
// revocations. One whose key usage leaves out keyCertSign is refused, and
// one that leaves out cRLSign is refused while the CA publishes CRLs, and
// once imported keeps them off.
func TestImportedKeyUsage(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	crls := &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
		Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)}}
	root := testenv.NewExternalRoot(t, "Root")
	// newSub creates a subordinate CA and signs its key with usage.
	newSub := func(name string, rc *types.RevocationConfiguration, usage x509.KeyUsage) (string, []byte) {
		t.Helper()
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, name),
			CertificateAuthorityType:          types.CertificateAuthorityTypeSubordinate, RevocationConfiguration: rc})
		if err != nil {
			t.Fatal(err)
		}
		ca := *out.CertificateAuthorityArn
		return ca, root.Sign(t, name, env.CSR(t, ca).PublicKey, time.Now().AddDate(1, 0, 0), func(c *x509.Certificate) { c.KeyUsage = usage }).PEM
	}
	importCert := func(ca string, cert []byte) error {
		_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
			CertificateAuthorityArn: &ca, Certificate: cert, CertificateChain: root.PEM})
		return err
	}

	ca, cert := newSub("No keyCertSign", nil, x509.KeyUsageDigitalSignature|x509.KeyUsageCRLSign)
	testenv.WantError(t, importCert(ca, cert), "MalformedCertificateException")

	ca, cert = newSub("No cRLSign", crls, x509.KeyUsageCertSign)
	testenv.WantError(t, importCert(ca, cert), "InvalidRequestException")
	ca, cert = newSub("No cRLSign, no CRLs", nil, x509.KeyUsageCertSign)
	if err := importCert(ca, cert); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca, RevocationConfiguration: crls})
	testenv.WantError(t, err, "InvalidArgsException")
	// Such a CA that published CRLs before this rule (its record, changed
	// here, says so) keeps the rest of its configuration changeable.
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	record, err := a.Store.FindCA(ctx, app.DefaultAccountID, ca[strings.LastIndex(ca, "/")+1:])
	if err == nil {
		record.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: "crls"}}
		err = a.Store.UpdateCA(ctx, record, nil)
	}
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca,
		RevocationConfiguration: &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}}}); err != nil {
		t.Errorf("an update of OCSP alone: %v", err)
	}

	ca, cert = newSub("No key usage", crls, 0)
	if c := testenv.ParsePEM(t, string(cert)); !pki.KeyUsageAllows(c[0], x509.KeyUsageCRLSign) || c[0].KeyUsage != 0 {
		t.Fatal("the certificate has a key usage extension")
	}
	if err := importCert(ca, cert); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
	issued, _ := env.Certificate(t, ca, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf.CSRPEM}))
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &ca,
		CertificateSerial: aws.String(issued.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	crlListing(t, env, "crls", ca, issued.SerialNumber)
}

// TestCRLAfterClockStepsBack: once the clock steps back from days ahead
// (or a server on time follows one whose clock ran ahead), a new CRL
// comes at once, not dated ahead as the last was; it lists a revoked
// certificate that has not expired, though the last CRL is dated past its
// end.
func TestCRLAfterClockStepsBack(t *testing.T) {
	env := testenv.Start(t)
	bucket := makeLocalBucket(t, env, "crls")
	caARN, _ := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(7)},
	})
	fetch := func() ([]byte, error) {
		return os.ReadFile(filepath.Join(bucket, "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl"))
	}
	last, _ := waitCRL(t, env, 0, fetch)
	revoke := func(days int64) *big.Int {
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "revoked.example"}})
		cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM,
			Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(days)}}))
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
			CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
			t.Fatal(err)
		}
		last, _ = waitCRL(t, env, last.Number.Int64(), fetch)
		return cert.SerialNumber
	}
	lists := func(serial *big.Int) bool {
		return slices.ContainsFunc(last.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return e.SerialNumber.Cmp(serial) == 0 })
	}
	short := revoke(1)
	env.Clock.Advance(48 * time.Hour)
	revoke(30) // a CRL dated two days ahead, past short's end
	env.Clock.Advance(-48*time.Hour + time.Minute)
	last, _ = waitCRL(t, env, last.Number.Int64(), fetch)
	if now := env.Clock.Now(); last.ThisUpdate.After(now) {
		t.Errorf("at %v, the CRL's thisUpdate is %v", now, last.ThisUpdate)
	}
	if !lists(short) {
		t.Errorf("CRL %v, signed at %v, leaves out %x, revoked and valid for a day", last.Number, last.ThisUpdate, short)
	}
}

// TestCAOfEarlierVersion: a CA that a version before OCSP and CRL
// publishing made had no key hash and no CRL publication after the
// migrations that added them; its certificates named the responder and
// the CRL, which never answered for it. The server gives it both as it
// starts. Until then, an empty key hash names no CA.
func TestCAOfEarlierVersion(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	caARN, root := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(7)},
		OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
	})
	path := filepath.Join(env.Config.DataDir, "s3", "crls", "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl")
	waitCRL(t, env, 0, func() ([]byte, error) { return os.ReadFile(path) })
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "earlier.example"}})
	cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
	if _, err := env.DB(t).Exec(`UPDATE certificate_authorities SET key_id = ''`); err != nil {
		t.Fatal(err)
	}
	name, _ := issuerHashes(t, root)
	if body, err := post(env.URL+"/ocsp", buildOCSPRequest(name, []byte{}, cert.SerialNumber, nil)); err != nil || !bytes.Equal(body, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("an empty key hash, with a CA that has none: %x, %v, want unauthorized", body, err)
	}
	env.Stop(t)
	if _, err := env.DB(t).Exec(`DELETE FROM crl_publications`); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	body, err := post(env.URL+"/ocsp", ocspRequest(t, root, cert.SerialNumber))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := ocsp.ParseResponseForCert(body, cert, root); err != nil || resp.Status != ocsp.Revoked {
		t.Errorf("OCSP: %+v, %v, want revoked", resp, err)
	}
	crlListing(t, env, "crls", caARN, cert.SerialNumber)
}

// TestRevokeExpiredCertificate: "The RevokeCertificate API cannot be
// used to revoke any expired certificate, including a CA certificate"
// (user guide, Understand AWS Private CA CA status).
func TestRevokeExpiredCertificate(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Expiry Root")
	arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN,
		Csr:      testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "short.example"}}).CSRPEM,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	env.Clock.Advance(48 * time.Hour)
	_, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &rootARN,
		CertificateSerial: aws.String(arn[strings.LastIndex(arn, "/")+1:]), RevocationReason: types.RevocationReasonKeyCompromise})
	if err == nil {
		t.Fatal("an expired certificate was revoked")
	}
	testenv.WantError(t, err, "InvalidRequestException")
}

// TestCRLRetriedOnUpdate: a CRL whose bucket was gone waits out its retry
// (30 s, up to 15 minutes), unless the CA's CRL configuration is set again
// and its bucket answers the probe: then it is published at once.
func TestCRLRetriedOnUpdate(t *testing.T) {
	env := testenv.Start(t)
	bucket := makeLocalBucket(t, env, "crls")
	crls := &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
		Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)}}
	caARN, _ := revocationCA(t, env, crls)
	waitCRL(t, env, 0, func() ([]byte, error) {
		return os.ReadFile(filepath.Join(bucket, "crl", caARN[strings.LastIndex(caARN, "/")+1:]+".crl"))
	})
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
	issued, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(issued.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(metrics(t, env.URL), "openpca_crls_failing 1"); time.Sleep(50 * time.Millisecond) {
		env.Clock.CatchUp() // the CRL waits for the second after the first's
		if time.Now().After(deadline) {
			t.Fatal("the CRL of a bucket gone did not fail")
		}
	}
	makeLocalBucket(t, env, "crls")
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN, RevocationConfiguration: crls}); err != nil {
		t.Fatal(err)
	}
	crlListing(t, env, "crls", caARN, issued.SerialNumber)
}

// TestCRLsToldApart: relying parties tell CRLs apart by thisUpdate alone
// (OpenSSL picks the latest by it), HTTP caches by their validators. A
// CRL wanted in the second of the last waits for the next second, and the
// distribution point's ETag changes with each CRL, which caches must ask
// about each time. A revocation made in the second of the CRL before got
// a CRL of the same thisUpdate, which OpenSSL could pass over for days,
// and the distribution point answered a cache 304 for it.
func TestCRLsToldApart(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	caARN, _ := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)}})
	url := env.URL + "/s3/crls/crl/" + caARN[strings.LastIndex(caARN, "/")+1:] + ".crl"
	get := func(etag string) (int, http.Header) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, url, nil)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	revoke := func() {
		t.Helper()
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
		cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
			CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
			t.Fatal(err)
		}
	}
	crl, _ := waitCRL(t, env, 0, func() ([]byte, error) { return httpGet(url) })
	var etags []string
	for range 2 {
		// The server's clock stands still from the last CRL's second on:
		// the revocation's CRL waits until waitCRL moves it.
		revoke()
		status, header := get("")
		if status != http.StatusOK || header.Get("ETag") == "" || header.Get("Cache-Control") != "no-cache" || header.Get("Last-Modified") != "" {
			t.Fatalf("the distribution point: %d, ETag %q, Cache-Control %q, Last-Modified %q", status, header.Get("ETag"), header.Get("Cache-Control"), header.Get("Last-Modified"))
		}
		if status, _ := get(header.Get("ETag")); status != http.StatusNotModified {
			t.Errorf("asked with the CRL's own ETag: %d, want 304", status)
		}
		etags = append(etags, header.Get("ETag"))
		next, _ := waitCRL(t, env, crl.Number.Int64(), func() ([]byte, error) { return httpGet(url) })
		if !next.ThisUpdate.After(crl.ThisUpdate) {
			t.Errorf("CRL %d is dated %s, CRL %d before it %s", next.Number, next.ThisUpdate, crl.Number, crl.ThisUpdate)
		}
		crl = next
	}
	for _, etag := range etags {
		if status, _ := get(etag); status != http.StatusOK {
			t.Errorf("asked with an earlier CRL's ETag: %d, want 200", status)
		}
	}
}

// TestRevocationListener: a server that serves its API over HTTPS serves
// the OCSP responder and local CRLs in plain HTTP as well, on a listener
// of their own (--revocation-listen), and certificates name them there:
// NSS and GnuTLS fetch no OCSP answer over HTTPS, and took a revoked
// certificate for good. That listener serves nothing else.
func TestRevocationListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned, c.RevocationURL = true, base })
	env.ServeRevocation(t, l)
	makeLocalBucket(t, env, "crls")
	caARN, root := revocationCA(t, env, &types.RevocationConfiguration{
		CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), ExpirationInDays: aws.Int32(3)},
		OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)},
	})
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "plain.example"}})
	cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
	wantCDP := base + "/s3/crls/crl/" + caARN[strings.LastIndex(caARN, "/")+1:] + ".crl"
	if len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != base+"/ocsp" || len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCDP {
		t.Fatalf("the certificate names OCSP %v and CRLs %v, want %s/ocsp and %s", cert.OCSPServer, cert.CRLDistributionPoints, base, wantCDP)
	}
	req, err := ocsp.CreateRequest(cert, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := post(cert.OCSPServer[0], req)
	if resp, perr := ocsp.ParseResponseForCert(body, cert, root); err != nil || perr != nil || resp.Status != ocsp.Good {
		t.Errorf("OCSP in plain HTTP: %v, %v", err, perr)
	}
	crl, _ := waitCRL(t, env, 0, func() ([]byte, error) { return httpGet(wantCDP) })
	if err := crl.CheckSignatureFrom(root); err != nil {
		t.Errorf("the CRL in plain HTTP: %v", err)
	}
	for _, path := range []string{"/", "/console/", "/metrics", "/healthz", "/audit-log/checkpoint?certificateAuthorityArn=" + caARN} {
		if _, err := httpGet(base + path); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("GET %s on the revocation listener: %v, want 404", path, err)
		}
	}
	if _, err := post(base+"/", []byte("{}")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an API request on the revocation listener: %v, want 404", err)
	}
}
