// Package awsjson serves the AWS Private CA API over HTTP with the AWS JSON
// 1.1 protocol: operations are chosen by the X-Amz-Target header, inputs and
// outputs are JSON documents, and errors carry their AWS exception name in
// __type and the X-Amzn-ErrorType header.
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/openpca/openpca"
)

// ContentType is the media type of AWS JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// DefaultMaxBodyBytes bounds request bodies: the largest input, a 2 MiB
// certificate chain, is under 3 MiB once base64-encoded.
const DefaultMaxBodyBytes = 4 << 20

// Handler answers AWS JSON 1.1 requests by calling the service, through an
// Envelope.
type Handler struct {
	Service  openpca.PrivateCA
	Envelope *Envelope
	Logger   *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// commonErrors can come from any operation, besides those the model lists.
var commonErrors = map[string]bool{
	openpca.CodeValidation: true, openpca.CodeSerialization: true, openpca.CodeInternalFailure: true,
	openpca.CodeAccessDenied: true, openpca.CodeNotImplemented: true, openpca.CodeServiceUnavailable: true,
	openpca.CodeUnknownOperation: true, openpca.CodeRequestEntityTooLarge: true,
	openpca.CodeMissingAuthenticationToken: true, openpca.CodeIncompleteSignature: true,
	openpca.CodeUnrecognizedClient: true, openpca.CodeInvalidSignature: true, openpca.CodeThrottling: true,
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Envelope.Serve(w, r, h.route)
}

// route chooses the operation X-Amz-Target names.
func (h *Handler) route(r *http.Request) (*Call, error) {
	if r.Method != http.MethodPost {
		return nil, openpca.Errorf(openpca.CodeUnknownOperation, "%s is not supported: send AWS JSON 1.1 requests with POST", r.Method)
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, openpca.TargetPrefix+".")
	op := operations[name]
	if !ok || op == nil {
		return nil, openpca.Errorf(openpca.CodeUnknownOperation, "unknown operation %q: X-Amz-Target must be %s.<Operation>", target, openpca.TargetPrefix)
	}
	limit := h.MaxBodyBytes
	if limit == 0 {
		limit = DefaultMaxBodyBytes
	}
	return &Call{Operation: name, MaxBody: limit, Run: func(ctx context.Context, body []byte) (Reply, error) {
		result, err := op.invoke(ctx, h.Service, func(in any) error { return decodeInput(op.input, body, in) })
		if err != nil {
			if code := openpca.ErrorCode(err); !commonErrors[code] && !contains(op.errors, code) {
				h.Logger.Warn("error code not modelled for operation", "operation", name, "code", code)
			}
			return Reply{}, err
		}
		if result == nil {
			return Reply{ContentType: ContentType}, nil
		}
		b, err := encodeJSON(result)
		return Reply{ContentType: ContentType, Body: b}, err
	}}, nil
}

// statusOf maps error codes to HTTP statuses; every other code is 400.
var statusOf = map[string]int{
	openpca.CodeInternalFailure:            http.StatusInternalServerError,
	openpca.CodeServiceUnavailable:         http.StatusServiceUnavailable,
	openpca.CodeNotImplemented:             http.StatusNotImplemented,
	openpca.CodeRequestEntityTooLarge:      http.StatusRequestEntityTooLarge,
	openpca.CodeMissingAuthenticationToken: http.StatusForbidden,
}

// WriteError answers with err as an AWS error. An error that is not an
// *openpca.Error is internal: it is logged, and the client sees only
// InternalFailure and the request id.
func WriteError(w http.ResponseWriter, logger *slog.Logger, requestID string, err error) (status int, code string) {
	e, ok := errors.AsType[*openpca.Error](err)
	switch {
	case !ok:
		logger.Error("internal failure", "request_id", requestID, "error", err)
		e = openpca.Errorf(openpca.CodeInternalFailure, "The server encountered an internal error (request id %s).", requestID)
	case e.Cause != nil:
		logger.Warn("a dependency failed", "request_id", requestID, "error", err)
	}
	status = http.StatusBadRequest
	if s, ok := statusOf[e.Code]; ok {
		status = s
	}
	body, _ := encodeJSON(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return status, e.Code
}

// encodeJSON encodes v without escaping <, > and &, which AWS does not.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Invoke runs operation on svc with the request in (a request struct of
// the model), checked against the model's constraints exactly as a request
// on the wire is, and returns its response. The web console's actions go
// through it, so that they are checked as the API's are.
func Invoke(ctx context.Context, svc openpca.PrivateCA, operation string, in any) (any, error) {
	op := operations[operation]
	if op == nil {
		return nil, fmt.Errorf("awsjson: no operation %q", operation)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return op.invoke(openpca.WithOperation(ctx, operation), svc, func(v any) error { return decodeInput(op.input, body, v) })
}
