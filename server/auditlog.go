package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/awsjson"
)

// AuditLog is what the server serves of the CAs' tamper-evident key-use
// logs, beside the AWS API; *authority.Service implements it.
type AuditLog interface {
	AuditVerifierKey() string
	AuditCheckpoint(ctx context.Context, caARN string) ([]byte, error)
	AuditConsistencyProof(ctx context.Context, caARN string, from, to int64) (tlog.TreeProof, error)
	AuditInclusionProof(ctx context.Context, caARN, serial string) (*auditlog.InclusionProof, error)
}

// The audit log's endpoints. The public key is public; the others are
// signed (SigV4, service acm-pca, as the API) and serve only the caller's
// CAs, named by the query parameter certificateAuthorityArn.
const (
	PathPublicKey   = "/audit-log/public-key"
	PathCheckpoint  = "/audit-log/checkpoint"
	PathConsistency = "/audit-log/consistency" // &from=N&to=M
	PathInclusion   = "/audit-log/inclusion"   // &serial=S
)

// handleAuditLog adds the audit log's endpoints to mux.
func (s *Server) handleAuditLog(mux *http.ServeMux, log AuditLog, authn awsjson.Authenticator, m *metrics) {
	mux.HandleFunc("GET "+PathPublicKey, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, log.AuditVerifierKey())
	})
	// serve authenticates a request, runs fn for the CA it names, and
	// logs and counts it as the API's requests are.
	serve := func(operation string, fn func(ctx context.Context, caARN string, q queryParams) (contentType string, body []byte, err error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			out := awsjson.Outcome{RequestID: uuid.NewString(), Operation: operation, Status: http.StatusOK}
			w.Header().Set("x-amzn-RequestId", out.RequestID)
			contentType, body, err := func() (string, []byte, error) {
				caller, err := authn.Authenticate(r, nil)
				if err != nil {
					return "", nil, err
				}
				out.AccountID = caller.AccountID
				ctx := openpca.WithRequestID(openpca.WithCaller(r.Context(), caller), out.RequestID)
				q := queryParams(r.URL.Query())
				arn, err := q.required("certificateAuthorityArn")
				if err != nil {
					return "", nil, err
				}
				return fn(ctx, arn, q)
			}()
			if err != nil {
				out.Status, out.Code = awsjson.WriteError(w, s.logger, out.RequestID, err)
			} else {
				w.Header().Set("Content-Type", contentType)
				w.Write(body)
			}
			out.Duration = time.Since(start)
			m.observe(out)
			s.logRequest(r, out)
		}
	}
	mux.HandleFunc("GET "+PathCheckpoint, serve("AuditLog.Checkpoint", func(ctx context.Context, arn string, _ queryParams) (string, []byte, error) {
		note, err := log.AuditCheckpoint(ctx, arn)
		return "text/plain; charset=utf-8", note, err
	}))
	mux.HandleFunc("GET "+PathConsistency, serve("AuditLog.Consistency", func(ctx context.Context, arn string, q queryParams) (string, []byte, error) {
		from, err := q.integer("from")
		if err != nil {
			return "", nil, err
		}
		to, err := q.integer("to")
		if err != nil {
			return "", nil, err
		}
		proof, err := log.AuditConsistencyProof(ctx, arn, from, to)
		if err != nil {
			return "", nil, err
		}
		body, err := json.Marshal(struct {
			Proof tlog.TreeProof `json:"proof"`
		}{proof})
		return "application/json", body, err
	}))
	mux.HandleFunc("GET "+PathInclusion, serve("AuditLog.Inclusion", func(ctx context.Context, arn string, q queryParams) (string, []byte, error) {
		serial, err := q.required("serial")
		if err != nil {
			return "", nil, err
		}
		proof, err := log.AuditInclusionProof(ctx, arn, serial)
		if err != nil {
			return "", nil, err
		}
		body, err := json.Marshal(proof)
		return "application/json", body, err
	}))
}

type queryParams map[string][]string

func (q queryParams) required(name string) (string, error) {
	v := q[name]
	if len(v) != 1 || v[0] == "" {
		return "", openpca.Errorf(openpca.CodeValidation, "The query parameter %s is required, once.", name)
	}
	return v[0], nil
}

func (q queryParams) integer(name string) (int64, error) {
	v, err := q.required(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, openpca.Errorf(openpca.CodeValidation, "The query parameter %s must be an integer, not %q.", name, v)
	}
	return n, nil
}
