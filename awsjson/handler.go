// Package awsjson serves the AWS Private CA API over HTTP with the AWS JSON
// 1.1 protocol: operations are chosen by the X-Amz-Target header, inputs and
// outputs are JSON documents, and errors carry their AWS exception name in
// __type and the X-Amzn-ErrorType header.
package awsjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
)

// ContentType is the media type of AWS JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// DefaultMaxBodyBytes bounds request bodies: the largest input, a 2 MiB
// certificate chain, is under 3 MiB once base64-encoded.
const DefaultMaxBodyBytes = 4 << 20

// Authenticator establishes who sent a request. It sees the body so that it
// can check a signature over it.
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (openpca.Caller, error)
}

// Outcome describes one request once it has been answered.
type Outcome struct {
	RequestID string
	Operation string // "" when the target named no operation
	AccountID string
	Status    int
	Code      string // AWS error code; "" on success
	Duration  time.Duration
}

// Handler answers AWS JSON 1.1 requests by calling the service.
type Handler struct {
	Service       openpca.PrivateCA
	Authenticator Authenticator
	Logger        *slog.Logger
	// Observe, if set, is told the outcome of every request.
	Observe func(*http.Request, Outcome)
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// commonErrors can come from any operation, besides those the model lists.
var commonErrors = map[string]bool{
	openpca.CodeValidation: true, openpca.CodeSerialization: true, openpca.CodeInternalFailure: true,
	openpca.CodeAccessDenied: true, openpca.CodeNotImplemented: true, openpca.CodeServiceUnavailable: true,
	openpca.CodeUnknownOperation: true, openpca.CodeRequestEntityTooLarge: true,
	openpca.CodeMissingAuthenticationToken: true, openpca.CodeIncompleteSignature: true,
	openpca.CodeUnrecognizedClient: true, openpca.CodeInvalidSignature: true,
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	out := Outcome{RequestID: uuid.NewString(), Status: http.StatusOK}
	w.Header().Set("x-amzn-RequestId", out.RequestID)
	defer func() {
		if p := recover(); p != nil {
			h.Logger.Error("panic serving request", "request_id", out.RequestID, "operation", out.Operation,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out.Status, out.Code = WriteError(w, h.Logger, out.RequestID, fmt.Errorf("panic: %v", p))
		}
		out.Duration = time.Since(start)
		if h.Observe != nil {
			h.Observe(r, out)
		}
	}()
	result, err := h.serve(r, &out)
	if err != nil {
		if op, ok := operations[out.Operation]; ok && !commonErrors[openpca.ErrorCode(err)] && !contains(op.errors, openpca.ErrorCode(err)) {
			h.Logger.Warn("error code not modelled for operation", "operation", out.Operation, "code", openpca.ErrorCode(err))
		}
		out.Status, out.Code = WriteError(w, h.Logger, out.RequestID, err)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	if result == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := encodeJSON(result)
	if err != nil {
		out.Status, out.Code = WriteError(w, h.Logger, out.RequestID, err)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (h *Handler) serve(r *http.Request, out *Outcome) (any, error) {
	if r.Method != http.MethodPost {
		return nil, openpca.Errorf(openpca.CodeUnknownOperation, "%s is not supported: send AWS JSON 1.1 requests with POST", r.Method)
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, openpca.TargetPrefix+".")
	op := operations[name]
	if !ok || op == nil {
		return nil, openpca.Errorf(openpca.CodeUnknownOperation, "unknown operation %q: X-Amz-Target must be %s.<Operation>", target, openpca.TargetPrefix)
	}
	out.Operation = name
	limit := h.MaxBodyBytes
	if limit == 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if maxErr, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, openpca.Errorf(openpca.CodeRequestEntityTooLarge, "request body exceeds %d bytes", maxErr.Limit)
	}
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeSerialization, "cannot read request body: %v", err)
	}
	caller, err := h.Authenticator.Authenticate(r, body)
	if err != nil {
		return nil, err
	}
	out.AccountID = caller.AccountID
	if err := openpca.Authorize(caller, name); err != nil {
		return nil, err
	}
	ctx := openpca.WithRequestID(openpca.WithCaller(r.Context(), caller), out.RequestID)
	return op.invoke(ctx, h.Service, func(in any) error { return decodeInput(op.input, body, in) })
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
	if !ok {
		logger.Error("internal failure", "request_id", requestID, "error", err)
		e = openpca.Errorf(openpca.CodeInternalFailure, "The server encountered an internal error (request id %s).", requestID)
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
