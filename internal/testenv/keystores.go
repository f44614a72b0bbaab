package testenv

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/pkcs11"
)

// SoftHSMModule is the PKCS#11 library of Debian's softhsm2 package, which
// .ci/run installs.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM is a SoftHSM2 token of the test's own, its objects files in a
// temporary folder.
type SoftHSM struct {
	Label, PIN string
	// TokenDir holds the token's files: removing it takes the token away.
	TokenDir string
}

// NewSoftHSM initializes a token for the test. SoftHSM reads where its
// tokens are from SOFTHSM2_CONF, which the test sets for the whole
// process: tests that use tokens do not run in parallel.
func NewSoftHSM(t testing.TB) *SoftHSM {
	t.Helper()
	if !fileExists(SoftHSMModule) {
		t.Fatalf("SoftHSM2 is not installed (%s): .ci/run installs Debian's softhsm2", SoftHSMModule)
	}
	// Not t.TempDir: a test's name may hold an "=", which SoftHSM's
	// configuration file cannot hold in a path.
	dir, err := os.MkdirTemp("", "openpca-softhsm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &SoftHSM{Label: "openpca-test", PIN: "1234", TokenDir: filepath.Join(dir, "tokens")}
	if err := os.Mkdir(h.TokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+h.TokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", h.Label, "--pin", h.PIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return h
}

// Config is the token as a server's configuration names it.
func (h *SoftHSM) Config() pkcs11.Config {
	return pkcs11.Config{Module: SoftHSMModule, TokenLabel: h.Label, PIN: h.PIN}
}

// Hang makes the token stop answering, as a network HSM that hangs
// mid-call: another process takes POSIX locks on each of its files, which
// SoftHSM waits for at its next call, until release (or the test's end).
// The locks are another process's: those of this one, SoftHSM's own,
// would not hold it.
func (h *SoftHSM) Hang(t testing.TB) (release func()) {
	t.Helper()
	cmd := exec.Command("python3", "-c", `
import fcntl, os, sys
held = []
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        held.append(fd)
print(len(held), flush=True)
sys.stdin.read()
`, h.TokenDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("locking the token's files: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

// Use returns an Option that keeps the keys of new CAs in the token.
func (h *SoftHSM) Use() Option {
	return func(c *app.Config) {
		c.KeyStore, c.PKCS11 = pkcs11.Name, h.Config()
	}
}

// KMS is a KMS-compatible server (local-kms) for the test, its keys in a
// temporary folder. It can be stopped and started again on the same
// folder, at the same URL.
type KMS struct {
	URL string
	*process
}

// StartKMS starts local-kms, which .ci/run installs with go install, and
// stops it when the test ends.
func StartKMS(t testing.TB) *KMS {
	t.Helper()
	k := &KMS{}
	binary := goBinary(t, "local-kms", "go install github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6")
	dir := t.TempDir()
	k.process = newProcess(t, "local-kms", func(addr string) *exec.Cmd {
		// It listens on every address of the port it is given.
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(binary)
		cmd.Env = append(os.Environ(), "PORT="+port, "KMS_DATA_PATH="+dir, "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=111122223333")
		return cmd
	}, func(ctx context.Context, addr string) error {
		_, err := kmsClient("http://"+addr).ListKeys(ctx, &awskms.ListKeysInput{})
		return err
	})
	k.URL = "http://" + k.relay.Addr()
	k.Start(t)
	return k
}

// Start starts the server, again if it was stopped.
func (k *KMS) Start(t testing.TB) {
	t.Helper()
	k.start(t)
}

// Stop stops the server; it is safe to call twice.
func (k *KMS) Stop(t testing.TB) { k.stop() }

// Client returns a KMS client for the server.
func (k *KMS) Client() *awskms.Client { return kmsClient(k.URL) }

func kmsClient(url string) *awskms.Client {
	return awskms.New(awskms.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("openpcatest", "openpca-test-secret", "")})
}

// Use returns an Option that keeps the keys of new CAs in this KMS, with
// its Credentials.
func (k *KMS) Use(t testing.TB) Option {
	k.Credentials(t)
	return func(c *app.Config) { c.KeyStore, c.KMSEndpoint = "kms", k.URL }
}

// Credentials puts credentials for the KMS in the environment, as the
// standard AWS configuration would find them, unless the test set some
// already (local-kms takes any).
func (k *KMS) Credentials(t testing.TB) {
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		t.Setenv("AWS_ACCESS_KEY_ID", "openpcatest")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "openpca-test-secret")
		t.Setenv("AWS_REGION", "us-east-1")
		t.Setenv("AWS_CONFIG_FILE", os.DevNull)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	}
}

// goBinary finds a command that .ci/run installs with go install: on the
// PATH, or in $GOPATH/bin.
func goBinary(t testing.TB, name, install string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	if p := filepath.Join(gopath, "bin", name); fileExists(p) {
		return p
	}
	t.Fatalf("%s is not installed: .ci/run installs it (%s)", name, install)
	return ""
}
