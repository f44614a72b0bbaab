package awsjson_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/internal/testenv"
)

// linkLocal returns a link-local IPv6 address of this machine, with its
// zone, or skips the test.
func linkLocal(t *testing.T) netip.Addr {
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					return ip.WithZone(ifc.Name)
				}
			}
		}
	}
	t.Skip("no link-local IPv6 address")
	return netip.Addr{}
}

// TestSourceIPLinkLocal: a key whose policy denies clients of fe80::/10
// (aws:SourceIp) is denied when it connects over a link-local address.
// The connection's address kept its zone (fe80::...%eth0), which netip
// puts in no network: the Deny denied nothing.
func TestSourceIPLinkLocal(t *testing.T) {
	addr := linkLocal(t)
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Skipf("listening on %s: %v", addr, err)
	}
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Stdout = io.Discard
	cfg.RootAccessKeyID, cfg.RootSecretAccessKey = testenv.AccessKeyID, testenv.SecretAccessKey
	// The client names the server by a name, and dials its link-local
	// address: a zone in the URL is signed, and sent, differently.
	server := netip.AddrPortFrom(addr, uint16(l.Addr().(*net.TCPAddr).Port))
	url := fmt.Sprintf("http://link-local.test:%d", server.Port())
	cfg.PublicURL = url
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(l) }()
	transport := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, network, server.String())
	}}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a.Shutdown(ctx)
		<-served
	})

	admin, err := app.OpenAdmin(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := auth.NewAccessKey(admin.Sealer, app.DefaultAccountID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key.Policies = []openpca.KeyPolicy{{Name: "not-from-link-local", Document: `{"Version":"2012-10-17","Statement":[
		{"Sid":"All","Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Sid":"NotFromLinkLocal","Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"fe80::/10"}}}]}`}}
	err = admin.Store.PutAccessKey(context.Background(), key)
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.NewClientWith(url, transport, key.ID, secret)
	_, err = c.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{})
	if code, _ := testenv.ErrorCode(err); code != "AccessDeniedException" {
		t.Errorf("a client at %s, denied fe80::/10 by its policy: %v, want AccessDeniedException", addr, err)
	}
}
