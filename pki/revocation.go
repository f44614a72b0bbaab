package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
)

// crlReasons maps the API's revocation reasons to RFC 5280's CRLReason
// codes.
var crlReasons = map[openpca.RevocationReason]int{
	openpca.RevocationReasonUnspecified:                    0,
	openpca.RevocationReasonKeyCompromise:                  1,
	openpca.RevocationReasonCertificateAuthorityCompromise: 2,
	openpca.RevocationReasonAffiliationChanged:             3,
	openpca.RevocationReasonSuperseded:                     4,
	openpca.RevocationReasonCessationOfOperation:           5,
	openpca.RevocationReasonPrivilegeWithdrawn:             9,
	openpca.RevocationReasonAACompromise:                   10,
}

// CRLReason is RFC 5280's CRLReason code of a revocation reason, as CRLs
// and OCSP answers carry it.
func CRLReason(r openpca.RevocationReason) int { return crlReasons[r] }

// RevokedCertificates is the revokedCertificates field of a CRL, encoded
// as its entries are added. x509.CreateRevocationList holds about 1.1 KB
// per entry while it encodes them (and allocates 1.8 KB): a CA with a
// million revocations would need GBs for each CRL. This holds each entry's
// DER, about 50 bytes.
type RevokedCertificates struct {
	der []byte // headerRoom bytes for the SEQUENCE's header, then the entries
	n   int
}

// headerRoom is room for a SEQUENCE's tag and a length of up to four
// bytes, the most a CRL can need.
const headerRoom = 6

var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}

// Add appends the entry of a revoked certificate (AppendRevokedEntry).
func (r *RevokedCertificates) Add(serial *big.Int, revokedAt time.Time, reason int) error {
	if r.der == nil {
		r.der = make([]byte, headerRoom, 4096)
	}
	der, err := AppendRevokedEntry(r.der, serial, revokedAt, reason)
	if err != nil {
		return err
	}
	r.der = der
	r.n++
	return nil
}

// AppendRevokedEntry appends to b the CRL entry of a revoked certificate,
// encoded as x509.CreateRevocationList encodes it: the time in UTC to the
// second, as a UTCTime before 2050, and the reason as a reasonCode
// extension unless it is 0, unspecified, which RFC 5280 (5.3.1) leaves
// out.
func AppendRevokedEntry(b []byte, serial *big.Int, revokedAt time.Time, reason int) ([]byte, error) {
	if serial == nil || serial.Sign() < 0 {
		return nil, errors.New("pki: a revoked certificate without a serial number")
	}
	revokedAt = revokedAt.UTC()
	builder := cryptobyte.NewBuilder(b)
	builder.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(serial)
		if y := revokedAt.Year(); 1950 <= y && y < 2050 {
			b.AddASN1UTCTime(revokedAt)
		} else {
			b.AddASN1GeneralizedTime(revokedAt)
		}
		if reason == 0 {
			return
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // crlEntryExtensions
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidReasonCode)
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1Enum(int64(reason)) })
			})
		})
	})
	der, err := builder.Bytes()
	if err != nil {
		return nil, fmt.Errorf("pki: encoding the CRL entry of serial %x: %w", serial, err)
	}
	return der, nil
}

// Len is how many entries were added.
func (r *RevokedCertificates) Len() int { return r.n }

// SHA256 is the SHA-256 of the entries' DER, one after the other, as the
// CRL carries them inside its revokedCertificates SEQUENCE: what a CRL's
// record in the log holds of them (openpca.CRLEntries).
func (r *RevokedCertificates) SHA256() [sha256.Size]byte {
	if r.n == 0 {
		return sha256.Sum256(nil)
	}
	return sha256.Sum256(r.der[headerRoom:])
}

// element is the entries as one SEQUENCE, or nil if there are none. Its
// header goes in the room kept before them, so that the entries are not
// copied once more.
func (r *RevokedCertificates) element() ([]byte, error) {
	if r.n == 0 {
		return nil, nil
	}
	n := len(r.der) - headerRoom
	header := []byte{byte(cbasn1.SEQUENCE)}
	switch {
	case n < 0x80:
		header = append(header, byte(n))
	case uint64(n) <= math.MaxUint32:
		size := 1
		for n>>(8*size) > 0 {
			size++
		}
		header = append(header, 0x80|byte(size))
		for i := size - 1; i >= 0; i-- {
			header = append(header, byte(n>>(8*i)))
		}
	default:
		return nil, fmt.Errorf("pki: a CRL of %d entries is too large to encode", r.n)
	}
	start := headerRoom - len(header)
	copy(r.der[start:], header)
	return r.der[start:], nil
}

