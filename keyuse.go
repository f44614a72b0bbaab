package openpca

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyUseRecord is the JSON document a key-use log entry keeps. Its fields
// are those of an audit report row and the request behind it, plus a hash
// of what was signed, so that the log alone tells what the key vouched for.
// Times are RFC 3339 in UTC: At to the microsecond, as stored; the
// certificate's validity to the second, as in the certificate.
type KeyUseRecord struct {
	Kind             string `json:"kind"`
	CertificateAuth  string `json:"certificateAuthorityArn"`
	At               string `json:"at"`
	Account          string `json:"awsAccountId"`
	RequestedBy      string `json:"requestedBy,omitempty"`
	RequestID        string `json:"requestId,omitempty"`
	CertificateArn   string `json:"certificateArn,omitempty"`
	Serial           string `json:"serial,omitempty"`
	Subject          string `json:"subject,omitempty"`
	NotBefore        string `json:"notBefore,omitempty"`
	NotAfter         string `json:"notAfter,omitempty"`
	TemplateArn      string `json:"templateArn,omitempty"`
	RevocationReason string `json:"revocationReason,omitempty"`
	// CRLNumber, ThisUpdate and NextUpdate describe a signed CRL;
	// Revoked is how many certificates it lists, and RevocationsBefore,
	// RevocationsFrom, ExpiringFrom and EntriesSHA256 which (CRLEntries).
	// Records written before they were added have none of them, nor, of
	// those after, RevocationsFrom before it was.
	CRLNumber         int64  `json:"crlNumber,omitempty"`
	ThisUpdate        string `json:"thisUpdate,omitempty"`
	NextUpdate        string `json:"nextUpdate,omitempty"`
	Revoked           *int   `json:"revokedCertificates,omitempty"`
	RevocationsBefore *int64 `json:"revocationsBefore,omitempty"`
	RevocationsFrom   *int64 `json:"revocationsFrom,omitempty"`
	ExpiringFrom      string `json:"expiringFrom,omitempty"`
	EntriesSHA256     string `json:"entriesSha256,omitempty"`
	// CertificateSHA256 and ChainSHA256 are the SHA-256 of the DER of
	// the CA certificate an IMPORT record imported, and of its chain's
	// certificates' DER, one after another, in the chain's order (none
	// for a CA certificate imported without a chain).
	CertificateSHA256 string `json:"certificateSha256,omitempty"`
	ChainSHA256       string `json:"chainSha256,omitempty"`
	// CertStatus is the status an OCSP response gives the certificate of
	// Serial: good, revoked or unknown.
	CertStatus   string `json:"certStatus,omitempty"`
	SignedSHA256 string `json:"signedSha256,omitempty"` // of the DER the key signed
}

// keyUseKinds are the kinds of key use a log records.
var keyUseKinds = []string{KeyUseCSR, KeyUseIssue, KeyUseRevoke, KeyUseCRL, KeyUseOCSP, KeyUseImport}

// RecordChecker checks that records are ones a server writes. Its zero
// value is ready; it keeps a buffer from record to record.
type RecordChecker struct{ buf []byte }

// Check checks that b, a log entry's record that decoded as r, is one a
// server writes: of a kind the log records, naming a certificate by its
// CA's ARN and its serial, and written as a server writes it, the one way.
// Records are JSON, which readers decode differently (a member given
// twice, or in another case): a record written another way could read as
// one thing to an auditor's verifier and as another to jq.
func (c *RecordChecker) Check(b []byte, r *KeyUseRecord) error {
	if !slices.Contains(keyUseKinds, r.Kind) {
		return fmt.Errorf("its kind %q is none that a log records", r.Kind)
	}
	if (r.Kind == KeyUseIssue || r.Kind == KeyUseRevoke) && !IsCertificateARN(r.CertificateArn, r.CertificateAuth, r.Serial) {
		return fmt.Errorf("its certificate %s is not the certificate %s of its CA %s", r.CertificateArn, r.Serial, r.CertificateAuth)
	}
	c.buf = appendRecord(c.buf[:0], r)
	if !bytes.Equal(c.buf, b) {
		return errors.New("it is not written as a server writes records")
	}
	return nil
}

// IsCertificateARN reports whether arn is the ARN of the certificate of
// serial issued by the CA of caARN, without making it (a report's log has
// millions).
func IsCertificateARN(arn, caARN, serial string) bool {
	rest, ok := strings.CutPrefix(arn, caARN)
	return ok && serial != "" && len(rest) == len(certResource)+len(serial) && strings.HasPrefix(rest, certResource) && strings.HasSuffix(rest, serial)
}

