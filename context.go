package openpca

import (
	"context"
	"strings"
)

// Caller is who made a request: the account it acts for and the principal
// that signed it.
type Caller struct {
	AccountID string
	// Principal identifies the signer, such as an access key id; it is what
	// the audit log records as the requester.
	Principal string
	// ReadOnly callers may only read: see Authorize.
	ReadOnly bool
}

// Authorize returns AccessDeniedException if the caller may not perform
// operation (an API operation's name, as in X-Amz-Target) at all. A
// read-only caller may perform only the operations that change nothing,
// those named Describe*, Get* and List*, which is how AWS's managed
// read-only policy for Private CA reads too. Whether the caller may use a
// given CA is decided with the CA (see authority).
func Authorize(c Caller, operation string) error {
	if !c.ReadOnly {
		return nil
	}
	for _, read := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(operation, read) {
			return nil
		}
	}
	return Errorf(CodeAccessDenied, "User: %s is not authorized to perform: acm-pca:%s because its access key is read-only", c.Principal, operation)
}

type callerKey struct{}
type requestIDKey struct{}

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