// CreateRevocationList signs a CRL of list's fields and the entries of
// revoked (list has none), with a foreign signer too. Go writes the CRL
// but its entries; they go in before it is signed. The signature is
// checked with the issuer's certificate before the CRL is returned, as
// x509.CreateCertificate checks a certificate's: a faulty signer (a token
// whose RSA signature is wrong gives its key away), or a key that is not
// the CA's, signs no CRL.
func CreateRevocationList(list *x509.RevocationList, revoked *RevokedCertificates, issuer *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	if len(list.RevokedCertificateEntries) > 0 || len(list.RevokedCertificates) > 0 {
		return nil, errors.New("pki: a CRL's entries go in its RevokedCertificates")
	}
	algID, err := signatureAlgorithmID(signer, list.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	// Go refuses an issuer without the key usage extension, which RFC
	// 5280 lets sign CRLs.
	if KeyUsageAllows(issuer, x509.KeyUsageCRLSign) && issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		withUsage := *issuer
		withUsage.KeyUsage |= x509.KeyUsageCRLSign
		issuer = &withUsage
	}
	// Go signs with a stand-in key, which costs a signature less than the
	// CA's key would (the signature Go checks, a token's signature the
	// audit log does not record).
	key, err := standIn()
	if err != nil {
		return nil, err
	}
	l := *list
	l.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateRevocationList(rand.Reader, &l, issuer, key)
	if err != nil {
		return nil, err
	}
	entries, err := revoked.element()
	if err != nil {
		return nil, err
	}
	// TBSCertList: version, signature, issuer, thisUpdate, nextUpdate,
	// revokedCertificates (if any), [0] crlExtensions.
	der, err = resign(der, signer, list.SignatureAlgorithm, algID, func(tbs [][]byte) ([][]byte, error) {
		if len(tbs) != 6 || tbs[0][0] != byte(cbasn1.INTEGER) || tbs[5][0] != byte(cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return nil, errors.New("pki: Go made an unexpected TBSCertList")
		}
		tbs[1] = algID
		if entries != nil {
			tbs = slices.Insert(tbs, 5, entries)
		}
		return tbs, nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkSigned(der, issuer, list.SignatureAlgorithm); err != nil {
		return nil, fmt.Errorf("pki: the CRL signed does not verify with the issuer's certificate: %w", err)
	}
	return der, nil
}

// checkSigned checks the signature of a signed object that issuer's key
// signed with sigAlg, or with its own algorithm if the key is foreign.
func checkSigned(der []byte, issuer *x509.Certificate, sigAlg x509.SignatureAlgorithm) error {
	pub, err := ParsePublicKey(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return err
	}
	return checkSignedBy(der, pub, sigAlg)
}

// checkSignedBy is checkSigned with the signer's public key.
func checkSignedBy(der []byte, pub crypto.PublicKey, sigAlg x509.SignatureAlgorithm) error {
	in := cryptobyte.String(der)
	var outer, tbs cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) {
		return errors.New("not a signed object")
	}
	algID, sig, err := SignatureParts(der)
	if err != nil {
		return err
	}
	if foreign(pub) {
		return checkForeignSignature(pub, algID, tbs, sig)
	}
	return (&x509.Certificate{PublicKey: pub}).CheckSignature(sigAlg, tbs, sig)
}

var oidCRLNumber = asn1.ObjectIdentifier{2, 5, 29, 20}

// CRLNumber returns the CRL number of a CRL that issuer signed with
// sigAlg (its own algorithm if its key is foreign), having checked that
// the CRL names issuer and that its signature verifies. Unlike
// x509.ParseRevocationList it decodes none of the CRL's entries: a CRL of
// a million entries, 34 MB, took 1 GB to parse, and a CRL to be checked
// may come from anyone who can write to its bucket.
func CRLNumber(der []byte, issuer *x509.Certificate, sigAlg x509.SignatureAlgorithm) (*big.Int, error) {
	// TBSCertList: version (OPTIONAL), signature, issuer, thisUpdate,
	// nextUpdate (OPTIONAL), revokedCertificates (OPTIONAL),
	// [0] crlExtensions (OPTIONAL).
	in := cryptobyte.String(der)
	var outer, tbs, outerAlg, innerAlg, name cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) || !outer.ReadASN1BitString(&sig) || !outer.Empty() ||
		!tbs.SkipOptionalASN1(cbasn1.INTEGER) || !tbs.ReadASN1Element(&innerAlg, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&name, cbasn1.SEQUENCE) {
		return nil, errors.New("pki: not a CRL")
	}
	// The signature is checked with the algorithm the CA signs with, not
	// with the one the CRL names; relying parties refuse a CRL whose
	// signed algorithm is not the one it names outside.
	if !slices.Equal(outerAlg, innerAlg) {
		return nil, errors.New("pki: the CRL's signature algorithm is not the one it signed")
	}
	if !slices.Equal(name, issuer.RawSubject) {
		return nil, errors.New("pki: the CRL names another issuer")
	}
	skipTime := func() bool {
		return tbs.PeekASN1Tag(cbasn1.UTCTime) && tbs.SkipASN1(cbasn1.UTCTime) || tbs.PeekASN1Tag(cbasn1.GeneralizedTime) && tbs.SkipASN1(cbasn1.GeneralizedTime)
	}
	if !skipTime() {
		return nil, errors.New("pki: not a CRL")
	}
	skipTime() // nextUpdate
	var tagged, exts cryptobyte.String
	var present bool
	if !tbs.SkipOptionalASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadOptionalASN1(&tagged, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) || !tbs.Empty() ||
		present && (!tagged.ReadASN1(&exts, cbasn1.SEQUENCE) || !tagged.Empty()) {
		return nil, errors.New("pki: not a CRL")
	}
	var number *big.Int
	for !exts.Empty() {
		var ext, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) || !ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			return nil, errors.New("pki: the CRL's extensions do not parse")
		}
		if oid.Equal(oidCRLNumber) {
			number = new(big.Int)
			if !value.ReadASN1Integer(number) || !value.Empty() {
				return nil, errors.New("pki: the CRL's number does not parse")
			}
		}
	}
	if number == nil {
		return nil, errors.New("pki: the CRL has no number")
	}
	if err := checkSigned(der, issuer, sigAlg); err != nil {
		return nil, fmt.Errorf("pki: the CRL's signature does not verify with the issuer's certificate: %w", err)
	}
	return number, nil
}
