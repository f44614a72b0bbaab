package testenv

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/smithy-go"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// ErrorCode returns the AWS error code of err and the HTTP status it came
// with, or "" and 0 for an error without one.
func ErrorCode(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// WantError fails the test unless err is an AWS error with code.
func WantError(t testing.TB, err error, code string) {
	t.Helper()
	got, _ := ErrorCode(err)
	if got != code {
		t.Fatalf("got error %v; want %s", err, code)
	}
}

// Config returns a CA configuration with the given key algorithm, its
// SHA-256 signing algorithm and a subject with common name cn.
func Config(keyAlg types.KeyAlgorithm, cn string) *types.CertificateAuthorityConfiguration {
	sig := types.SigningAlgorithmSha256withecdsa
	switch keyAlg {
	case types.KeyAlgorithmRsa2048, types.KeyAlgorithmRsa3072, types.KeyAlgorithmRsa4096:
		sig = types.SigningAlgorithmSha256withrsa
	case types.KeyAlgorithmMlDsa44, types.KeyAlgorithmMlDsa65, types.KeyAlgorithmMlDsa87:
		sig = types.SigningAlgorithm(keyAlg) // ML-DSA keys sign with their own scheme
	case types.KeyAlgorithmSm2:
		sig = types.SigningAlgorithmSm3withsm2
	}
	return &types.CertificateAuthorityConfiguration{
		KeyAlgorithm:     keyAlg,
		SigningAlgorithm: sig,
		Subject:          &types.ASN1Subject{CommonName: aws.String(cn), Organization: aws.String("OpenPCA Tests"), Country: aws.String("US")},
	}
}

// MissingCA is the ARN of a CA of arn's account and region that no
// server has: the id of a UUIDv7 made at the epoch.
func MissingCA(arn string) string {
	return arn[:strings.LastIndex(arn, "/")+1] + "00000000-0000-7000-8000-000000000000"
}

// CreateCA creates a P-256 CA of the given type and returns its ARN.
func (e *Env) CreateCA(t testing.TB, caType types.CertificateAuthorityType, cn string) string {
	t.Helper()
	out, err := e.Client.CreateCertificateAuthority(context.Background(), &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: Config(types.KeyAlgorithmEcPrime256v1, cn),
		CertificateAuthorityType:          caType,
	})
	if err != nil {
		t.Fatalf("CreateCertificateAuthority: %v", err)
	}
	return *out.CertificateAuthorityArn
}

// CSR returns the parsed CSR of a CA.
func (e *Env) CSR(t testing.TB, arn string) *x509.CertificateRequest {
	t.Helper()
	out, err := e.Client.GetCertificateAuthorityCsr(context.Background(), &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatalf("GetCertificateAuthorityCsr: %v", err)
	}
	block, _ := pem.Decode([]byte(*out.Csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR is not PEM: %q", *out.Csr)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// Status returns the status of a CA.
func (e *Env) Status(t testing.TB, arn string) types.CertificateAuthorityStatus {
	t.Helper()
	out, err := e.Client.DescribeCertificateAuthority(context.Background(), &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatalf("DescribeCertificateAuthority: %v", err)
	}
	return out.CertificateAuthority.Status
}

// ExternalCA is a CA outside the server, made in the test, that signs the
// CSRs of subordinate CAs on the server.
type ExternalCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// NewExternalRoot makes a self-signed root CA valid from an hour ago for
// ten years.
func NewExternalRoot(t testing.TB, cn string) *ExternalCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return newExternal(t, tmpl, tmpl, key.Public(), key, key)
}

// Sign issues a CA certificate for pub, signed by c, valid until notAfter.
// Options change the certificate before it is signed.
func (c *ExternalCA) Sign(t testing.TB, cn string, pub crypto.PublicKey, notAfter time.Time, opts ...func(*x509.Certificate)) *ExternalCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	for _, o := range opts {
		o(tmpl)
	}
	return newExternal(t, tmpl, c.Cert, pub, c.Key, nil)
}

// NewIntermediate makes a CA certificate with a key of its own, signed by c.
func (c *ExternalCA) NewIntermediate(t testing.TB, cn string, opts ...func(*x509.Certificate)) *ExternalCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	inter := c.Sign(t, cn, key.Public(), c.Cert.NotAfter.Add(-time.Hour), opts...)
	inter.Key = key
	return inter
}

func newExternal(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer, key crypto.Signer) *ExternalCA {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ExternalCA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf is a key and CSR made by the test for a certificate to be issued.
type Leaf struct {
	Key    crypto.Signer
	CSRPEM []byte
}

// NewLeaf makes a P-256 key and a CSR for it with the given template.
func NewLeaf(t testing.TB, tmpl *x509.CertificateRequest) *Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &Leaf{Key: key, CSRPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}
}

// Issue issues a certificate and returns its ARN.
func (e *Env) Issue(t testing.TB, in *acmpca.IssueCertificateInput) string {
	t.Helper()
	if in.SigningAlgorithm == "" {
		in.SigningAlgorithm = types.SigningAlgorithmSha256withecdsa
	}
	if in.Validity == nil {
		in.Validity = &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}
	}
	out, err := e.Client.IssueCertificate(context.Background(), in)
	if err != nil {
		t.Fatalf("IssueCertificate: %v", err)
	}
	return *out.CertificateArn
}

