package openpca

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// AuditReport is a request for a report of a CA's key uses, and its
// progress.
type AuditReport struct {
	ID        string // lowercase UUID
	CAID      string
	AccountID string
	Bucket    string
	Key       string // AuditReportKey(CAID, ID, Format)
	Format    AuditReportResponseFormat
	Status    AuditReportStatus
	CreatedAt time.Time
	// LogSize is the size of the CA's key-use log when the report was
	// requested: the report covers exactly the entries before it.
	LogSize int64
	// Failure says why a FAILED report failed.
	Failure string
}

// AuditStore keeps audit reports, and reads what they list.
type AuditStore interface {
	// CreateAuditReport stores r as CREATING, with LogSize set to the CA's
	// log size now, unless the CA has a report that has not failed created
	// after since: then it returns ErrTooSoon and that report.
	CreateAuditReport(ctx context.Context, r *AuditReport, since time.Time) (*AuditReport, error)

	// FindAuditReport returns the report id of CA caID, or ErrNotFound.
	FindAuditReport(ctx context.Context, caID, id string) (*AuditReport, error)

	// AuditReports returns CA caID's latest reports, at most limit, the
	// newest first.
	AuditReports(ctx context.Context, caID string, limit int) ([]*AuditReport, error)

	// ClaimAuditReport gives owner the oldest CREATING report that no
	// other owner holds (its lease has run out, or it is owner's own), for
	// lease; ErrNotFound if there is none. A report whose row it cannot
	// read it claims all the same, and says so with an
	// *UnreadableReportError.
	ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*AuditReport, error)

	// RenewAuditReport extends owner's lease on a report; ErrConflict if
	// owner no longer holds it.
	RenewAuditReport(ctx context.Context, id, owner string, until time.Time) error

	// FinishAuditReport sets a report SUCCESS or FAILED if owner still
	// holds it; ErrConflict otherwise.
	FinishAuditReport(ctx context.Context, id, owner string, status AuditReportStatus, failure string) error

	// AuditEntries calls fn with entries from to to-1 (to at most
	// logSize) of CA caID's key-use log, in order, as a report cut at the
	// log's first logSize entries sees them: each entry's record and, for
	// an issuance, its certificate (without its DER), with its revocation
	// only if that is among the first logSize entries too, and the
	// certificate whose row names the entry as its revocation, if any.
	// Each record is checked against the hash the log stored for it: one
	// that does not match is an error wrapping ErrLogIntegrity, as is a
	// missing entry, an entry two rows name as their revocation, or a row
	// that names as its revocation an entry not after its issuance.
	// What fn is given is valid only until it returns.
	AuditEntries(ctx context.Context, caID string, logSize, from, to int64, fn func(*AuditEntry) error) error

	// LogRecords calls fn with the record of each of the first logSize
	// entries of CA caID's key-use log, in order. A record is valid only
	// until fn returns. A log shorter than logSize is an error.
	LogRecords(ctx context.Context, caID string, logSize int64, fn func(record []byte) error) error
}

// AuditReportKey is the S3 key of report id of the CA caID, as AWS
// names it: audit-report/<ca-id>/<id>.json or .csv.
func AuditReportKey(caID, id string, format AuditReportResponseFormat) string {
	ext := ".json"
	if format == AuditReportResponseFormatCsv {
		ext = ".csv"
	}
	return "audit-report/" + caID + "/" + id + ext
}

// AuditEntry is an entry of a CA's key-use log, as an audit report sees
// it.
type AuditEntry struct {
	Seq int64
	// Kind is the kind the store keeps the entry as, by which queries
	// find it (a CA's last import, its CRLs): a report checks it is its
	// record's.
	Kind   string
	Record []byte
	// Hash is Record's as a leaf of the log (RFC 6962), which the store
	// checked against the one it keeps.
	Hash [32]byte
	// Stored are the hashes of the log's tree that the store keeps with
	// the entry, those it completes (see tlog.StoredHashes), one after
	// the other, the leaf's first: inclusion and consistency proofs read
	// them. They are valid until fn returns.
	Stored []byte
	// Certificate is the certificate an issuance signed, nil for another
	// entry.
	Certificate *Certificate
	// RecordFromRow says that the store made Record again from
	// Certificate's row (IssueRecord), as it does for issuances logged
	// since the narrow_certificates migration: the record, checked against
	// its hash, then says what the row does. An issuance logged before
	// keeps its record, which a report checks against the row.
	RecordFromRow bool
	// Revoked is the certificate whose row in the certificates' table says
	// this entry revoked it, nil if no row does. A report checks it
	// against the entry's record entry by entry: each revocation is
	// matched where the log has it, and nothing is held in between.
	Revoked *RevokedCertificate
}

// ErrLogIntegrity says that what the store keeps of a CA's key-use log
// does not agree with the log's hashes: entries were changed or removed
// under the server. Stores return it as a *LogIntegrityError.
var ErrLogIntegrity = errors.New("the key-use log does not match its hashes")

// LogIntegrityError says which entry of which CA's key-use log does not
// agree with the log's hashes, and how. It is ErrLogIntegrity.
type LogIntegrityError struct {
	CAID string
	// Entry is the entry found wrong, or the first one missing.
	Entry int64
	// Problem says what is wrong with it: "is missing", "does not match
	// the hash the log stored for it".
	Problem string
}

