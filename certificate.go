package openpca

import (
	"context"
	"time"
)

// Certificate is a certificate a CA issued, with what the audit report
// shows of it.
type Certificate struct {
	CAID      string
	AccountID string
	// Serial is the serial number in lowercase hex without colons, as the
	// certificate's ARN ends.
	Serial  string
	ARN     string
	DER     []byte
	Subject string // as AWS prints it: most specific RDN first
	// Names are the subject alternative names (DNS names, emails, URIs,
	// IP addresses), space-separated, for searching.
	Names       string
	NotBefore   time.Time
	NotAfter    time.Time
	IssuedAt    time.Time
	TemplateARN string
	RevokedAt   time.Time // zero unless revoked
	// RevocationReason is set when RevokedAt is.
	RevocationReason RevocationReason
	// RequestedBy is the principal that asked for the certificate;
	// RequestID the request that issued it.
	RequestedBy string
	RequestID   string
}

// MaxSerialOctets is the longest serial number RFC 5280 allows (4.1.2.2),
// counted in the octets of its DER encoding.
const MaxSerialOctets = 20

// Kinds of key use: every time a CA's private key signs, or the state its
// signatures vouch for changes, one of these is logged.
const (
	KeyUseCSR    = "CSR"    // the CA signed its certificate signing request
	KeyUseIssue  = "ISSUE"  // the CA signed a certificate
	KeyUseRevoke = "REVOKE" // the CA revoked a certificate it signed
	KeyUseCRL    = "CRL"    // the CA signed a certificate revocation list
	KeyUseOCSP   = "OCSP"   // the CA signed an OCSP response
	// KeyUseImport: the CA's certificate and chain were imported, which
	// its signatures name as their issuer and hand out as their chain.
	KeyUseImport = "IMPORT"
)

// KeyUse is one entry of a CA's key-use log, which is append-only: entry
// Seq is the Seq-th use of the CA's key.
type KeyUse struct {
	CAID   string
	Seq    int64
	Kind   string
	At     time.Time
	Serial string // the certificate concerned, for ISSUE and REVOKE
	// Record is the entry as it is kept, a JSON document that the log's
	// integrity covers byte for byte.
	Record []byte
}

// Issuance is a certificate to record together with its key use.
type Issuance struct {
	Certificate *Certificate
	Use         *KeyUse
	// Token, when set, makes the issuance idempotent (see CAStore.CreateCA).
	Token IdempotencyToken
	// Statuses are those the CA must still be in, with a certificate still
	// valid at the certificate's IssuedAt, when the issuance is recorded;
	// otherwise it is refused with ErrCAState. EXPIRED alone asks instead
	// for a certificate expired by then (a root CA's own renewal).
	Statuses []CertificateAuthorityStatus
}

// Revocation is the revocation of a certificate, to record together with
// its key use.
type Revocation struct {
	CAID     string
	Serial   string
	At       time.Time
	Reason   RevocationReason
	Use      *KeyUse
	Statuses []CertificateAuthorityStatus // as for Issuance
}

// CertificateStore keeps issued certificates and the key-use log.
// Recording methods are safe for concurrent use and durable when they
// return; implementations share one transaction among concurrent calls.
type CertificateStore interface {
	// RecordIssuance stores a certificate and appends its key use to the
	// CA's log, atomically. It returns the stored certificate, which is an
	// earlier one if the idempotency token was used within its window. It
	// returns ErrConflict if the CA already has a certificate with that
	// serial, and ErrCAState if the CA's status no longer allows issuing.
	RecordIssuance(ctx context.Context, is *Issuance) (*Certificate, error)

	// RecordRevocation marks a certificate revoked and appends the key use
	// to the CA's log, atomically. It returns ErrNotFound for an unknown
	// serial, ErrAlreadyRevoked, or ErrCAState.
	RecordRevocation(ctx context.Context, r *Revocation) error

	// FindCertificate returns a CA's certificate by serial, or ErrNotFound.
	FindCertificate(ctx context.Context, caID, serial string) (*Certificate, error)

	// FindIdempotent returns the result of an idempotent operation that
	// the account made with token at or after since, or ErrNotFound.
	FindIdempotent(ctx context.Context, token IdempotencyToken) (string, error)

	// ExpireIdempotencyTokens removes the tokens of every account made
	// before before, atMost of them, and returns how many.
	ExpireIdempotencyTokens(ctx context.Context, before time.Time, atMost int64) (int64, error)

	// KeyUses returns the entries of a CA's key-use log from seq on, at
	// most limit of them.
	KeyUses(ctx context.Context, caID string, from int64, limit int) ([]*KeyUse, error)

	// CertificateKeyUses returns the entries of a CA's key-use log about
	// one certificate (its issuance, and its revocation if any), in order;
	// ErrNotFound if the CA has no certificate with that serial.
	CertificateKeyUses(ctx context.Context, caID, serial string) ([]*KeyUse, error)

	// CRLKeyUses returns the entries of a CA's key-use log of the CRLs it
	// signed with thisUpdate, to the second, in order (at most a few).
	CRLKeyUses(ctx context.Context, caID string, thisUpdate time.Time) ([]*KeyUse, error)

	// LogSize returns the number of entries in a CA's key-use log.
	LogSize(ctx context.Context, caID string) (int64, error)

	// LogHashes returns hashes of the Merkle tree over a CA's key-use log,
	// whose leaves are the entries' records in order (RFC 6962 hashing),
	// by their stored-hash index as golang.org/x/mod/sumdb/tlog numbers
	// them. The store keeps them as it appends entries.
	LogHashes(ctx context.Context, caID string, indexes []int64) ([][32]byte, error)
}