func newKeyUse(caID string, r KeyUseRecord, at time.Time, serial string) *KeyUse {
	r.At = at.UTC().Format(time.RFC3339Nano)
	return &KeyUse{CAID: caID, Kind: r.Kind, At: at, Serial: serial, Record: appendRecord(nil, &r)}
}

// appendRecord appends r as encoding/json marshals it, byte for byte (a
// test holds them to it), without reflection: a report's log has millions
// of records to make again.
func appendRecord(b []byte, r *KeyUseRecord) []byte {
	b = append(b, '{')
	b = appendMember(b, `"kind":`, r.Kind)
	b = appendMember(b, `,"certificateAuthorityArn":`, r.CertificateAuth)
	b = appendMember(b, `,"at":`, r.At)
	b = appendMember(b, `,"awsAccountId":`, r.Account)
	for _, m := range []struct{ name, value string }{
		{`,"requestedBy":`, r.RequestedBy}, {`,"requestId":`, r.RequestID}, {`,"certificateArn":`, r.CertificateArn},
		{`,"serial":`, r.Serial}, {`,"subject":`, r.Subject}, {`,"notBefore":`, r.NotBefore}, {`,"notAfter":`, r.NotAfter},
		{`,"templateArn":`, r.TemplateArn}, {`,"revocationReason":`, r.RevocationReason},
	} {
		if m.value != "" {
			b = appendMember(b, m.name, m.value)
		}
	}
	if r.CRLNumber != 0 {
		b = strconv.AppendInt(append(b, `,"crlNumber":`...), r.CRLNumber, 10)
	}
	for _, m := range []struct{ name, value string }{{`,"thisUpdate":`, r.ThisUpdate}, {`,"nextUpdate":`, r.NextUpdate}} {
		if m.value != "" {
			b = appendMember(b, m.name, m.value)
		}
	}
	if r.Revoked != nil {
		b = strconv.AppendInt(append(b, `,"revokedCertificates":`...), int64(*r.Revoked), 10)
	}
	if r.RevocationsBefore != nil {
		b = strconv.AppendInt(append(b, `,"revocationsBefore":`...), *r.RevocationsBefore, 10)
	}
	if r.RevocationsFrom != nil {
		b = strconv.AppendInt(append(b, `,"revocationsFrom":`...), *r.RevocationsFrom, 10)
	}
	for _, m := range []struct{ name, value string }{
		{`,"expiringFrom":`, r.ExpiringFrom}, {`,"entriesSha256":`, r.EntriesSHA256},
		{`,"certificateSha256":`, r.CertificateSHA256}, {`,"chainSha256":`, r.ChainSHA256},
	} {
		if m.value != "" {
			b = appendMember(b, m.name, m.value)
		}
	}
	for _, m := range []struct{ name, value string }{{`,"certStatus":`, r.CertStatus}, {`,"signedSha256":`, r.SignedSHA256}} {
		if m.value != "" {
			b = appendMember(b, m.name, m.value)
		}
	}
	return append(b, '}')
}

// appendMember appends a member's name (quoted, with its colon) and its
// string value, escaped as encoding/json escapes it: a string of printable
// ASCII without the characters it escapes goes as it is; any other, through
// encoding/json itself.
func appendMember(b []byte, name, value string) []byte {
	b = append(b, name...)
	for i := 0; i < len(value); i++ {
		if !plainJSON[value[i]] {
			quoted, _ := json.Marshal(value) // a string: cannot fail
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, value...)
	return append(b, '"')
}

// plainJSON says which bytes encoding/json writes in a string as they
// are: printable ASCII but the quote, the backslash and the three it
// escapes for HTML.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// CSRUse is the key use of a CA signing its certificate signing request.
func CSRUse(ca *CA, requestedBy, requestID string) *KeyUse {
	return newKeyUse(ca.ID, KeyUseRecord{
		Kind: KeyUseCSR, CertificateAuth: ca.ARN, Account: ca.AccountID,
		RequestedBy: requestedBy, RequestID: requestID, SignedSHA256: sha256Hex(ca.CSR),
	}, ca.CreatedAt, "")
}

// IssueUse is the key use of a CA signing certificate c.
func IssueUse(caARN string, c *Certificate) *KeyUse {
	h := sha256.Sum256(c.DER)
	return newKeyUse(c.CAID, issueRecord(caARN, c, h[:]), c.IssuedAt, c.Serial)
}

func issueRecord(caARN string, c *Certificate, signedSHA256 []byte) KeyUseRecord {
	return KeyUseRecord{
		Kind: KeyUseIssue, CertificateAuth: caARN, Account: c.AccountID,
		RequestedBy: c.RequestedBy, RequestID: c.RequestID,
		CertificateArn: c.ARN, Serial: c.Serial, Subject: c.Subject,
		NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339),
		TemplateArn: c.TemplateARN, SignedSHA256: hex.EncodeToString(signedSHA256),
	}
}

