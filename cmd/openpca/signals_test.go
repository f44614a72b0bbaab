package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/internal/testenv"
)

// startServe starts openpca serve with extra flags, and returns it, its
// address once it takes connections, and its data folder. Its log goes to
// a pipe, which is read until the server says where it listens; the rest
// is drained, or, without drain, never read, as a log's reader that is
// stuck would.
func startServe(t *testing.T, drain bool, extra ...string) (*exec.Cmd, string, string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"serve", "--listen", listenAny, "--data-dir", data}, extra...)...)
	cmd.Env = append(os.Environ(), "OPENPCA_ROOT_ACCESS_KEY_ID="+testenv.AccessKeyID, "OPENPCA_ROOT_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
	cmd.Stdout, cmd.Stderr = io.Discard, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		r.Close()
	})
	var logs testenv.SyncBuffer
	lines := bufio.NewScanner(r)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for lines.Scan() {
			logs.Write(append(lines.Bytes(), '\n'))
			if strings.Contains(lines.Text(), "serving the AWS Private CA API") {
				break
			}
		}
	}()
	url := servedURL(t, logs.String, "serving the AWS Private CA API", closed(stopped))
	<-stopped
	if drain {
		go io.Copy(io.Discard, r)
	}
	_, addr, _ := strings.Cut(url, "://")
	return cmd, addr, data
}

// writeCertificate writes a self-signed server certificate of serial, and
// its key, to certPath and keyPath.
func writeCertificate(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 0, 90), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPReloadsTLS: SIGHUP has the server serve its renewed
// certificate, and does not stop it; TLS 1.2's CBC suites are not served.
func TestSIGHUPReloadsTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCertificate(t, certPath, keyPath, 1)
	cmd, addr, _ := startServe(t, true, "--tls-cert", certPath, "--tls-key", keyPath)
	served := func(cfg *tls.Config) (int64, error) {
		cfg.InsecureSkipVerify = true // the certificate served is what is looked at
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	if serial, err := served(&tls.Config{}); err != nil || serial != 1 {
		t.Fatalf("served certificate %d, %v; want 1", serial, err)
	}
	writeCertificate(t, certPath, keyPath, 2)
	cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		serial, err := served(&tls.Config{})
		if err == nil && serial == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP, served certificate %d, %v; want 2", serial, err)
		}
	}
	if _, err := served(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Error("a TLS 1.2 CBC suite with SHA-1 was served")
	}
}

// TestStuckLogReader: a server whose log's reader stopped reading (a pipe
// nobody drains) still answers, and stops when it must, with the error it
// cannot print: on SIGTERM, or when a later version migrates its database.
func TestStuckLogReader(t *testing.T) {
	for _, superseded := range []bool{false, true} {
		t.Run(fmt.Sprintf("superseded=%v", superseded), func(t *testing.T) { stuckLogReader(t, superseded) })
	}
}

func stuckLogReader(t *testing.T, superseded bool) {
	cmd, addr, data := startServe(t, false) // the pipe fills at 64 KiB
	client := testenv.NewClientWith("http://"+addr, http.DefaultTransport.(*http.Transport).Clone(), testenv.AccessKeyID, testenv.SecretAccessKey)
	for i := range 1000 { // about 300 KB of request lines
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
		cancel()
		if err != nil {
			t.Fatalf("request %d, with the log's reader stuck: %v", i, err)
		}
	}
	if superseded {
		if err := supersede(data); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop within 30 s, with the log's reader stuck")
	}
}

// TestSIGHUPLeavesTheWitness: SIGHUP, which by default ends a process,
// has the witness say it has nothing to reload, and go on serving.
func TestSIGHUPLeavesTheWitness(t *testing.T) {
	_, auditKey, err := note.GenerateKey(rand.Reader, "openpca-audit")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	cmd := exec.Command(binary, "witness", "serve", "--data-dir", t.TempDir(), "--name", "witness.example/hup", "--listen", listenAny,
		"--log", "openpca/arn:aws:acm-pca:us-east-1:111122223333:*="+auditKey)
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waited error
	go func() {
		waited = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	url := servedURL(t, logs.String, "serving the witness", closed(exited))
	answers := func() bool {
		res, err := http.Get(url + "/")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	}
	if !answers() {
		t.Fatalf("the witness does not answer:\n%s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "nothing to reload"); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("SIGHUP ended the witness: %v\n%s", waited, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line for SIGHUP:\n%s", logs.String())
		}
	}
	if !answers() {
		t.Errorf("the witness no longer answers after SIGHUP:\n%s", logs.String())
	}
}
