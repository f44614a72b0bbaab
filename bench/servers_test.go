package bench_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/openpca/openpca/internal/testenv"
)

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemDER(b *testing.B, p []byte) []byte {
	block, _ := pem.Decode(p)
	if block == nil {
		b.Fatal("not PEM")
	}
	return block.Bytes
}

// freeAddr returns an address on 127.0.0.1 that was free a moment ago.
func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run starts a server process, logging to a file in dir, and stops it
// when the benchmark ends.
func run(b *testing.B, dir string, env []string, name string, args ...string) *exec.Cmd {
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	})
	return cmd
}

// waitUp waits for url to answer 200 with client.
func waitUp(b *testing.B, dir string, client *http.Client, url string) {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			b.Fatalf("%s did not come up:\n%s", url, logs)
		}
	}
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// binaryEnv names an openpca binary to measure instead of this tree's, to
// compare two builds side by side.
const binaryEnv = "OPENPCA_BENCH_BINARY"

// openpcaBinary builds the openpca command, once, unless binaryEnv names
// one.
func openpcaBinary(b *testing.B) string {
	if bin := os.Getenv(binaryEnv); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "openpca-bench-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "openpca")
		if out, err := exec.Command("go", "build", "-o", binary, "github.com/openpca/openpca/cmd/openpca").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binary
}

// startOpenPCA starts openpca serve, on SQLite in its data folder or on
// the PostgreSQL database dsn, with an active P-256 root CA.
func startOpenPCA(b *testing.B, dsn string) *server {
	dir := b.TempDir()
	addr := freeAddr(b)
	args := []string{"serve", "--listen", addr, "--data-dir", dir, "--log-level", "WARN"}
	if dsn != "" {
		args = append(args, "--database", dsn, "--object-store", "local")
	}
	var pprofURL string
	if os.Getenv(profileEnv) != "" {
		pprofAddr := freeAddr(b)
		args = append(args, "--pprof-listen", pprofAddr)
		pprofURL = "http://" + pprofAddr + "/debug/pprof/profile"
	}
	cmd := run(b, dir, []string{"OPENPCA_ROOT_ACCESS_KEY_ID=" + testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY=" + testenv.SecretAccessKey},
		openpcaBinary(b), args...)
	url := "http://" + addr
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	waitUp(b, dir, &http.Client{Transport: transport}, url+"/healthz")
	env := &testenv.Env{Client: testenv.NewClient(url, transport)}
	caARN, _ := env.NewActiveRoot(b, "Bench Root")
	c := &openpcaClient{url: url + "/", caARN: caARN, http: &http.Client{Transport: transport}, signer: v4.NewSigner(),
		creds: aws.Credentials{AccessKeyID: testenv.AccessKeyID, SecretAccessKey: testenv.SecretAccessKey}}
	return &server{name: "openpca", pid: cmd.Process.Pid, client: c, profile: pprofURL, metrics: url + "/metrics"}
}

// openpcaClient speaks the AWS JSON protocol itself, signing as the SDK
// signs, and does no more: the load generator's CPU is the servers'.
type openpcaClient struct {
	url, caARN string
	http       *http.Client
	signer     *v4.Signer
	creds      aws.Credentials
}

func (c *openpcaClient) certificate(ctx context.Context, req *csr) error {
	issue, _ := json.Marshal(map[string]any{"CertificateAuthorityArn": c.caARN, "Csr": base64.StdEncoding.EncodeToString(req.pem),
		"SigningAlgorithm": "SHA256WITHECDSA", "Validity": map[string]any{"Type": "DAYS", "Value": 7}})
	var issued struct{ CertificateArn string }
	if err := c.call(ctx, "IssueCertificate", issue, &issued); err != nil {
		return err
	}
	get, _ := json.Marshal(map[string]string{"CertificateAuthorityArn": c.caARN, "CertificateArn": issued.CertificateArn})
	var got struct{ Certificate string }
	if err := c.call(ctx, "GetCertificate", get, &got); err != nil {
		return err
	}
	if got.Certificate == "" {
		return fmt.Errorf("GetCertificate returned no certificate")
	}
	return nil
}

func (c *openpcaClient) call(ctx context.Context, op string, body []byte, out any) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "ACMPrivateCA."+op)
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, c.creds, r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", time.Now()); err != nil {
		return err
	}
	b, err := send(c.http, r, http.StatusOK, op)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// send sends r with hc and returns the answer's body, or an error naming
