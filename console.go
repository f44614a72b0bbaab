package openpca

import (
	"context"
	"time"
)

// ConsoleSession is the session of an access key signed in to the web
// console. The cookie holds a random token; the store keeps only its
// SHA-256 (IDHash), so that a copy of the database signs no one in.
type ConsoleSession struct {
	IDHash []byte
	KeyID  string
	// CSRF is the token every form of the session carries back.
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CertificateQuery narrows the certificates of a CA the console lists,
// the newest first.
type CertificateQuery struct {
	// Serial, if set, is the lowercase hex serial of the one certificate
	// wanted.
	Serial string
	// Text, if set, is a substring of the subject or of a subject
	// alternative name wanted.
	Text string
	// Status is "", "issued" (neither revoked nor expired at Now),
	// "revoked" or "expired".
	Status string
	Now    time.Time
	// Before, if not 0, lists only certificates issued before the one
	// with this issue sequence: the next page.
	Before int64
	Limit  int
}

// ListedCertificate is a certificate as the console lists it: without its
// DER, with its place in the CA's log (the cursor of the next page).
type ListedCertificate struct {
	Certificate
	IssueSeq int64
}

// DayCount is a count of something on one day (UTC).
type DayCount struct {
	Day   time.Time
	Count int
}

// ConsoleSessionsPerKey is how many console sessions an access key keeps:
// a sign-in past them ends its oldest, so that signing in over and over
// (a script, a leaked key) does not grow the store by a row each time.
const ConsoleSessionsPerKey = 16

// ConsoleStore keeps console sessions and answers the console's
// questions that the AWS API has no operation for.
type ConsoleStore interface {
	// CreateConsoleSession stores a session, and drops those that expired
	// before it was created, and those of its key past the newest
	// ConsoleSessionsPerKey.
	CreateConsoleSession(ctx context.Context, s *ConsoleSession) error
	// FindConsoleSession returns the session with this hash if it has not
	// expired at now; ErrNotFound otherwise.
	FindConsoleSession(ctx context.Context, idHash []byte, now time.Time) (*ConsoleSession, error)
	// DeleteConsoleSession ends a session, and any that expired before
	// now.
	DeleteConsoleSession(ctx context.Context, idHash []byte, now time.Time) error
	// ExtendConsoleSession moves a session's expiry to expiresAt, if
	// that is later.
	ExtendConsoleSession(ctx context.Context, idHash []byte, expiresAt time.Time) error

	// ListCertificates lists a CA's certificates that q asks for, the
	// newest first, at most q.Limit.
	ListCertificates(ctx context.Context, caID string, q CertificateQuery) ([]*ListedCertificate, error)
	// ExpiryCounts counts a CA's unrevoked certificates by the day they
	// expire, from from to to.
	ExpiryCounts(ctx context.Context, caID string, from, to time.Time) ([]DayCount, error)
	// ActivityCounts counts a CA's issuances and revocations by the day
	// its key-use log recorded them, since since.
	ActivityCounts(ctx context.Context, caID string, since time.Time) (issued, revoked []DayCount, err error)
}