// IssueRecord makes again the record of IssueUse(caARN, c), from c
// without its DER but with the DER's SHA-256: a store keeps an issuance's
// record as the certificate's fields rather than twice, and the log's
// hashes prove the record made again is the one logged.
func IssueRecord(caARN string, c *Certificate, signedSHA256 []byte) []byte {
	return AppendIssueRecord(nil, caARN, c, signedSHA256)
}

// AppendIssueRecord appends IssueRecord(caARN, c, signedSHA256) to b.
func AppendIssueRecord(b []byte, caARN string, c *Certificate, signedSHA256 []byte) []byte {
	r := issueRecord(caARN, c, signedSHA256)
	r.At = c.IssuedAt.UTC().Format(time.RFC3339Nano)
	return appendRecord(b, &r)
}

// RevokeUse is the key use of a CA revoking its certificate c at at.
func RevokeUse(caARN string, c *Certificate, at time.Time, reason RevocationReason, requestedBy, requestID string) *KeyUse {
	return newKeyUse(c.CAID, KeyUseRecord{
		Kind: KeyUseRevoke, CertificateAuth: caARN, Account: c.AccountID,
		RequestedBy: requestedBy, RequestID: requestID,
		CertificateArn: c.ARN, Serial: c.Serial, RevocationReason: string(reason),
	}, at, c.Serial)
}

// CRLEntries says which certificates a CRL lists: those revoked in the
// first RevocationsBefore entries of its CA's log (the log's size when
// they were read) that expire at ExpiringFrom or later, Count of them,
// whose entries, DER as in the CRL, in the order of the revocations,
// have the SHA-256 SHA256. With it, a verifier holding the log tells a
// CRL that left out a logged revocation without the CRL itself. If
// RevocationsFrom is set, no certificate revoked from that entry on
// expires before ExpiringFrom: the CRL lists those whatever their end,
// those its CA's last CRL did not read (its RevocationsBefore).
type CRLEntries struct {
	RevocationsBefore int64
	RevocationsFrom   *int64
	ExpiringFrom      time.Time // to the second
	Count             int
	SHA256            [sha256.Size]byte
}

// CRLUse is the key use of a CA signing CRL number, listing entries,
// DER-encoded as der.
func CRLUse(ca *CA, number int64, thisUpdate, nextUpdate time.Time, entries *CRLEntries, der []byte) *KeyUse {
	return newKeyUse(ca.ID, KeyUseRecord{
		Kind: KeyUseCRL, CertificateAuth: ca.ARN, Account: ca.AccountID, CRLNumber: number,
		ThisUpdate: thisUpdate.UTC().Format(time.RFC3339), NextUpdate: nextUpdate.UTC().Format(time.RFC3339),
		Revoked: &entries.Count, RevocationsBefore: &entries.RevocationsBefore, RevocationsFrom: entries.RevocationsFrom,
		ExpiringFrom: entries.ExpiringFrom.UTC().Format(time.RFC3339), EntriesSHA256: hex.EncodeToString(entries.SHA256[:]),
		SignedSHA256: sha256Hex(der),
	}, thisUpdate, "")
}

// OCSPUse is the key use of a CA signing an OCSP response, DER-encoded as
// der, that gives the certificate of serial the status certStatus.
func OCSPUse(ca *CA, serial, certStatus string, at time.Time, der []byte) *KeyUse {
	return newKeyUse(ca.ID, KeyUseRecord{
		Kind: KeyUseOCSP, CertificateAuth: ca.ARN, Account: ca.AccountID, Serial: serial, CertStatus: certStatus,
		SignedSHA256: sha256Hex(der),
	}, at, serial)
}

// UpgradePrincipal is who requested the IMPORT records that the upgrade
// to a version logging imports wrote for the CAs that held a certificate
// already: their imports, made before, are in no log.
const UpgradePrincipal = "openpca:upgrade"