// maxProblem bounds, in bytes, what a LogIntegrityError says of its
// entry: what it quotes comes from the tables, chosen by whoever changed
// them under the server (a serial of a megabyte), and the error goes to a
// report's failure, to the alarm and to the server's log.
const maxProblem = 1024

func (e *LogIntegrityError) Error() string {
	return fmt.Sprintf("%v: entry %d of the log of CA %s %s", ErrLogIntegrity, e.Entry, e.CAID, e.Detail())
}

// Detail is Problem, cut at maxProblem bytes: what an error, an alarm or
// a log line says of it.
func (e *LogIntegrityError) Detail() string {
	if s, cut := CutText(e.Problem, maxProblem); cut {
		return s + "…"
	}
	return e.Problem
}

// Is makes a *LogIntegrityError ErrLogIntegrity.
func (e *LogIntegrityError) Is(target error) bool { return target == ErrLogIntegrity }

// IntegrityAlarm is told of every key-use log found not to match its
// hashes, wherever that is found; nil tells no one.
type IntegrityAlarm func(context.Context, *LogIntegrityError)

// Check raises the alarm if err is a *LogIntegrityError.
func (a IntegrityAlarm) Check(ctx context.Context, err error) {
	if li, ok := errors.AsType[*LogIntegrityError](err); ok && a != nil {
		a(ctx, li)
	}
}

// UnreadableReportError is a report claimed whose row the store cannot
// read: a value of another type was set in the database under the server.
// The claim holds the report for its owner to fail it, so that the reports
// after it are still made.
type UnreadableReportError struct {
	ID  string
	Err error
}

func (e *UnreadableReportError) Error() string {
	return fmt.Sprintf("audit report %s: its row cannot be read: %v", e.ID, e.Err)
}

func (e *UnreadableReportError) Unwrap() error { return e.Err }

// ErrTooSoon refuses a report requested within the interval of the last.
var ErrTooSoon = &Error{Code: CodeRequestInProgress, Message: "An audit report was created recently."}

// ObjectStore holds objects in buckets: a local folder per bucket, or S3.
type ObjectStore interface {
	// CheckBucket reports whether bucket exists and can be written to,
	// with the ACL of the objects to be written there ("" for none): nil,
	// ErrBucketNotFound, ErrBucketAccess, or another error for a store
	// that cannot be reached. A bucket that refuses public objects takes
	// private ones: only a probe with the ACL tells.
	CheckBucket(ctx context.Context, bucket string, acl S3ObjectAcl) error

	// Put stores what r yields as object o, whole or not at all: a reader
	// never sees a partial object.
	Put(ctx context.Context, o Object, r io.Reader) error

	// Get opens an object for reading; ErrNotFound if there is none.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, error)

	// DiscardPartial removes what Puts of the object that never finished
	// (the server died) left behind: a temporary file, an incomplete
	// multipart upload. The object itself, if any, stays.
	DiscardPartial(ctx context.Context, bucket, key string) error

	// Delete removes an object; there being none is no error.
	Delete(ctx context.Context, bucket, key string) error

	// URL is where a relying party fetches an object the store made
	// public, such as a CRL.
	URL(bucket, key string) string
}

// Object names an object to store and says how.
type Object struct {
	Bucket, Key, ContentType string
	// ACL is the canned ACL of the object; "" leaves the bucket's default.
	ACL S3ObjectAcl
	// SizeHint is about how large the object may grow, or 0 if it is
	// small: a store that sizes the parts of an upload before it begins
	// (S3's, which takes 10,000 parts) sizes them for it.
	SizeHint int64
}

// Errors of ObjectStore.CheckBucket.
var (
	ErrBucketNotFound = &Error{Code: CodeResourceNotFound, Message: "The S3 bucket does not exist."}
	ErrBucketAccess   = &Error{Code: CodeInvalidArgs, Message: "The S3 bucket cannot be written to."}
)

// CheckBucketName checks the S3 naming rules for general purpose buckets:
// 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending
// with a letter or digit, without two adjacent dots, and not an IPv4
// address.
func CheckBucketName(name string) error {
	invalid := func(why string) error {
		// A name from the tables may be of any length: the error quotes
		// as much of it as a name may have.
		quoted, cut := CutText(name, 63)
		more := ""
		if cut {
			more = "…"
		}
		return Errorf(CodeInvalidArgs, "%q%s is not a valid S3 bucket name: %s.", quoted, more, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return invalid("it must have 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return invalid("it may hold only lowercase letters, digits, dots and hyphens")
		}
	}
	if first, last := name[0], name[len(name)-1]; first == '.' || first == '-' || last == '.' || last == '-' {
		return invalid("it must start and end with a letter or digit")
	}
	if strings.Contains(name, "..") {
		return invalid("it must not hold two adjacent dots")
	}
	if parts := strings.Split(name, "."); len(parts) == 4 && strings.Trim(name, "0123456789.") == "" {
		return invalid("it must not look like an IP address")
	}
	return nil
}
