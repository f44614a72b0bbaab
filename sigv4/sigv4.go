// Package sigv4 verifies AWS Signature Version 4 on requests to a server
// that speaks an AWS API: it rebuilds the canonical request, the string to
// sign and the signing key, and compares signatures in constant time.
package sigv4

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openpca/openpca"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxSkew is how far a request's time may be from the server's clock, as
// AWS allows: older requests, replays included, are refused.
const MaxSkew = 5 * time.Minute

const amzDateLayout = "20060102T150405Z"

// ErrUnknownKey is what a KeyStore returns for an access key it does not
// know, or that was revoked.
var ErrUnknownKey = errors.New("sigv4: unknown access key")

// KeyStore gives the secret of an access key.
type KeyStore interface {
	Secret(ctx context.Context, accessKeyID string) (string, error)
}

// Verifier checks the signatures of requests to one service in one region.
type Verifier struct {
	Service string
	Region  string
	Keys    KeyStore
	Now     func() time.Time

	mu   sync.Mutex
	keys map[signingKeyID][]byte // derived signing keys; see signingKey
}

// Authorization is a parsed Authorization header.
type Authorization struct {
	AccessKeyID   string
	Date          string // YYYYMMDD of the credential scope
	Region        string
	Service       string
	SignedHeaders []string // lowercase, sorted
	Signature     []byte
}

func incomplete(format string, args ...any) error {
	return openpca.Errorf(openpca.CodeIncompleteSignature, format, args...)
}

func invalid(format string, args ...any) error {
	return openpca.Errorf(openpca.CodeInvalidSignature, format, args...)
}

