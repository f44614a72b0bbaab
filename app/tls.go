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
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/openpca/openpca/seal"
)

// tlsSuites are the TLS 1.2 cipher suites served: those with forward
// secrecy and authenticated encryption (TLS 1.3's all are), not Go's
// default's CBC ones with SHA-1, which every client of the AWS API can do
// without.
var tlsSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// certificateWarning is how close to its end a certificate served is
// logged at WARN when it is loaded, and the self-signed one issued again
// (renewSelfSigned).
const certificateWarning = 30 * 24 * time.Hour

// tlsConfig returns the TLS configuration to serve addr with, or nil to
// serve plain HTTP. It serves the certificate ReloadTLS last loaded.
func (a *App) tlsConfig(addr net.Addr) (*tls.Config, error) {
	cfg := a.cfg
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" && !cfg.TLSSelfSigned {
		return nil, nil
	}
	a.tlsMu.Lock()
	a.tlsAddr = addr
	a.tlsMu.Unlock()
	if _, err := a.ReloadTLS(); err != nil {
		return nil, err
	}
	if cfg.TLSSelfSigned {
		caPath := filepath.Join(cfg.DataDir, "tls", "ca.pem")
		fmt.Fprintf(cfg.Stdout, "Serving HTTPS with a certificate from a local CA; clients trust it with the CA bundle %s (--ca-bundle)\n", caPath)
		a.logger.Info("serving HTTPS with a self-signed CA", "ca_bundle", caPath)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tlsSuites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.tlsCert.Load(), nil }}, nil
}

// checkTLS loads the TLS certificate and key files, if given, or the
// self-signed certificate's CA, if made: a start they refuse is refused
// before the database is migrated.
func (a *App) checkTLS() error {
	cfg := a.cfg
	dir := filepath.Join(cfg.DataDir, "tls")
	if cfg.TLSSelfSigned {
		if _, _, err := a.loadTLSCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key.sealed")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("TLS CA: %w", err)
		}
	} else if err := resealTLSKey(cfg.DataDir, a.sealer); err != nil {
		// A local TLS CA of an earlier --tls-self-signed is kept for the
		// next: resealed at each start, so that a rotation of the master
		// key that stopped before it did is settled while the old key is
		// at hand, or said to be unsettled before it is thrown away.
		a.logger.Warn("the local TLS CA's key, unused without --tls-self-signed, cannot be resealed", "error", tlsKeyUnopened(filepath.Join(dir, "ca.key.sealed"), err))
	}
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	return nil
}

// ReloadTLS loads the TLS certificate and key files again, or issues the
// self-signed certificate again, for the connections to come: a renewed
// certificate is served without a restart (the server does it on
// SIGHUP). It reports false if the server serves no TLS.
func (a *App) ReloadTLS() (bool, error) {
	a.tlsMu.Lock()
	defer a.tlsMu.Unlock()
	if a.tlsAddr == nil {
		return false, nil
	}
	var cert tls.Certificate
	var err error
	if a.cfg.TLSSelfSigned {
		cert, _, err = a.selfSignedCertificate(a.tlsAddr)
	} else if cert, err = tls.LoadX509KeyPair(a.cfg.TLSCertFile, a.cfg.TLSKeyFile); err != nil {
		err = fmt.Errorf("TLS certificate: %w", err)
	} else if fi, serr := os.Stat(a.cfg.TLSKeyFile); serr == nil && fi.Mode().Perm()&0o077 != 0 {
		a.logger.Warn("the TLS key file can be read by users other than its owner: make it 0600 (chmod 600)", "path", a.cfg.TLSKeyFile, "mode", fi.Mode().Perm().String())
	}
	if err != nil {
		return true, err
	}
	if leaf := cert.Leaf; leaf != nil && time.Until(leaf.NotAfter) < certificateWarning {
		a.logger.Warn("the TLS certificate served ends soon, or has ended: renew it, and send the server SIGHUP", "not_after", leaf.NotAfter)
	}
	a.tlsCert.Store(&cert)
	return true, nil
}

// renewSelfSigned issues the self-signed certificate again once it is
// within certificateWarning of its end at now: it is issued for a year,
// and a server may run longer than that without a restart or SIGHUP.
func (a *App) renewSelfSigned(now time.Time) {
	served := a.tlsCert.Load()
	if !a.cfg.TLSSelfSigned || served == nil || served.Leaf.NotAfter.Sub(now) > certificateWarning {
		return
	}
	// Failed, it is tried again hourly, not at each of the janitor's looks.
	if now.Before(a.renewFailed.Add(time.Hour)) {
		return
	}
	if _, err := a.ReloadTLS(); err != nil {
		a.renewFailed = now
		a.logger.Error("issuing the self-signed TLS certificate again; the one served ends soon; trying again in an hour", "not_after", served.Leaf.NotAfter, "error", err)
		return
	}
	a.logger.Info("issued the self-signed TLS certificate again", "not_after", a.tlsCert.Load().Leaf.NotAfter)
}

// tlsExpiry is when the TLS certificate served ends, in seconds since
// 1970, or 0 before one is loaded.
func (a *App) tlsExpiry() float64 {
	served := a.tlsCert.Load()
	if served == nil || served.Leaf == nil {
		return 0
	}
	return float64(served.Leaf.NotAfter.Unix())
}

// selfSignedCertificate makes (once) a local CA in <data-dir>/tls, its key
// sealed with the master key, and issues from it, at each start, on SIGHUP
// and a month before the last one ends, a server certificate of a year for
// the address served, the public URL's host, localhost and the loopback
// addresses. It returns the
// certificate and the path of the CA bundle.
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
	// Clients reach the server at its public URL's host, which may be
	// none of those (a name in DNS, a proxy's address passed through): not
	// an unspecified address (the default public URL of a server on every
	// address), nor a name of other than ASCII, which a certificate holds
	// in its A-label form alone (a server with --tls-cert names it so).
	if u, err := url.Parse(a.cfg.PublicURL); err == nil && u.Hostname() != "" {
		host := u.Hostname()
		ip := net.ParseIP(host)
		switch {
		case ip != nil && !ip.IsUnspecified() && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal):
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case ip == nil && !slices.Contains(tmpl.DNSNames, host) && strings.IndexFunc(host, func(r rune) bool { return r > unicode.MaxASCII }) < 0:
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, caPath, nil
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
		return nil, nil, tlsKeyUnopened(keyPath, err)
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
	// Durably, and the key first: clients come to trust the bundle, and a
	// bundle that outlived a power loss without its key (written, not
	// synced) could only be replaced by one they do not trust.
	if err := seal.WriteFile(keyPath, sealed); err != nil {
		return nil, nil, err
	}
	if err := seal.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// tlsKeyUnopened is the error of the TLS CA's key at path that err says
// the master keys do not open. A rotation of a master key given in
// OPENPCA_MASTER_KEY (no key file, so nothing for a start to settle) that
// stopped after the database was resealed leaves it sealed with the old
// key.
func tlsKeyUnopened(path string, err error) error {
	return fmt.Errorf("%s: %w; if a rotation of the master key stopped before it ended, start once with the old key as the previous one (--previous-master-key-file or OPENPCA_PREVIOUS_MASTER_KEY), which reseals it", path, err)
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
