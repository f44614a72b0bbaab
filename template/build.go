package template

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// Request is what an issuance asks of a template.
type Request struct {
	CSR *x509.CertificateRequest
	// API is the request's ApiPassthrough; it counts only for templates
	// that take it.
	API                *openpca.ApiPassthrough
	Serial             *big.Int
	NotBefore          time.Time
	NotAfter           time.Time
	SignatureAlgorithm x509.SignatureAlgorithm
}

// Build returns the certificate to sign for r. Each extension comes from
// the first of these that defines it: the template, the API passthrough
// (for API templates), the CSR (for CSR templates). Subject and subject
// alternative names come from the API passthrough when it gives them (for
// API templates) and from the CSR otherwise, whatever the template.
func (t *Template) Build(r Request) (*x509.Certificate, error) {
	subject := r.CSR.RawSubject
	if t.UsesAPI() && r.API != nil && r.API.Subject != nil {
		s, err := pki.MarshalSubject(r.API.Subject)
		if err != nil {
			return nil, fmt.Errorf("ApiPassthrough.Subject: %w", err)
		}
		subject = s
	} else if err := pki.CheckSubject(subject); err != nil {
		return nil, csrError{err}
	}
	emptySubject := bytes.Equal(subject, []byte{0x30, 0})

	var exts extensions
	for _, e := range r.CSR.Extensions {
		if e.Id.Equal(pki.OIDSubjectAltName) || t.UsesCSR() {
			exts.set(e)
		}
	}
	if t.UsesAPI() && r.API != nil && r.API.Extensions != nil {
		if err := exts.setAPI(r.API.Extensions); err != nil {
			return nil, fmt.Errorf("ApiPassthrough.Extensions: %w", err)
		}
	}
	if err := t.setOwn(&exts, r.CSR.PublicKey); err != nil {
		return nil, err
	}
	// What AWS reads of every certificate before it issues one
	// ("Certificate request validation"), whichever source gives it: a
	// key usage and an extended key usage that parse, and nothing after
	// them. (The alternative names are checked where they come in.)
	if ku := exts.get(pki.OIDKeyUsage); ku != nil {
		if err := pki.CheckKeyUsageValue(ku.Value); err != nil {
			return nil, malformedError{err}
		}
	}
	if eku := exts.get(pki.OIDExtKeyUsage); eku != nil {
		if err := pki.CheckExtKeyUsage(eku.Value); err != nil {
			return nil, malformedError{err}
		}
	}
	// Only a blank template's usages are those passed through.
	if ku := exts.get(pki.OIDKeyUsage); ku != nil {
		if err := pki.CheckKeyUsage(pki.KeyAlgorithmOf(r.CSR.PublicKey), *ku); err != nil {
			if t.fromAPI(r, pki.OIDKeyUsage) || t.UsesAPI() && r.API != nil && r.API.Extensions != nil && r.API.Extensions.KeyUsage != nil {
				return nil, fmt.Errorf("ApiPassthrough.Extensions: %w", err)
			}
			return nil, csrError{err}
		}
	}
	// RFC 5280 (4.2.1.10): name constraints are a CA certificate's.
	if !t.CA && exts.get(pki.OIDNameConstraints) != nil {
		err := errors.New("name constraints (2.5.29.30) go in CA certificates only, and this template makes an end-entity certificate")
		if !t.fromAPI(r, pki.OIDNameConstraints) {
			return nil, csrError{err} // the CSR's, passed through
		}
		return nil, err
	}
	if san := exts.get(pki.OIDSubjectAltName); san != nil {
		if bytes.Equal(san.Value, []byte{0x30, 0}) {
			if t.fromAPI(r, pki.OIDSubjectAltName) {
				return nil, fmt.Errorf("ApiPassthrough.Extensions: %w", errNoAltName)
			}
			return nil, errNoAltName
		}
		san.Critical = emptySubject // RFC 5280, 4.2.1.6
	} else if emptySubject {
		return nil, errNoName
	}

	ski, err := pki.SubjectKeyID(r.CSR.PublicKey)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:       r.Serial,
		RawSubject:         subject,
		NotBefore:          r.NotBefore,
		NotAfter:           r.NotAfter,
		SignatureAlgorithm: r.SignatureAlgorithm,
		SubjectKeyId:       ski,
		ExtraExtensions:    exts.list,
	}, nil
}

