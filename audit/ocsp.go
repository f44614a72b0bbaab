package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// OCSPAnswer is an OCSP answer about a certificate of a CA, whose
// signature was checked: by the CA's key, or by a responder's, in a
// certificate the CA's key signed.
type OCSPAnswer struct {
	DER        []byte
	Serial     string // hex
	Status     string // good, revoked or unknown
	RevokedAt  time.Time
	Reason     int // the CRL reason code, 0 for none
	ProducedAt time.Time
	// ThisUpdate and NextUpdate are when what it says holds, for relying
	// parties.
	ThisUpdate, NextUpdate time.Time
	// Responder is the certificate of the responder that signed it, or
	// nil if the CA's key did.
	Responder []byte
}

// OCSPProof is what CheckOCSPAnswer found: the CA, and the entry of the
// answer's signing in its log of Size entries.
type OCSPProof struct {
	CertificateAuthorityArn string
	Entry, Size             int64
}

// CheckOCSPAnswer checks an answer against a proof file's log, whose
// checkpoint verifierKey signed, and returns the entry of its signing:
// the answer's, if the CA signed it, which the log keeps, or its
// responder's issuance, requested by ResponderPrincipal (the answers a
// responder signs are in no log). It holds for OCSPValidity at most, as
// a server's answers do, and the log must reach its time: the later of
// its producedAt and thisUpdate (so that neither, set back, hides a
// revocation). What it says must be the log's then, give or take the
// clocks' skew (recordClockSkew): "good" of a certificate the log issued
// and had not revoked, "revoked" of one the log revoked, at that second
// and for that reason, "unknown" of one the log had not issued. An answer
// that says otherwise was signed with a revocation cleared from the
// database, or a key used outside the server.
func CheckOCSPAnswer(proof io.ReadSeeker, verifierKey string, a *OCSPAnswer) (*OCSPProof, error) {
	var checkpoint auditlog.Checkpoint
	h, err := auditlog.ReadProof(proof, func(h *auditlog.ProofHeader) (int64, error) {
		c, err := auditlog.OpenCheckpoint([]byte(h.Checkpoint), verifierKey)
		if err == nil && c.Origin != auditlog.Origin(h.CertificateAuthorityArn) {
			err = fmt.Errorf("the checkpoint is of the log %q, not of %s", c.Origin, h.CertificateAuthorityArn)
		}
		checkpoint = c
		return 0, cmp.Or(err, errStop)
	}, nil)
	if !errors.Is(err, errStop) {
		return nil, err
	}
	if _, err := proof.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	signed := sha256.Sum256(a.DER)
	signer := hex.EncodeToString(signed[:])
	if a.Responder != nil {
		sum := sha256.Sum256(a.Responder)
		signer = hex.EncodeToString(sum[:])
	}
	serial := bareSerial(a.Serial)
	signing, issued, revoked := int64(-1), int64(-1), int64(-1)
	var issuedAt, revokedAt time.Time
	var reason string
	err = rereadProof(proof, &checkpoint, func(seq int64, record []byte, _ *auditlog.Hasher) error {
		var r openpca.KeyUseRecord
		if err := decodeRecord(record, &r); err != nil {
			return fmt.Errorf("entry %d: %w", seq, err)
		}
		if r.SignedSHA256 == signer && signing < 0 && (a.Responder == nil && r.Kind == openpca.KeyUseOCSP ||
			a.Responder != nil && r.Kind == openpca.KeyUseIssue && r.RequestedBy == openpca.ResponderPrincipal) {
			signing = seq
		}
		if bareSerial(r.Serial) != serial {
			return nil
		}
		at, err := time.Parse(time.RFC3339Nano, r.At)
		if err != nil {
			return fmt.Errorf("entry %d: %w", seq, err)
		}
		switch {
		case r.Kind == openpca.KeyUseIssue && issued < 0:
			issued, issuedAt = seq, at
		case r.Kind == openpca.KeyUseRevoke && revoked < 0:
			revoked, revokedAt, reason = seq, at, r.RevocationReason
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	at := a.ProducedAt
	if a.ThisUpdate.After(at) {
		at = a.ThisUpdate
	}
	switch {
	case a.NextUpdate.IsZero() || a.NextUpdate.Sub(a.ThisUpdate) > openpca.OCSPValidity:
		return nil, fmt.Errorf("the answer holds from %s to %s, longer than the %s a server's answers hold",
			a.ThisUpdate.UTC().Format(time.RFC3339), a.NextUpdate.UTC().Format(time.RFC3339), openpca.OCSPValidity)
	case checkpoint.Time.Before(at):
		return nil, fmt.Errorf("the log's checkpoint was signed at %s, before the answer's time, %s: a report made after it holds what the log said then",
			checkpoint.Time.Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	switch {
	case signing < 0 && a.Responder != nil:
		return nil, fmt.Errorf("the answer's responder certificate is no responder's issuance in the log of %d entries: the CA's key issued it outside its log, or it is a certificate of another kind", checkpoint.Size)
	case signing < 0:
		return nil, fmt.Errorf("the CA's key signed the answer outside its log: the log of %d entries has no record of it", checkpoint.Size)
	}
	before, after := at.Add(-recordClockSkew), at.Add(recordClockSkew)
	said := fmt.Sprintf("the answer of %s says the certificate %s is %s", at.UTC().Format(time.RFC3339), a.Serial, a.Status)
	switch a.Status {
	case "good":
		if issued < 0 || issuedAt.After(after) {
			return nil, fmt.Errorf("%s; the log issued no certificate of that serial before it", said)
		}
		if revoked >= 0 && revokedAt.Before(before) {
			return nil, fmt.Errorf("%s; the log revoked it at %s (entry %d)", said, revokedAt.UTC().Format(time.RFC3339), revoked)
		}
	case "revoked":
		if revoked < 0 || revokedAt.After(after) {
			return nil, fmt.Errorf("%s; the log did not revoke it before", said)
		}
		if code := pki.CRLReason(openpca.RevocationReason(reason)); revokedAt.Unix() != a.RevokedAt.Unix() || code != a.Reason {
			return nil, fmt.Errorf("%s at %s for reason %d; the log revoked it at %s for reason %d (entry %d)",
				said, a.RevokedAt.UTC().Format(time.RFC3339), a.Reason, revokedAt.UTC().Format(time.RFC3339), code, revoked)
		}
	case "unknown":
		if issued >= 0 && issuedAt.Before(before) {
			return nil, fmt.Errorf("%s; the log issued it at %s (entry %d)", said, issuedAt.UTC().Format(time.RFC3339), issued)
		}
	default:
		return nil, fmt.Errorf("an answer of status %q", a.Status)
	}
	return &OCSPProof{CertificateAuthorityArn: h.CertificateAuthorityArn, Entry: signing, Size: checkpoint.Size}, nil
}
