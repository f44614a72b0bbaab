package openpca

import (
	"context"
	"time"
)

// DefaultCRLExpirationInDays is the life of a CRL when the configuration
// sets none, as the AWS console proposes; the model documents none.
const DefaultCRLExpirationInDays = 7

// OCSPValidity is how long an OCSP answer a server signs is valid: its
// nextUpdate is its thisUpdate and this.
const OCSPValidity = 24 * time.Hour

// ResponderPrincipal is who the certificate of a delegated OCSP responder
// is requested by, in the CA's log and audit reports: the server itself.
const ResponderPrincipal = "openpca:ocsp-responder"

// CRL returns the CA's CRL configuration if CRLs are enabled, else nil, as
// it takes effect: what the configuration leaves out is the default, as
// the model documents it (S3ObjectAcl PUBLIC_READ, CrlType COMPLETE), and
// DefaultCRLExpirationInDays. DescribeCertificateAuthority reports it so.
func (ca *CA) CRL() *CrlConfiguration {
	if ca.Revocation == nil || ca.Revocation.CrlConfiguration == nil {
		return nil
	}
	c := *ca.Revocation.CrlConfiguration
	if c.Enabled == nil || !*c.Enabled {
		return nil
	}
	if c.S3ObjectAcl == "" {
		c.S3ObjectAcl = S3ObjectAclPublicRead
	}
	if c.CrlType == "" {
		c.CrlType = CrlTypeComplete
	}
	if c.ExpirationInDays == 0 {
		c.ExpirationInDays = DefaultCRLExpirationInDays
	}
	return &c
}

// OCSP returns the CA's OCSP configuration if OCSP is enabled, else nil.
func (ca *CA) OCSP() *OcspConfiguration {
	if ca.Revocation == nil || ca.Revocation.OcspConfiguration == nil {
		return nil
	}
	if o := ca.Revocation.OcspConfiguration; o.Enabled != nil && *o.Enabled {
		return o
	}
	return nil
}

// OCSPResponse is a signed OCSP response kept for a certificate, the
// certificate of Serial of CA CAID.
type OCSPResponse struct {
	CAID, Serial string
	Status       string // "good" or "revoked"
	RevokedAt    time.Time
	SignedAt     time.Time
	DER          []byte
}

// The names of the OCSP error responses (RFC 6960, 4.2.1). An OCSP answer
// says one of them, or a certificate's status: good, revoked or unknown.
const (
	OCSPMalformedRequest = "malformedRequest"
	OCSPUnauthorized     = "unauthorized"
	OCSPTryLater         = "tryLater"
	OCSPInternalError    = "internalError"
)

// OCSPStore keeps the OCSP response last signed for each certificate,
// for every server of the store: a status is signed once for all of
// them, and survives their restarts.
type OCSPStore interface {
	// OCSPResponse returns the response kept for the certificate of
	// serial of CA caID, or ErrNotFound.
	OCSPResponse(ctx context.Context, caID, serial string) (*OCSPResponse, error)
	// RecordOCSP appends use, the key use of an OCSP response's signing
	// by the CA's own key, to the CA's log, if the CA is in one of
	// statuses with a certificate valid at the use's time (ErrCAState
	// otherwise), and keeps kept, unless nil, as the response for its
	// certificate, in place of the one kept before: both or neither. A
	// nil use is an answer the CA's delegated responder signed, which no
	// log keeps; it is kept while its CA exists, and statuses are not
	// looked at.
	RecordOCSP(ctx context.Context, use *KeyUse, kept *OCSPResponse, statuses []CertificateAuthorityStatus) error
}

// RevocationStatuses are the statuses of a CA that signs CRLs and OCSP
// answers: a disabled CA still revokes, and its relying parties still need
// to learn of it.
var RevocationStatuses = []CertificateAuthorityStatus{CertificateAuthorityStatusActive, CertificateAuthorityStatusDisabled}

// CRLJob is a CA whose next CRL a server has claimed to publish.
type CRLJob struct {
	CAID      string
	AccountID string
	// Wanted is the CA's request count the CRL answers: each revocation,
	// and each change of a CA whose CRLs are enabled, asks for a new CRL.
	Wanted int64
	// Number is the last CRL number the CA signed; the next is Number+1.
	Number int64
	// LastThisUpdate is the thisUpdate of the last CRL published; zero if
	// none was.
	LastThisUpdate time.Time
	// FirstSigned is the earliest thisUpdate of the CRLs in the CA's log,
	// published or not; zero if it has none.
	FirstSigned time.Time
	// SignedBefore is the latest thisUpdate of the CRLs in the CA's log,
	// published or not, at or before the claim's now; zero if none is.
	SignedBefore time.Time
	// RevocationsRead is the RevocationsBefore (CRLEntries) of the last
	// CRL published, or of the first signed while none was published
	// (its thisUpdate is FirstSigned, from which the next CRL lists what
	// is valid); -1 if not known: none was signed, or the last was
	// published by a version that did not keep it. One signed after the
	// last published and not published does not count: what it listed
	// reached no one.
	RevocationsRead int64
	// Failures counts the attempts that failed in a row since the last CRL
	// was published, by any server.
	Failures int
}