// Certificate fetches an issued certificate and its chain, parsed.
func (e *Env) Certificate(t testing.TB, caARN, certARN string) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	out, err := e.Client.GetCertificate(context.Background(), &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &certARN})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	certs := ParsePEM(t, aws.ToString(out.Certificate))
	if len(certs) != 1 {
		t.Fatalf("GetCertificate returned %d certificates", len(certs))
	}
	return certs[0], ParsePEM(t, aws.ToString(out.CertificateChain))
}

// ParsePEM parses every certificate in a PEM string.
func ParsePEM(t testing.TB, s string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs
		}
		c, err := pki.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

// ActivateRoot activates a ROOT CA the way the AWS documentation shows:
// it issues the CA's own CSR with RootCACertificate/V1, fetches the
// certificate and imports it. It returns the root certificate.
func (e *Env) ActivateRoot(t testing.TB, arn string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	csr, err := e.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	certARN := e.Issue(t, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: &arn, Csr: []byte(*csr.Csr), SigningAlgorithm: d.CertificateAuthority.CertificateAuthorityConfiguration.SigningAlgorithm,
		TemplateArn: aws.String("arn:" + openpca.Partition(e.Config.Region) + ":acm-pca:::template/RootCACertificate/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(10)},
	})
	got, err := e.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &arn, CertificateArn: &certARN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: []byte(*got.Certificate),
	}); err != nil {
		t.Fatalf("importing the root certificate: %v", err)
	}
	return ParsePEM(t, *got.Certificate)[0]
}

// ActivateSubordinate activates the SUBORDINATE CA arn under the CA
// parentARN: the parent issues its CSR with
// SubordinateCACertificate_PathLen0/V1, valid for years, and the
// certificate is imported with the parent's chain.
func (e *Env) ActivateSubordinate(t testing.TB, parentARN, arn string, years int64) {
	t.Helper()
	ctx := context.Background()
	csr, err := e.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	certARN := e.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &parentARN, Csr: []byte(*csr.Csr),
		TemplateArn: aws.String("arn:" + openpca.Partition(e.Config.Region) + ":acm-pca:::template/SubordinateCACertificate_PathLen0/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(years)}})
	got, err := e.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &parentARN, CertificateArn: &certARN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: []byte(*got.Certificate), CertificateChain: []byte(*got.CertificateChain)}); err != nil {
		t.Fatalf("importing the subordinate certificate: %v", err)
	}
}

// NewActiveRoot creates and activates a P-256 root CA.
func (e *Env) NewActiveRoot(t testing.TB, cn string) (string, *x509.Certificate) {
	t.Helper()
	arn := e.CreateCA(t, types.CertificateAuthorityTypeRoot, cn)
	return arn, e.ActivateRoot(t, arn)
}

// Sign signs a raw request with the default account's key, as an SDK
// would, so that tests can send requests the SDK would refuse to build.
func Sign(t testing.TB, r *http.Request, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey},
		r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// Get sends a GET to url, signed with the default account's key as an SDK
// would sign it if signed, and returns the status, the X-Amzn-ErrorType
// header and the body.
func Get(t testing.TB, url string, signed bool) (int, string, []byte) {
	t.Helper()
	var creds *aws.Credentials
	if signed {
		creds = &aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
	}
	return get(t, http.DefaultClient, url, creds)
}

// GetAs is Get signed with the key a client signs with.
func GetAs(t testing.TB, c *acmpca.Client, url string) (int, string, []byte) {
	t.Helper()
	creds, err := c.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return get(t, http.DefaultClient, url, &creds)
}

// Get sends a GET to the server's path, signed with the default account's
// key, over the server's transport (HTTPS too); it returns what Get does.
func (e *Env) Get(t testing.TB, path string) (int, string, []byte) {
	t.Helper()
	return get(t, &http.Client{Transport: e.transport}, e.URL+path, &aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey})
}

func get(t testing.TB, client *http.Client, url string, creds *aws.Credentials) (int, string, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if creds != nil {
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), *creds, r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	res, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("X-Amzn-ErrorType"), body
}

// SyncBuffer is a buffer safe for concurrent writes and reads, such as a
// log sink or a running process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Line returns the first line written that holds text, "" if none.
func (b *SyncBuffer) Line(text string) string {
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, text) {
			return line
		}
	}
	return ""
}

// WantOneWinner fails the test unless exactly one of errs is nil and every
// other is an AWS error with code: of concurrent requests that race for
// one thing, one gets it.
func WantOneWinner(t testing.TB, errs []error, code string) {
	t.Helper()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			WantError(t, err, code)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent requests won, want exactly 1", won, len(errs))
	}
}

// ForwardedFor sends every request with X-Forwarded-For: addr, as a
// proxy in front of the server would.
func ForwardedFor(base http.RoundTripper, addr string) http.RoundTripper {
	return Forwarded(base, addr, "")
}

// Forwarded is ForwardedFor from a proxy that got the request over proto
// (X-Forwarded-Proto; none if "").
func Forwarded(base http.RoundTripper, addr, proto string) http.RoundTripper {
	return forwardedFor{base, addr, proto}
}

type forwardedFor struct {
	base        http.RoundTripper
	addr, proto string
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	if f.proto != "" {
		r.Header.Set("X-Forwarded-Proto", f.proto)
	}
	return f.base.RoundTrip(r)
}