// ImportUse is the log entry of ca's certificate and chain, as it holds
// them, imported at at. Its chain must be as a server stores it
// (ChainSHA256).
func ImportUse(ca *CA, requestedBy, requestID string, at time.Time) (*KeyUse, error) {
	chain, err := ChainSHA256(ca.CertificateChain)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", ca.ARN, err)
	}
	return newKeyUse(ca.ID, importRecord(ca, chain, requestedBy, requestID), at, ""), nil
}

func importRecord(ca *CA, chainSHA256, requestedBy, requestID string) KeyUseRecord {
	return KeyUseRecord{
		Kind: KeyUseImport, CertificateAuth: ca.ARN, Account: ca.AccountID,
		RequestedBy: requestedBy, RequestID: requestID,
		NotBefore: ca.NotBefore.UTC().Format(time.RFC3339), NotAfter: ca.NotAfter.UTC().Format(time.RFC3339),
		CertificateSHA256: sha256Hex(ca.Certificate), ChainSHA256: chainSHA256,
	}
}

// ChainSHA256 returns the SHA-256, in hex, of the DER of the certificates
// of chain, PEM as a server stores a CA's chain, one after another; "" for
// no chain. A chain written otherwise (text around the blocks, other
// headers or line lengths), which clients would be handed as it is, is
// an error: the hash would not tell it from the chain a server stored.
func ChainSHA256(chain []byte) (string, error) {
	if len(chain) == 0 {
		return "", nil
	}
	var (
		ders  = sha256.New()
		again []byte
	)
	for rest := chain; len(rest) > 0; {
		b, next := pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
			return "", errors.New("its certificate chain is not PEM as a server stores it")
		}
		ders.Write(b.Bytes)
		again = append(again, pem.EncodeToMemory(b)...)
		rest = next
	}
	if !bytes.Equal(again, chain) {
		return "", errors.New("its certificate chain is not PEM as a server stores it")
	}
	return hex.EncodeToString(ders.Sum(nil)), nil
}

// CheckImported checks that ca holds the certificate and chain that its
// log's last IMPORT record, last (nil if the log has none), at entry,
// logged: a server changes them in the same transaction as it logs them.
// A log of size entries without an IMPORT record is right only for a CA
// without a certificate. The error is a *LogIntegrityError.
func CheckImported(ca *CA, last *KeyUseRecord, entry, size int64) error {
	problem := func(entry int64, format string, args ...any) error {
		return &LogIntegrityError{CAID: ca.ID, Entry: entry, Problem: fmt.Sprintf(format, args...)}
	}
	if last == nil {
		if len(ca.Certificate) > 0 {
			return problem(max(size-1, 0), "and those before it import no certificate, yet the CA holds one: its certificate was put in place of none without being logged (by hand, or by a server of a version before imports were logged, in the seconds before it stopped as this version's upgraded the database: import it again)")
		}
		return nil
	}
	chain, err := ChainSHA256(ca.CertificateChain)
	if err != nil {
		return problem(entry, "imported the CA's certificate, but %v", err)
	}
	want := importRecord(ca, chain, "", "")
	switch {
	case len(ca.Certificate) == 0:
		return problem(entry, "imported a certificate that the CA no longer holds")
	case want.CertificateSHA256 != last.CertificateSHA256 || want.ChainSHA256 != last.ChainSHA256:
		return problem(entry, "is the last import of the CA's certificate, but not of the certificate and chain it holds: they were changed without being logged")
	case want.NotBefore != last.NotBefore || want.NotAfter != last.NotAfter:
		return problem(entry, "imported a certificate valid from %s to %s, but the CA's row says from %s to %s", last.NotBefore, last.NotAfter, want.NotBefore, want.NotAfter)
	}
	// The serial the row shows (DescribeCertificateAuthority's, in
	// decimal) is the certificate's. One that crypto/x509 cannot read (of
	// an SM2 key) is held to its certificate by the hash alone.
	if c, err := x509.ParseCertificate(ca.Certificate); err == nil && c.SerialNumber.String() != ca.Serial {
		return problem(entry, "imported a certificate of serial %s, but the CA's row says %s", c.SerialNumber, ca.Serial)
	}
	return nil
}

// LastImport is a CA as stored, with its log's size and the last
// IMPORT entry of its log, read together (see CheckImported).
type LastImport struct {
	CA      *CA
	LogSize int64
	// Entry is the last IMPORT entry's number, -1 if the log has none,
	// and Record its record as stored.
	Entry  int64
	Record []byte
}
