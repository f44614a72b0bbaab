package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/openpca/openpca/seal"
)

// tlsConfig returns the TLS configuration to serve addr with, or nil to
// serve plain HTTP.
func (a *App) tlsConfig(addr net.Addr) (*tls.Config, error) {
	cfg := a.cfg
	switch {
	case cfg.TLSCertFile != "" || cfg.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case cfg.TLSSelfSigned:
		cert, caPath, err := a.selfSignedCertificate(addr)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Stdout, "Serving HTTPS with a certificate from a local CA; clients trust it with the CA bundle %s (--ca-bundle)\n", caPath)
		a.logger.Info("serving HTTPS with a self-signed CA", "ca_bundle", caPath)
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	return nil, nil
}

// selfSignedCertificate makes (once) a local CA in <data-dir>/tls, its key
// sealed with the master key, and issues from it, at each start, a server
// certificate for the address served, localhost and the loopback
// addresses. It returns the certificate and the path of the CA bundle.
func (a *App) selfSignedCertificate(addr net.Addr) (tls.Certificate, string, error) {
	dir := filepath.Join(a.cfg.DataDir, "tls")
	caPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key.sealed")
	ca, caKey, err := a.loadTLSCA(caPath, keyPath)
	if errors.Is(err, os.ErrNotExist) {
		ca, caKey, err = a.makeTLSCA(dir, caPath, keyPath)
	}
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("TLS CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "OpenPCA server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, tcp.IP)
	} else if ok && tcp.IP.IsUnspecified() {
		if host, err := os.Hostname(); err == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPath, nil
}

func (a *App) loadTLSCA(caPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, nil, fmt.Errorf("%s is not PEM", caPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	der, err := a.sealer.Open(sealed, []byte(tlsKeyData))
	if err != nil {
		return nil, nil, err
	}
	// A key sealed with a previous master key (this node's, while the
	// servers of a database roll to a new one) is sealed again with the
	// current one.
	if err := resealTLSKey(a.cfg.DataDir, a.sealer); err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(der)
	return ca, key, err
}

func (a *App) makeTLSCA(dir, caPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "OpenPCA local TLS CA", Organization: []string{"OpenPCA"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := a.sealer.Seal(keyDER, []byte(tlsKeyData))
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, sealed, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// tlsKeyData is the associated data the TLS CA's key is sealed with.
const tlsKeyData = "tls-ca"

// resealTLSKey seals the data folder's TLS CA key, if it has one, with the
// sealer's master key, replacing its file whole.
func resealTLSKey(dataDir string, sealer *seal.Sealer) error {
	path := filepath.Join(dataDir, "tls", "ca.key.sealed")
	sealed, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	resealed, err := sealer.Reseal(sealed, []byte(tlsKeyData))
	if err != nil || bytes.Equal(resealed, sealed) {
		return err
	}
	return seal.WriteFile(path, resealed)
}
