package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/awsjson"
)

// AuditLog is what the server serves of the CAs' tamper-evident key-use
// logs, beside the AWS API; *authority.Service implements it.
type AuditLog interface {
	AuditVerifierKey() string
	AuditCheckpoint(ctx context.Context, caARN string, witnessed bool) ([]byte, error)
	AuditConsistencyProof(ctx context.Context, caARN string, from, to int64) (tlog.TreeProof, error)
	AuditInclusionProof(ctx context.Context, caARN, serial string) (*auditlog.InclusionProof, error)
	AuditCRLInclusionProof(ctx context.Context, caARN string, number int64, thisUpdate time.Time) (*auditlog.InclusionProof, error)
	AuditReports(ctx context.Context, caARN string) ([]*openpca.AuditReport, error)
}

// AuditReportInfo is an audit report as PathReports lists it.
type AuditReportInfo struct {
	AuditReportID string    `json:"auditReportId"`
	Status        string    `json:"status"`
	Format        string    `json:"format"`
	S3BucketName  string    `json:"s3BucketName"`
	S3Key         string    `json:"s3Key"`
	CreatedAt     time.Time `json:"createdAt"`
	LogSize       int64     `json:"logSize"`
	// Failure says why a FAILED report failed.
	Failure string `json:"failure,omitempty"`
}

// The audit log's endpoints. The public key is public; the others are
// signed (SigV4, service acm-pca, as the API) and serve only the caller's
// CAs, named by the query parameter certificateAuthorityArn.
const (
	PathPublicKey   = "/audit-log/public-key"
	PathCheckpoint  = "/audit-log/checkpoint"
	PathConsistency = "/audit-log/consistency" // &from=N&to=M
	PathInclusion   = "/audit-log/inclusion"   // &serial=S, or &crlNumber=N&thisUpdate=T
	PathReports     = "/audit-log/reports"
)

// handleAuditLog adds the audit log's endpoints to mux; the signed ones go
// through the API's envelope.
func handleAuditLog(mux *http.ServeMux, log AuditLog, envelope *awsjson.Envelope) {
	mux.HandleFunc("GET "+PathPublicKey, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, log.AuditVerifierKey())
	})
	// signed serves operation with fn, for the CA the query names.
	signed := func(operation string, fn func(ctx context.Context, caARN string, q queryParams) (awsjson.Reply, error)) http.HandlerFunc {
		call := func(r *http.Request) (*awsjson.Call, error) {
			return &awsjson.Call{Operation: operation, Run: func(ctx context.Context, _ []byte) (awsjson.Reply, error) {
				q := queryParams(r.URL.Query())
				arn, err := q.required("certificateAuthorityArn")
				if err != nil {
					return awsjson.Reply{}, err
				}
				return fn(ctx, arn, q)
			}}, nil
		}
		return func(w http.ResponseWriter, r *http.Request) { envelope.Serve(w, r, call) }
	}
	mux.HandleFunc("GET "+PathCheckpoint, signed(openpca.OperationAuditCheckpoint, func(ctx context.Context, arn string, q queryParams) (awsjson.Reply, error) {
		current := false
		if v, ok := q["current"]; ok {
			if len(v) != 1 || v[0] != "true" && v[0] != "false" {
				return awsjson.Reply{}, openpca.Errorf(openpca.CodeValidation, "The query parameter current is true or false, once, or absent.")
			}
			current = v[0] == "true"
		}
		note, err := log.AuditCheckpoint(ctx, arn, !current)
		return awsjson.Reply{ContentType: "text/plain; charset=utf-8", Body: note}, err
	}))
	mux.HandleFunc("GET "+PathConsistency, signed(openpca.OperationAuditConsistency, func(ctx context.Context, arn string, q queryParams) (awsjson.Reply, error) {
		from, err := q.integer("from")
		if err != nil {
			return awsjson.Reply{}, err
		}
		to, err := q.integer("to")
		if err != nil {
			return awsjson.Reply{}, err
		}
		proof, err := log.AuditConsistencyProof(ctx, arn, from, to)
		if err != nil {
			return awsjson.Reply{}, err
		}
		return jsonReply(struct {
			Proof tlog.TreeProof `json:"proof"`
		}{proof})
	}))
	mux.HandleFunc("GET "+PathInclusion, signed(openpca.OperationAuditInclusion, func(ctx context.Context, arn string, q queryParams) (awsjson.Reply, error) {
		var proof *auditlog.InclusionProof
		if _, ok := q["crlNumber"]; ok {
			if _, ok := q["serial"]; ok {
				return awsjson.Reply{}, openpca.Errorf(openpca.CodeValidation, "The query parameters serial and crlNumber do not go together.")
			}
			number, err := q.integer("crlNumber")
			if err != nil {
				return awsjson.Reply{}, err
			}
			thisUpdate, err := q.time("thisUpdate")
			if err != nil {
				return awsjson.Reply{}, err
			}
			if proof, err = log.AuditCRLInclusionProof(ctx, arn, number, thisUpdate); err != nil {
				return awsjson.Reply{}, err
			}
		} else {
			serial, err := q.required("serial")
			if err != nil {
				return awsjson.Reply{}, err
			}
			if proof, err = log.AuditInclusionProof(ctx, arn, serial); err != nil {
				return awsjson.Reply{}, err
			}
		}
		return jsonReply(proof)
	}))
	mux.HandleFunc("GET "+PathReports, signed(openpca.OperationAuditReports, func(ctx context.Context, arn string, _ queryParams) (awsjson.Reply, error) {
		reports, err := log.AuditReports(ctx, arn)
		if err != nil {
			return awsjson.Reply{}, err
		}
		out := struct {
			Reports []AuditReportInfo `json:"reports"`
		}{Reports: []AuditReportInfo{}}
		for _, r := range reports {
			out.Reports = append(out.Reports, AuditReportInfo{AuditReportID: r.ID, Status: string(r.Status), Format: string(r.Format),
				S3BucketName: r.Bucket, S3Key: r.Key, CreatedAt: r.CreatedAt, LogSize: r.LogSize, Failure: r.Failure})
		}
		return jsonReply(out)
	}))
}

func jsonReply(v any) (awsjson.Reply, error) {
	b, err := json.Marshal(v)
	return awsjson.Reply{ContentType: "application/json", Body: b}, err
}

type queryParams map[string][]string

func (q queryParams) required(name string) (string, error) {
	v := q[name]
	if len(v) != 1 || v[0] == "" {
		return "", openpca.Errorf(openpca.CodeValidation, "The query parameter %s is required, once.", name)
	}
	return v[0], nil
}

func (q queryParams) time(name string) (time.Time, error) {
	v, err := q.required(name)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, openpca.Errorf(openpca.CodeValidation, "The query parameter %s must be a time in RFC 3339, such as 2026-12-01T09:00:00Z, not %q.", name, v)
	}
	return t, nil
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