// what if the status is not want.
func send(hc *http.Client, r *http.Request, want int, what string) ([]byte, error) {
	res, err := hc.Do(r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s: %d %s", what, res.StatusCode, b)
	}
	return b, nil
}

// stepCA is the step-ca the benchmark runs against.
const stepCA = "github.com/smallstep/certificates/cmd/step-ca@v0.30.2"

// stepCABinary finds step-ca, installing it with go install if need be.
func stepCABinary(b *testing.B) string {
	if p, err := exec.LookPath("step-ca"); err == nil {
		return p
	}
	gobin, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(string(bytes.TrimSpace(gobin)), "bin", "step-ca")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	b.Logf("installing %s", stepCA)
	cmd := exec.Command("go", "install", stepCA)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go install %s: %v\n%s", stepCA, err, out)
	}
	return p
}

// startStepCA starts step-ca with a P-256 root and intermediate, a JWK
// provisioner whose tokens the client signs, and its default database,
// bbolt, which syncs each write.
func startStepCA(b *testing.B) *server {
	bin := stepCABinary(b)
	dir := b.TempDir()
	addr := freeAddr(b)
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	rootKey, interKey, provKey := newKey(), newKey(), newKey()
	sign := func(tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			b.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench step-ca Root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	root := sign(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	inter := sign(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Bench step-ca Intermediate"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, root, interKey.Public(), rootKey)
	interDER, err := x509.MarshalECPrivateKey(interKey)
	if err != nil {
		b.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: provKey.Public(), Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	config := map[string]any{
		"root": filepath.Join(dir, "root.crt"), "crt": filepath.Join(dir, "intermediate.crt"), "key": filepath.Join(dir, "intermediate.key"),
		"address": addr, "dnsNames": []string{"127.0.0.1"}, "logger": map[string]string{"format": "text"},
		"db":        map[string]string{"type": "bbolt", "dataSource": filepath.Join(dir, "db")},
		"authority": map[string]any{"provisioners": []any{map[string]any{"type": "JWK", "name": "bench", "key": jwk}}},
	}
	configJSON, _ := json.Marshal(config)
	for name, data := range map[string][]byte{
		"root.crt": pemBlock("CERTIFICATE", root.Raw), "intermediate.crt": pemBlock("CERTIFICATE", inter.Raw),
		"intermediate.key": pemBlock("EC PRIVATE KEY", interDER), "ca.json": configJSON,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	cmd := run(b, dir, nil, bin, filepath.Join(dir, "ca.json"))
	pool := x509.NewCertPool()
	pool.AddCert(root)
	transport := &http.Transport{MaxIdleConnsPerHost: 256, TLSClientConfig: &tls.Config{RootCAs: pool}}
	url := "https://" + addr
	waitUp(b, dir, &http.Client{Transport: transport}, url+"/health")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: provKey, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		b.Fatal(err)
	}
	c := &stepClient{url: url + "/1.0/sign", http: &http.Client{Transport: transport}, signer: signer}
	return &server{name: "step-ca", pid: cmd.Process.Pid, client: c}
}

// stepClient gets certificates from step-ca's sign endpoint, with a
// one-time token of the JWK provisioner for each.
type stepClient struct {
	url    string
	http   *http.Client
	signer jose.Signer
}

func (c *stepClient) certificate(ctx context.Context, req *csr) error {
	now := time.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	token, err := jwt.Signed(c.signer).Claims(jwt.Claims{Issuer: "bench", Subject: req.cn, Audience: jwt.Audience{c.url},
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		ID: hex.EncodeToString(jti)}).Claims(map[string]any{"sans": []string{req.cn}}).Serialize()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"csr": string(req.pem), "ott": token})
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	_, err = send(c.http, r, http.StatusCreated, "step-ca sign")
	return err
}