// fromAPI reports whether the request's ApiPassthrough gives the extension
// oid as a custom extension that the template takes: what is wrong with
// it is the API's input, not the CSR's.
func (t *Template) fromAPI(r Request, oid asn1.ObjectIdentifier) bool {
	return t.UsesAPI() && r.API != nil && r.API.Extensions != nil && slices.ContainsFunc(r.API.Extensions.CustomExtensions,
		func(c openpca.CustomExtension) bool { return c.ObjectIdentifier == oid.String() })
}

// errNoName refuses a certificate that would name nobody; errNoAltName
// one whose subject alternative name extension names nobody, which RFC
// 5280 (4.2.1.6) forbids.
var (
	errNoName    = fmt.Errorf("the certificate would have neither a subject nor a subject alternative name")
	errNoAltName = fmt.Errorf("the certificate's subject alternative name extension would name nobody")
)

// csrError refuses what a CSR asks for, which AWS answers as a malformed
// CSR.
type csrError struct{ error }

func (e csrError) Error() string { return e.error.Error() }

// malformedError refuses a certificate that would carry an extension
// AWS Private CA cannot read ("Certificate request validation"): it
// answers a MalformedCSRException whether the CSR or the API passthrough
// gives the value.
type malformedError struct{ error }

func (e malformedError) Error() string { return e.error.Error() }
func (e malformedError) Unwrap() error { return e.error }

// ErrMalformed reports whether err refuses an extension that AWS cannot
// read, from the CSR or the API passthrough.
func ErrMalformed(err error) bool {
	var m malformedError
	return errors.As(err, &m)
}

// ErrNoName reports whether err is the refusal of a nameless certificate,
// or of an empty subject alternative name, which AWS answers as a
// malformed CSR.
func ErrNoName(err error) bool { return err == errNoName || err == errNoAltName }

// ErrCSR reports whether err refuses something else the CSR asks for: a
// subject with a control character, name constraints passed through to an
// end-entity certificate.
func ErrCSR(err error) bool {
	_, isCSR := err.(csrError)
	return isCSR
}

// setOwn sets the extensions the template itself defines for a
// certificate of the key pub. An EC or ML-DSA key cannot encipher: the
// key encipherment that AWS's templates name (for RSA keys) is left out
// of their certificates, as RFC 8813 and RFC 9881 require.
func (t *Template) setOwn(exts *extensions, pub any) error {
	exts.set(pki.BasicConstraintsExtension(t.CA, t.PathLen, t.BCCritical))
	exts.remove(pki.OIDSubjectKeyIdentifier) // derived from the CSR key
	// The issuing CA's SKI, set when signing; a root's own certificate
	// has none unless the API passes one through, as AWS's
	// RootCACertificate_APIPassthrough/V1 defines it ("[Passthrough from
	// API]"). Root templates copy nothing else from the CSR.
	if !t.Root {
		exts.remove(pki.OIDAuthorityKeyIdentifier)
	}
	for _, id := range pki.SupersededExtensions {
		exts.remove(id) // passed through, they could say otherwise
	}
	if t.Blank {
		return nil
	}
	usage := t.KeyUsage
	if _, isRSA := pub.(*rsa.PublicKey); !isRSA {
		usage &^= x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	}
	ku, err := pki.KeyUsageBitsExtension(usage)
	if err != nil {
		return err
	}
	exts.set(ku)
	if t.ExtKeyUsage == nil {
		exts.remove(pki.OIDExtKeyUsage) // CA certificates must not serve TLS
	} else {
		exts.set(pki.ExtKeyUsageExtension(t.ExtKeyUsage, t.EKUCritical))
	}
	return nil
}

// extensions is an ordered set of extensions, one per OID; setting an OID
// again replaces it in place.
type extensions struct{ list []pkix.Extension }

func (x *extensions) index(id asn1.ObjectIdentifier) int {
	for i, e := range x.list {
		if e.Id.Equal(id) {
			return i
		}
	}
	return -1
}

