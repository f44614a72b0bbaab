package openpca

import "context"

// Caller is who made a request: the account it acts for and the principal
// that signed it.
type Caller struct {
	AccountID string
	// Principal identifies the signer, such as an access key id; it is what
	// the audit log records as the requester.
	Principal string
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