// ParseAuthorization parses an AWS4-HMAC-SHA256 Authorization header.
// Errors are IncompleteSignatureException.
func ParseAuthorization(h string) (*Authorization, error) {
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != Algorithm {
		return nil, incomplete("Authorization header requires the %s algorithm followed by Credential, SignedHeaders and Signature.", Algorithm)
	}
	var a Authorization
	var credential, signedHeaders, signature string
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[k] {
			return nil, incomplete("Authorization header has a malformed or repeated component %q.", truncate(part))
		}
		seen[k] = true
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			signature = v
		default:
			return nil, incomplete("Authorization header has an unknown component %q.", truncate(k))
		}
	}
	for name, v := range map[string]string{"Credential": credential, "SignedHeaders": signedHeaders, "Signature": signature} {
		if v == "" {
			return nil, incomplete("Authorization header requires the '%s' parameter.", name)
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return nil, incomplete("Credential must be <access key>/<date>/<region>/<service>/aws4_request.")
	}
	if _, err := time.Parse("20060102", scope[1]); err != nil {
		return nil, incomplete("Credential has a malformed date %q.", truncate(scope[1]))
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	a.SignedHeaders = strings.Split(signedHeaders, ";")
	if len(a.SignedHeaders) > MaxSignedHeaders {
		return nil, incomplete("SignedHeaders may name at most %d headers.", MaxSignedHeaders)
	}
	if !sort.StringsAreSorted(a.SignedHeaders) {
		return nil, incomplete("SignedHeaders must be sorted.")
	}
	for i, sh := range a.SignedHeaders {
		if sh == "" || sh != strings.ToLower(sh) || (i > 0 && sh == a.SignedHeaders[i-1]) {
			return nil, incomplete("SignedHeaders must be distinct lowercase header names separated by semicolons.")
		}
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != sha256.Size {
		return nil, incomplete("Signature must be 64 hexadecimal characters.")
	}
	a.Signature = sig
	return &a, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Signed is a request whose headers passed every check that needs no body:
// Begin returns it, and Verify finishes the check over the body. A server
// reads a request's body only after Begin, so that a request that cannot be
// genuine costs it no memory for its body.
type Signed struct {
	v       *Verifier
	r       *http.Request
	auth    *Authorization
	amzDate string
	secret  string
}

// Begin checks what the headers of r tell without its body: that it is
// signed with a well-formed Authorization header, by a known access key,
// within MaxSkew of now, for this service and region, over every header
// that must be signed. Its errors carry the AWS error code a client must
// see; none reveals a secret.
func (v *Verifier) Begin(r *http.Request) (*Signed, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, openpca.Errorf(openpca.CodeMissingAuthenticationToken, "Missing Authentication Token: requests must be signed with AWS Signature Version 4.")
	}
	a, err := ParseAuthorization(h)
	if err != nil {
		return nil, err
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		return nil, openpca.Errorf(openpca.CodeUnrecognizedClient, "The security token included in the request is invalid: this server issues no temporary credentials.")
	}
	if err := checkSignedHeaders(r, a.SignedHeaders); err != nil {
		return nil, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateLayout, amzDate)
	if err != nil {
		return nil, incomplete("X-Amz-Date must be a date and time in the form YYYYMMDDTHHMMSSZ.")
	}
	if amzDate[:8] != a.Date {
		return nil, invalid("Date in Credential scope does not match YYYYMMDD from the X-Amz-Date header.")
	}
	now := v.Now().UTC()
	if t.Before(now.Add(-MaxSkew)) {
		return nil, invalid("Signature expired: %s is now earlier than %s (%s - 5 min.)", amzDate, now.Add(-MaxSkew).Format(amzDateLayout), now.Format(amzDateLayout))
	}
	if t.After(now.Add(MaxSkew)) {
		return nil, invalid("Signature not yet current: %s is still later than %s (%s + 5 min.)", amzDate, now.Add(MaxSkew).Format(amzDateLayout), now.Format(amzDateLayout))
	}
	if a.Region != v.Region {
		return nil, invalid("Credential should be scoped to a valid region, not '%s'; this server's region is '%s'.", truncate(a.Region), v.Region)
	}
	if a.Service != v.Service {
		return nil, invalid("Credential should be scoped to correct service: '%s'.", v.Service)
	}
	secret, err := v.Keys.Secret(r.Context(), a.AccessKeyID)
	if errors.Is(err, ErrUnknownKey) {
		return nil, openpca.Errorf(openpca.CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if err != nil {
		return nil, err
	}
	return &Signed{v: v, r: r, auth: a, amzDate: amzDate, secret: secret}, nil
}

// Verify checks the signature over the request and its body, and returns
// the access key that signed it.
func (s *Signed) Verify(body []byte) (string, error) {
	payloadHash := sha256.Sum256(body)
	payload := hex.EncodeToString(payloadHash[:])
	if declared := s.r.Header.Get("X-Amz-Content-Sha256"); declared != "" && declared != payload {
		return "", invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	a := s.auth
	canonical, err := canonicalRequest(s.r, a.SignedHeaders, payload, trimSpaces)
	if err != nil {
		return "", err
	}
	if s.signs(canonical) {
		return a.AccessKeyID, nil
	}
	// SigV4's Trimall collapses runs of spaces, as the Go, Java and
	// JavaScript SDKs do; botocore (the AWS CLI, boto3) collapses every
	// kind of white space. A header value with a tab or a no-break space
	// inside tells the two apart, and either client signed it.
	if other, _ := canonicalRequest(s.r, a.SignedHeaders, payload, trimWhiteSpace); other != canonical && s.signs(other) {
		return a.AccessKeyID, nil
	}
	return "", invalid("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

// signs reports whether the request's signature is over canonical.
func (s *Signed) signs(canonical string) bool {
	a := s.auth
	scope := a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
	crHash := sha256.Sum256([]byte(canonical))
	stringToSign := Algorithm + "\n" + s.amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	return hmac.Equal(hmacSHA256(s.v.signingKey(a, s.secret), stringToSign), a.Signature)
}

// trimSpaces is SigV4's Trimall: a header value without white space at
// its ends, and each run of spaces in it one space.
func trimSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != ' ' || i == 0 || v[i-1] != ' ' {
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// trimWhiteSpace is botocore's Trimall: every run of white space one
// space.
func trimWhiteSpace(v string) string { return strings.Join(strings.Fields(v), " ") }

// MaxSignedHeaders bounds the headers a signature may cover. Clients sign
// a handful; the bound keeps what a request that is not yet known to be
// genuine costs small.
const MaxSignedHeaders = 64

// checkSignedHeaders refuses a request whose signature leaves out a header
// that must be signed: host and x-amz-date always, and content-type and
// every x-amz-* header whenever the request carries them, as AWS requires.
// An unsigned X-Amz-Target could otherwise be changed in flight, turning a
// signed Describe into a Delete.
func checkSignedHeaders(r *http.Request, signed []string) error {
	for _, required := range []string{"host", "x-amz-date"} {
		if !contains(signed, required) {
			return incomplete("'%s' must be a 'SignedHeader' in the AWS Authorization.", http.CanonicalHeaderKey(required))
		}
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if (lower == "content-type" || strings.HasPrefix(lower, "x-amz-")) && !contains(signed, lower) {
			return incomplete("'%s' must be a 'SignedHeader' in the AWS Authorization: every x-amz-* header, and Content-Type, that a request carries must be signed.", truncate(name))
		}
	}
	return nil
}

// canonicalRequest builds the canonical request of SigV4.
func canonicalRequest(r *http.Request, signed []string, payloadHash string, trim func(string) string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			values = r.Header.Values(name)
		}
		if len(values) == 0 {
			return "", invalid("The signed header '%s' is missing from the request.", truncate(name))
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values { // not in place: they are the request's
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trim(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// canonicalURI is the path as the request sent it, each segment
// URI-encoded once more: SigV4 encodes the path twice for every service
// but S3, and botocore and the Go SDK sign so (a space in an endpoint's
// path, sent as %20, is signed as %2520). Decoded first and encoded once,
// as it was, the path of every request that had a percent-escape in it
// (an endpoint under /open%20pca/, or with a name not in ASCII) was
// refused, signed by any AWS SDK.
func canonicalURI(u *url.URL) string {
	// The path as sent: net/http keeps it in RawPath whenever it is not
	// the default encoding of Path.
	p := u.RawPath
	if p == "" {
		p = u.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	segments := strings.Split(p, "/")
	for i, s := range segments {
		segments[i] = uriEncode(s)
	}
	return strings.Join(segments, "/")
}

// canonicalQuery sorts the encoded parameters by name, then by value, as
// SigV4 says and the SDKs sign them. Sorted as whole name=value strings,
// as they were, "from2=x" came before "from=1" ('2' is before '='), and
// a request with such parameters was refused, signed by any SDK.
func canonicalQuery(q url.Values) string {
	type param struct{ k, v string }
	var params []param
	for k, vs := range q {
		ek := uriEncode(k)
		for _, v := range vs {
			params = append(params, param{ek, uriEncode(v)})
		}
	}
	slices.SortFunc(params, func(a, b param) int {
		return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v))
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// uriEncode escapes every byte but the unreserved characters of RFC 3986.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

type signingKeyID struct {
	accessKeyID, date, region, service string
	secret                             [sha256.Size]byte // so a changed secret is a new key
}

// signingKey derives (or recalls) the key of a scope; deriving costs four
// HMACs, and a client signs many requests a day with one.
func (v *Verifier) signingKey(a *Authorization, secret string) []byte {
	id := signingKeyID{a.AccessKeyID, a.Date, a.Region, a.Service, sha256.Sum256([]byte(secret))}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[id]; ok {
		return k
	}
	k := hmacSHA256([]byte("AWS4"+secret), a.Date)
	k = hmacSHA256(k, a.Region)
	k = hmacSHA256(k, a.Service)
	k = hmacSHA256(k, "aws4_request")
	if v.keys == nil || len(v.keys) > 10000 {
		v.keys = make(map[signingKeyID][]byte)
	}
	v.keys[id] = k
	return k
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// contains reports whether s is in sorted, which SignedHeaders is: a
// request may carry thousands of headers, each looked up.
func contains(sorted []string, s string) bool {
	_, found := slices.BinarySearch(sorted, s)
	return found
}