func (x *extensions) get(id asn1.ObjectIdentifier) *pkix.Extension {
	if i := x.index(id); i >= 0 {
		return &x.list[i]
	}
	return nil
}

func (x *extensions) set(e pkix.Extension) {
	if i := x.index(e.Id); i >= 0 {
		x.list[i] = e
		return
	}
	x.list = append(x.list, e)
}

func (x *extensions) remove(id asn1.ObjectIdentifier) {
	if i := x.index(id); i >= 0 {
		x.list = append(x.list[:i], x.list[i+1:]...)
	}
}

// setAPI sets the extensions an ApiPassthrough gives. A CustomExtension
// is one DER value, given once, for an extension the typed members do not
// give (RFC 5280, 4.2: an extension appears once).
func (x *extensions) setAPI(api *openpca.Extensions) error {
	typed := map[string]string{
		pki.OIDKeyUsage.String():            member(api.KeyUsage != nil, "KeyUsage"),
		pki.OIDExtKeyUsage.String():         member(len(api.ExtendedKeyUsage) > 0, "ExtendedKeyUsage"),
		pki.OIDSubjectAltName.String():      member(len(api.SubjectAlternativeNames) > 0, "SubjectAlternativeNames"),
		pki.OIDCertificatePolicies.String(): member(len(api.CertificatePolicies) > 0, "CertificatePolicies"),
	}
	custom := map[string]bool{}
	for i, c := range api.CustomExtensions {
		oid, err := pki.ParseOID(c.ObjectIdentifier)
		if err != nil {
			return fmt.Errorf("CustomExtensions %d: %w", i+1, err)
		}
		switch id := oid.String(); {
		case custom[id]:
			return fmt.Errorf("CustomExtensions %d: extension %s is given twice", i+1, id)
		case typed[id] != "":
			return fmt.Errorf("CustomExtensions %d: extension %s is given by ApiPassthrough.Extensions.%s too", i+1, id, typed[id])
		}
		custom[oid.String()] = true
		v, err := base64.StdEncoding.DecodeString(c.Value)
		if err != nil {
			return fmt.Errorf("CustomExtensions %d: the value is not base64", i+1)
		}
		// A key usage, an extended key usage or alternative names that
		// cannot be read are what AWS answers as a malformed request.
		read := oid.Equal(pki.OIDKeyUsage) || oid.Equal(pki.OIDExtKeyUsage) || oid.Equal(pki.OIDSubjectAltName)
		var element cryptobyte.String
		var tag cbasn1.Tag
		if rest := cryptobyte.String(v); !rest.ReadAnyASN1Element(&element, &tag) || !rest.Empty() {
			err := fmt.Errorf("CustomExtensions %d: the value is not one DER-encoded ASN.1 value", i+1)
			if read {
				return malformedError{err}
			}
			return err
		}
		if oid.Equal(pki.OIDSubjectAltName) {
			if err := pki.CheckAltNames(v); err != nil {
				return malformedError{fmt.Errorf("CustomExtensions %d: %w", i+1, err)}
			}
		}
		x.set(pkix.Extension{Id: oid, Critical: c.Critical != nil && *c.Critical, Value: v})
	}
	if api.KeyUsage != nil {
		e, err := pki.KeyUsageExtension(api.KeyUsage)
		if err != nil {
			return err
		}
		x.set(e)
	}
	if len(api.ExtendedKeyUsage) > 0 {
		oids, err := pki.APIExtKeyUsages(api.ExtendedKeyUsage)
		if err != nil {
			return err
		}
		x.set(pki.ExtKeyUsageExtension(oids, false))
	}
	if len(api.SubjectAlternativeNames) > 0 {
		e, err := pki.SubjectAltNameExtension(api.SubjectAlternativeNames, false)
		if err != nil {
			return err
		}
		x.set(e)
	}
	if len(api.CertificatePolicies) > 0 {
		e, err := pki.CertificatePoliciesExtension(api.CertificatePolicies)
		if err != nil {
			return err
		}
		x.set(e)
	}
	return nil
}

// member is name if given, else "".
func member(given bool, name string) string {
	if given {
		return name
	}
	return ""
}