// RevokedCertificate is an entry of a CRL.
type RevokedCertificate struct {
	Serial    string // hex
	RevokedAt time.Time
	Reason    RevocationReason
}

// ClockSlack is how far after now a CA's last CRL may be dated before a new
// one is wanted: one dated ahead, by a clock since stepped back (a machine
// that started with its clock wrong) or by a server whose clock runs
// ahead, is refused by relying parties as not yet valid until the next
// revocation or refresh, days away.
const ClockSlack = time.Minute

// ClockStep is how far after now a wait that a server set (a CRL's retry
// or pause, a witnessing round's next time) may end before it is taken for
// one set by a clock since stepped back, and ignored. The waits servers set
// are a quarter of an hour at most: a clock stepped back by a day would
// otherwise hold the work for a day. Servers whose clocks differ by less
// never take each other's waits for such (at a minute, two servers a few
// minutes apart claimed each other's work back and forth). A hold (a
// lease its owner renews) always counts: taken from a live owner whose
// clock runs far ahead, servers took each other's holds, each signing
// CRLs, without end.
const ClockStep = time.Hour

// CRLStore keeps the state of each CA's CRL publication: which CAs want a
// new CRL, which server publishes it, and the last CRL's number.
type CRLStore interface {
	// ClaimCRL gives owner, for lease, a CA that wants a new CRL (one was
	// asked for since the last was published, or the last is due for
	// refresh at now, or the last is dated more than ClockSlack after
	// now) and that no other owner holds, nor a wait of FinishCRL or
	// ReleaseCRL holds (a wait ending more than ClockStep after now does
	// not count; a hold, which its owner renews, always does), the one
	// whose last CRL is oldest first; ErrNotFound if none.
	ClaimCRL(ctx context.Context, owner string, now time.Time, lease time.Duration) (*CRLJob, error)

	// RenewCRL extends owner's lease on a CA's CRL until until;
	// ErrConflict if owner no longer holds it.
	RenewCRL(ctx context.Context, caID, owner string, until time.Time) error

	// RecordCRL records that the CA of job signed CRL number job.Number+1,
	// having read the revocations logged before entry read, and appends
	// use to its log, atomically, if owner still holds the job
	// (ErrConflict otherwise) and the CA is in one of statuses (ErrCAState
	// otherwise). Only then may the CRL be published. While none of the
	// CA's CRLs was published, what the first signed read is kept as
	// CRLJob.RevocationsRead.
	RecordCRL(ctx context.Context, job *CRLJob, owner string, use *KeyUse, read int64, statuses []CertificateAuthorityStatus) error

	// FinishCRL records that the CRL answering wanted is published, of
	// thisUpdate, having read the revocations logged before entry read (or
	// that none is needed: a negative read keeps the last CRL's, and a
	// zero thisUpdate its date), and when it must be refreshed (zero:
	// never); it releases owner's hold, and no CRL of the CA is claimed
	// again before notBefore (zero: at once).
	FinishCRL(ctx context.Context, caID, owner string, wanted int64, thisUpdate time.Time, read int64, refreshAt, notBefore time.Time) error

	// WantCRL asks for a new CRL of a CA that has had CRLs.
	WantCRL(ctx context.Context, caID string) error

	// ReleaseCRL gives up owner's hold until retryAt, counting a failure
	// in a row if failed (FinishCRL ends the row).
	ReleaseCRL(ctx context.Context, caID, owner string, retryAt time.Time, failed bool) error

	// CountFailingCRLs counts the CAs that may sign CRLs at now (in
	// RevocationStatuses, their certificates valid) whose last attempt to
	// publish one failed.
	CountFailingCRLs(ctx context.Context, now time.Time) (int, error)

	// RetryCRLsNow ends the waits ReleaseCRL set, so that CRLs whose
	// writes failed are tried again at once; holds of owners stay.
	RetryCRLsNow(ctx context.Context) error

	// RetryCRLNow ends the wait of a CA's CRL whose last attempt failed,
	// as RetryCRLsNow does for every CA's.
	RetryCRLNow(ctx context.Context, caID string) error

	// LatestCRL returns the thisUpdate of the last CRL the CA published;
	// zero if it published none.
	LatestCRL(ctx context.Context, caID string) (time.Time, error)

	// RevokedCertificates calls fn for each certificate of the CA that is
	// revoked and expires after expiresAfter, in order of revocation, of
	// those revoked in the first before entries of the CA's log: its size
	// when the read began, which it returns. Those revoked at entry
	// listedFrom or later (a negative listedFrom: none) are called for
	// whatever their end: where one ended by expiresAfter, expiresAfter is
	// moved back to the instant before the second of the earliest such
	// end, and all that expire after that are called for. It returns the
	// expiresAfter it used. A CRL's record says so (CRLEntries), and every
	// revocation logged before is read.
	RevokedCertificates(ctx context.Context, caID string, expiresAfter time.Time, listedFrom int64, fn func(*RevokedCertificate) error) (before int64, used time.Time, err error)
}
