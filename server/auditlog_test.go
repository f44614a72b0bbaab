package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
)

// panicking is an audit log whose every answer panics.
type panicking struct{}

func (panicking) AuditVerifierKey() string { return "key" }
func (panicking) AuditCheckpoint(context.Context, string, bool) ([]byte, error) {
	panic("secret panic text")
}
func (panicking) AuditConsistencyProof(context.Context, string, int64, int64) (tlog.TreeProof, error) {
	panic("secret panic text")
}
func (panicking) AuditInclusionProof(context.Context, string, string) (*auditlog.InclusionProof, error) {
	panic("secret panic text")
}
func (panicking) AuditCRLInclusionProof(context.Context, string, int64, time.Time) (*auditlog.InclusionProof, error) {
	panic("secret panic text")
}
func (panicking) AuditReports(context.Context, string) ([]*openpca.AuditReport, error) {
	panic("secret panic text")
}

// TestAuditLogEnvelope: the audit log's signed endpoints share the API's
// envelope, so a panic behind them is an InternalFailure with the request
// id, logged and counted like any API request, and the server goes on.
func TestAuditLogEnvelope(t *testing.T) {
	var logs testenv.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	s := server.New(server.Config{
		Service:       openpca.Unimplemented{},
		AuditLog:      panicking{},
		Authenticator: awsjson.StaticAuthenticator{AccountID: "111122223333", Principal: "test"},
		Logger:        logger,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l, nil)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	url := "http://" + l.Addr().String()
	arn := "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"
	for _, path := range []string{
		server.PathCheckpoint + "?certificateAuthorityArn=" + arn,
		server.PathConsistency + "?certificateAuthorityArn=" + arn + "&from=1&to=2",
		server.PathInclusion + "?certificateAuthorityArn=" + arn + "&serial=01",
		server.PathInclusion + "?certificateAuthorityArn=" + arn + "&crlNumber=1&thisUpdate=2026-12-01T09:00:00Z",
		server.PathReports + "?certificateAuthorityArn=" + arn,
	} {
		status, code, body := testenv.Get(t, url+path, false)
		if status != 500 || code != "InternalFailure" || strings.Contains(string(body), "secret") {
			t.Errorf("%s: %d %s %s", path, status, code, body)
		}
	}
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for op, n := range map[string]int{openpca.OperationAuditCheckpoint: 1, openpca.OperationAuditConsistency: 1, openpca.OperationAuditInclusion: 2, openpca.OperationAuditReports: 1} {
		if want := fmt.Sprintf(`openpca_requests_total{error_code="InternalFailure",operation="%s"} %d`, op, n); !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	if !strings.Contains(logs.String(), "secret panic text") {
		t.Error("the panic was not logged")
	}
}
