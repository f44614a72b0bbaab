package openpca

import (
	"context"
	"errors"

	"github.com/openpca/openpca/policy"
)

// Abandoned reports whether err is only that ctx's caller gave up on it
// (a client that hung up, not a deadline). Such a failure says nothing of
// the server, and is not logged as an error: anyone could write such
// lines, as fast as they hang up. Any other error is the server's, even
// if its client has gone since.
func Abandoned(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled)
}

// Caller is who made a request: the account it acts for, the principal
// that signed it, what its policies let it do, and where it came from.
type Caller struct {
	AccountID string
	// Principal identifies the signer, such as an access key id; it is what
	// the audit log records as the requester.
	Principal string
	// Policies are the identity policies of the principal. Nil means it has
	// none: it may do everything in its own account, as before policies
	// existed. Non-nil (even empty), they decide (see authority).
	Policies []policy.Named
	// SourceIP is the address the request came from, and SecureTransport
	// whether it came over TLS: the values of aws:SourceIp and
	// aws:SecureTransport.
	SourceIP        string
	SecureTransport bool
}

// Operations of the audit log's endpoints, OpenPCA's own beside the AWS
// API's: as actions, acm-pca:GetAuditLogCheckpoint and so on. They change
// nothing, so the managed ReadOnly policy allows them.
const (
	OperationAuditCheckpoint  = "GetAuditLogCheckpoint"
	OperationAuditConsistency = "GetAuditLogConsistencyProof"
	OperationAuditInclusion   = "GetAuditLogInclusionProof"
	OperationAuditReports     = "ListAuditReports"
)

// OperationListCertificates is the console's own operation, as the action
// acm-pca:ListCertificates: listing, searching and counting a CA's
// certificates, with who requested each. A CA's policy cannot share it:
// like an audit report, it shows everything the CA issued, which AWS gives
// no other account.
const OperationListCertificates = "ListCertificates"

type callerKey struct{}
type requestIDKey struct{}
type operationKey struct{}
type denialUnloggedKey struct{}

// WithCaller returns a context carrying the caller of a request.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller a context carries, and whether it has one.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithRequestID returns a context carrying the id of a request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id a context carries, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithOperation returns a context carrying the operation a request calls,
// such as IssueCertificate: the action its authorization decides, as
// acm-pca:<operation>.
func WithOperation(ctx context.Context, operation string) context.Context {
	return context.WithValue(ctx, operationKey{}, operation)
}

// OperationFrom returns the operation a context carries, or "".
func OperationFrom(ctx context.Context) string {
	op, _ := ctx.Value(operationKey{}).(string)
	return op
}

// WithDenialUnlogged returns a context whose refusals for want of a
// permission are not logged. A page of the web console asks, beside what
// it was asked, for what it would show with it (each CA's certificate on
// the list of CAs), and a refusal only leaves that out: logged, it wrote a
// line per CA at each load of the page for a key that may list CAs and not
// read their certificates, one request's worth of the account's rate.
func WithDenialUnlogged(ctx context.Context) context.Context {
	return context.WithValue(ctx, denialUnloggedKey{}, true)
}

// DenialUnlogged reports whether ctx's refusals are not to be logged.
func DenialUnlogged(ctx context.Context) bool {
	return ctx.Value(denialUnloggedKey{}) != nil
}
