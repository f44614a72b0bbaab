package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/net/idna"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// KeyStore is a store CA keys can be kept in, with the key storage
// security standard the operator declares it meets ("" for none: the
// software store meets none).
type KeyStore struct {
	openpca.KeyStore
	Standard openpca.KeyStorageSecurityStandard
}

// meets reports whether a store declared to meet have meets want: FIPS
// 140-2 level 3 meets level 2, and each standard meets itself.
func meets(have, want openpca.KeyStorageSecurityStandard) bool {
	return have == want || have == openpca.KeyStorageSecurityStandardFips1402Level3OrHigher && want == openpca.KeyStorageSecurityStandardFips1402Level2OrHigher
}

// Keys opens CA keys from the stores that keep them and keeps the most
// recently used open, with their CA certificates parsed: opening a key
// costs more than a signature. The service and the CRL publisher share
// one.
type Keys struct {
	stores  []KeyStore
	logger  *slog.Logger
	signers *lru.Cache[string, crypto.Signer] // by CA id
	issuers *lru.Cache[string, *issuer]       // by CA id
	// calls are the slots of the calls into each token or KMS store in
	// flight (inTime), by the store's name.
	calls map[string]chan struct{}
	// unavailable is told the store of each CA key that could not be
	// opened, or sign (NewKeys).
	unavailable func(store string)
}

// issuer is a CA's certificate and the chain above it, parsed.
type issuer struct {
	cert     *x509.Certificate
	chain    []*x509.Certificate // the certificate's issuer first, the root last
	rawChain []byte
	// verifyPath is the certificate and chain as Go's verifier is to
	// take them (see readPath).
	verifyPath []*x509.Certificate
	// constrained is set when a certificate of the path has name
	// constraints, which Go's verifier checks.
	constrained bool
	// standIns, when the path or what the CA signs has an ML-DSA or SM2
	// signature, which Go's verifier cannot check, stand in for the path,
	// and for what the CA signs, in the name checks.
	standIns *standIns
	// dirs are the directory-name constraints of the path, which Go's
	// verifier does not check and checkNames does, whatever the
	// signatures.
	dirs []*pki.DirectoryNameConstraints
}

// KeyCacheSize is how many CA keys a server keeps open at most.
const KeyCacheSize = 1024

// NewKeys returns Keys over stores, the first of which keeps the keys of
// new CAs by default; logger says which store signed wrongly
// (wrongSignature). unavailable, if set, is told the store of each CA key
// that could not be opened, or, kept open, sign, which the request gets
// as a 503 (a store away or too slow, a key sealed with a master key this
// server lacks, another key under the CA's handle): the operator's
// alarm, since clients retry elsewhere and the server logs each at WARN
// alone.
func NewKeys(stores []KeyStore, logger *slog.Logger, unavailable func(store string)) *Keys {
	signers, _ := lru.New[string, crypto.Signer](KeyCacheSize)
	issuers, _ := lru.New[string, *issuer](KeyCacheSize)
	calls := map[string]chan struct{}{}
	for _, ks := range stores {
		if ks.Hardware() {
			calls[ks.Name()] = make(chan struct{}, StoreCalls)
		}
	}
	if unavailable == nil {
		unavailable = func(string) {}
	}
	return &Keys{stores: stores, logger: logger, signers: signers, issuers: issuers, calls: calls, unavailable: unavailable}
}

// inStore makes call, into ks for ca, in time (inTime) if ks is a token
// or KMS.
func inStore[T any](ctx context.Context, k *Keys, ks KeyStore, ca *openpca.CA, call func() (T, error)) (T, error) {
	if calls, ok := k.calls[ks.Name()]; ok {
		return inTime(ctx, calls, ks.Name(), ca.ARN, call)
	}
	return call()
}

// StoreCalls bounds the calls into one token or KMS store in flight at
// once, those a request stopped waiting for (inTime) included.
const StoreCalls = 64

// keyDestroyWait bounds the destruction of a key made for a CA that a
// request failed to create: past it, the key is left to its record, for
// a purge.
const keyDestroyWait = 30 * time.Second

// inTime makes call, a call into the token or KMS store whose slots are
// calls, and waits for it no longer than ctx lasts: a store that hangs (a
// network HSM that stopped answering mid-call) leaves the request a
// ServiceUnavailableException at its deadline, not a wait past it, and
// no signing after it. The call itself cannot be stopped: it goes on, in
// one of the store's slots until it returns, so that calls given up on
// pile up no further than StoreCalls; a call that finds no slot free
// waits for one, within ctx.
func inTime[T any](ctx context.Context, calls chan struct{}, store, ca string, call func() (T, error)) (T, error) {
	var zero T
	late := func() (T, error) {
		return zero, openpca.Errorf(openpca.CodeServiceUnavailable, "The key store %s did not answer for %s in time (%v); retry later.", store, ca, context.Cause(ctx))
	}
	// Both ready, select would draw one: a call past the deadline is
	// not begun.
	if ctx.Err() != nil {
		return late()
	}
	select {
	case calls <- struct{}{}:
	case <-ctx.Done():
		return late()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-calls }()
		// Out of the request's goroutine, a panic would end the process:
		// it is the call's error instead.
		defer func() {
			if p := recover(); p != nil {
				done <- result{zero, fmt.Errorf("the key store %s failed: %v", store, p)}
			}
		}()
		v, err := call()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return late()
	}
}

// Signer returns a signer of ca's key, from the store that keeps it.
//
// A signer of a key in a token or KMS signs within ctx (inTime): it is of
// one request, or one round of work, and not to be kept.
func (k *Keys) Signer(ctx context.Context, ca *openpca.CA) (crypto.Signer, error) {
	// Each time, the key open or not: a row changed under a server that
	// holds the key open is the row it signs for.
	if err := ownRow(ca); err != nil {
		return nil, err
	}
	if key, ok := k.signers.Get(ca.ID); ok {
		return bind(ctx, key), nil
	}
	key, err := k.open(ctx, ca)
	countUnavailable(ctx, err, ca.KeyStore, k.unavailable)
	return key, err
}

// countUnavailable tells unavailable of store if err, of a call made
// within ctx with a key of the store, is a 503: a store that hangs past
// the call's deadline, or a round of work's lease, counts; a request whose
// client gave up does not.
func countUnavailable(ctx context.Context, err error, store string, unavailable func(string)) {
	if openpca.ErrorCode(err) == openpca.CodeServiceUnavailable && !errors.Is(context.Cause(ctx), context.Canceled) {
		unavailable(store)
	}
}

// ownRow refuses a CA whose ARN is not the one of its account and id.
// Each store binds a key to its CA (the sealed key's associated data is
// its ARN, a token key's id is its id, a KMS key's tag its ARN), and the
// API finds a CA by its account and id: a row whose ARN is not of both (a
// CA moved to another account by hand) would sign with a key outside
// that key's log.
func ownRow(ca *openpca.CA) error {
	if p, err := openpca.ParseCAARN(ca.ARN); err != nil || p.AccountID != ca.AccountID || p.CAID != ca.ID {
		return openpca.Errorf(openpca.CodeServiceUnavailable, "The CA %s is stored as the CA %s of account %s: its row was changed outside the server, and it does not sign.", ca.ARN, ca.ID, ca.AccountID)
	}
	return nil
}

// open opens ca's key from its store, for Signer.
func (k *Keys) open(ctx context.Context, ca *openpca.CA) (crypto.Signer, error) {
	ks, err := k.store(ca)
	if err != nil {
		return nil, err
	}
	key, err := inStore(ctx, k, ks, ca, func() (crypto.Signer, error) { return ks.Signer(ctx, ca) })
	if err != nil {
		return nil, err
	}
	// A key store finds a CA's key by a handle: what it finds under it
	// must be the key the CA was made with, not one put in its place.
	if id, err := pki.SubjectKeyID(key.Public()); err != nil || ca.KeyID != "" && hex.EncodeToString(id) != ca.KeyID {
		return nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The key store %s holds another key than the one %s was made with under its handle; the CA cannot sign until its own key is back.", ca.KeyStore, ca.ARN)
	}
	key = k.fromStore(ks, ca, key)
	k.signers.Add(ca.ID, key)
	return bind(ctx, key), nil
}

// fromStore returns key, a signer of ca's key from ks, as Keys keeps it:
// a key in a token or KMS, whose failures to sign are the store's
// (keyStoreError), never the request's. A key in software is key itself.
func (k *Keys) fromStore(ks KeyStore, ca *openpca.CA, key crypto.Signer) crypto.Signer {
	if !ks.Hardware() {
		return key
	}
	return &storeSigner{Signer: key, logger: k.logger, ca: ca.ARN, store: ks.Name(), handle: string(ca.KeyHandle), calls: k.calls[ks.Name()], unavailable: k.unavailable}
}

// bind returns key, as Keys keeps it, to sign within ctx: a key in a
// token or KMS signs in time (inTime), for one request.
func bind(ctx context.Context, key crypto.Signer) crypto.Signer {
	if c, ok := key.(*storeSigner); ok {
		return &boundSigner{storeSigner: c, ctx: ctx}
	}
	return key
}

// storeSigner signs with a key of a token or KMS (Keys.fromStore).
type storeSigner struct {
	crypto.Signer
	logger            *slog.Logger
	ca, store, handle string
	calls             chan struct{} // the store's (Keys.calls)
	// unavailable is Keys.unavailable: a key kept open fails once its
	// store goes away, which is when the operator's alarm matters most.
	unavailable func(store string)
}

func (c *storeSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := c.Signer.Sign(rand, digest, opts)
	if err != nil {
		return nil, &keyStoreError{err}
	}
	return sig, nil
}

// boundSigner signs with a key of a token or KMS within ctx, and keeps the
// last signature it returned, for wrongSignature.
type boundSigner struct {
	*storeSigner
	ctx          context.Context
	digest, last []byte
	opts         crypto.SignerOpts
}

func (b *boundSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := inTime(b.ctx, b.calls, b.store, b.ca, func() ([]byte, error) { return b.storeSigner.Sign(rand, digest, opts) })
	if err == nil {
		b.digest, b.last, b.opts = bytes.Clone(digest), sig, opts
	}
	countUnavailable(b.ctx, err, b.store, b.unavailable)
	return sig, err
}

// wrongSignature returns err, of signing with signer (of Keys.Signer or
// bind), or, if the last signature signer returned does not verify with
// its public key, the error of a key store that signed wrongly, logged: a
// faulty or tampered token or KMS. x509 and pki check every signature
// they make, and refuse a wrong one with an error of their own, taken for
// the request's; the check is made again only once signing failed, since
// one of each signature doubled the cost of a signature in a fast token.
func wrongSignature(signer crypto.Signer, err error) error {
	b, ok := signer.(*boundSigner)
	if err == nil || !ok || b.last == nil {
		return err
	}
	verr := pki.VerifyDigest(b.Public(), b.digest, b.last, b.opts)
	if verr == nil {
		return err
	}
	b.logger.Error("a key store returned a signature that the CA's public key does not verify: the store is faulty or tampered with, and the signature is not used",
		"ca", b.ca, "key_store", b.store, "key_handle", b.handle, "error", verr)
	return &openpca.Error{Code: openpca.CodeServiceUnavailable, Cause: fmt.Errorf("the key store returned a signature the public key does not verify: %w", verr),
		Message: fmt.Sprintf("The key store %s returned a wrong signature for %s, which was not used; retry later.", b.store, b.ca)}
}

// SigningError is wrongSignature, for those that sign with Keys' signers
// outside this package: the CRL publisher.
func (*Keys) SigningError(signer crypto.Signer, err error) error {
	return wrongSignature(signer, err)
}

// keyStoreError is a key store's failure to sign: passed on as it is (an
// *openpca.Error keeps its code; any other error is an internal failure,
// logged as such), never as the fault of the request being signed.
type keyStoreError struct{ err error }

func (e *keyStoreError) Error() string { return e.err.Error() }
func (e *keyStoreError) Unwrap() error { return e.err }

// signingFailed reports whether err, of signing something, is the
// signer's to answer for: a key store's, or an *openpca.Error.
func signingFailed(err error) bool {
	_, ok := errors.AsType[*keyStoreError](err)
	_, own := errors.AsType[*openpca.Error](err)
	return ok || own
}

// Certificate returns the parsed certificate of ca.
func (k *Keys) Certificate(ca *openpca.CA) (*x509.Certificate, error) {
	is, err := k.issuer(ca)
	if err != nil {
		return nil, err
	}
	return is.cert, nil
}

// issuer returns ca's certificate and chain, parsed.
func (k *Keys) issuer(ca *openpca.CA) (*issuer, error) {
	if is, ok := k.issuers.Get(ca.ID); ok && bytes.Equal(is.cert.Raw, ca.Certificate) && bytes.Equal(is.rawChain, ca.CertificateChain) {
		return is, nil
	}
	c, err := pki.ParseCertificate(ca.Certificate)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate of %s: %w", ca.ARN, err)
	}
	if c.SubjectKeyId, err = keyIdentifier(c); err != nil {
		return nil, fmt.Errorf("the key identifier of the certificate of %s: %w", ca.ARN, err)
	}
	chain, err := parseChain(ca.CertificateChain)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate chain of %s: %w", ca.ARN, err)
	}
	is := &issuer{cert: c, chain: chain, rawChain: ca.CertificateChain}
	path := append([]*x509.Certificate{c}, chain...)
	var dirs []*pki.DirectoryNameConstraints
	if is.verifyPath, dirs, err = readPath(path); err != nil {
		return nil, fmt.Errorf("the certificate of %s or its chain: %w", ca.ARN, err)
	}
	is.dirs = slices.DeleteFunc(dirs, func(dc *pki.DirectoryNameConstraints) bool { return dc == nil })
	is.constrained = slices.ContainsFunc(path, hasNameConstraints)
	foreign := ca.Config.KeyAlgorithm == openpca.KeyAlgorithmSm2 || pki.IsMLDSA(ca.Config.KeyAlgorithm) || slices.ContainsFunc(path, pki.ForeignSignature)
	if is.constrained && foreign {
		if is.standIns, err = newStandIns(is.verifyPath); err != nil {
			return nil, fmt.Errorf("the certificate of %s or its chain: %w", ca.ARN, err)
		}
		is.verifyPath = is.standIns.path
	}
	k.issuers.Add(ca.ID, is)
	return is, nil
}

// hasNameConstraints reports whether c constrains the names below it.
func hasNameConstraints(c *x509.Certificate) bool {
	return len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+
		len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0
}

// readPath reads the directory-name constraints of a path (a CA
// certificate, then the chain above it), one for each certificate that
// has them and nil for others, and returns the path as Go's verifier is
// to take it: certificates whose name constraints it would leave
// unhandled only for their directory names count them as handled, since
// they are checked beside it.
func readPath(path []*x509.Certificate) (verify []*x509.Certificate, dirs []*pki.DirectoryNameConstraints, err error) {
	verify = make([]*x509.Certificate, len(path))
	dirs = make([]*pki.DirectoryNameConstraints, len(path))
	for i, c := range path {
		if dirs[i], verify[i], err = pki.ReadDirectoryNameConstraints(c); err != nil {
			return nil, nil, err
		}
	}
	return verify, dirs, nil
}

// constrains reports whether checkNames has anything to check.
func (is *issuer) constrains() bool { return is.constrained || len(is.dirs) > 0 }

// checkNames verifies a certificate the CA signed with its certificate
// and chain, as a relying party would, for the name constraints of the
// path: Go's verifier checks the names of the subject alternative name
// extension (DNS names, email addresses, IP addresses, URIs), a host name
// in the common name, and a DNS name with a "*" in its first label, are
// checked as OpenSSL matches them (checkCommonName, checkAltNames), and
// directory names (the subject's and the subject alternative names') as
// RFC 5280 says.
func (is *issuer) checkNames(cert *x509.Certificate, now time.Time) error {
	budget := pki.MaxNameComparisons
	for _, dc := range is.dirs {
		if err := dc.Check(cert, &budget); err != nil {
			return err
		}
	}
	if !is.constrained {
		return nil
	}
	path := is.verifyPath
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(path[len(path)-1])
	for _, c := range path[:len(path)-1] {
		intermediates.AddCert(c)
	}
	leaf := *cert
	leaf.UnhandledCriticalExtensions = nil // what a passthrough gives; not the question here
	if is.standIns != nil {
		copied, err := is.standIns.leaf(cert)
		if err != nil {
			return err
		}
		leaf = *copied
	}
	leaf.IPAddresses = withUnmapped(leaf.IPAddresses)
	at := now
	if leaf.NotBefore.After(at) {
		at = leaf.NotBefore
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	// OpenSSL matches a host name with an end-entity certificate's common
	// name alone, and so checks no CA certificate's.
	if !cert.IsCA {
		if err := checkCommonName(cert, path, &budget); err != nil {
			return err
		}
	}
	if err := checkSubjectEmails(cert, path, &budget); err != nil {
		return err
	}
	return checkAltNames(cert, path, &budget)
}

// oidEmailAddress is the PKCS #9 emailAddress attribute of a subject.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// checkSubjectEmails checks, as OpenSSL does and Go's verifier does not,
// the email addresses in the subject against the email constraints of
// the path (RFC 5280 asks it of a certificate without alternative names;
// OpenSSL, of every one). Its comparisons come out of budget.
func checkSubjectEmails(cert *x509.Certificate, path []*x509.Certificate, budget *int) error {
	for _, a := range cert.Subject.Names {
		email, ok := a.Value.(string)
		if !a.Type.Equal(oidEmailAddress) || !ok {
			continue
		}
		if err := checkEmail("the subject's email address", email, path, budget); err != nil {
			return err
		}
	}
	return nil
}

// withUnmapped returns ips and, after them, the IPv4 address of each
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) among them, in a slice of
// its own: Go's verifier takes such an address for the IPv4 one as a
// host, but checks it against IPv6 constraints alone, and must check it
// as both.
func withUnmapped(ips []net.IP) []net.IP {
	out := slices.Clip(ips)
	for _, ip := range ips {
		if len(ip) == net.IPv6len && ip.To4() != nil {
			out = append(out, ip.To4())
		}
	}
	return out
}

// checkMailboxes checks the SmtpUTF8Mailbox names (RFC 9598) of cert's
// subject alternative names, which Go's verifier does not read, against
// the email constraints of the path: they apply to them, with the host
// in its ASCII form, as OpenSSL checks them. Its comparisons come out of
// budget.
func checkMailboxes(cert *x509.Certificate, path []*x509.Certificate, budget *int) error {
	// Without email constraints there is nothing to hold them to, and a
	// mailbox this would refuse (a host with an empty label) is the
	// requester's to name.
	if !slices.ContainsFunc(path, func(c *x509.Certificate) bool {
		return len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses) > 0
	}) {
		return nil
	}
	for _, e := range cert.Extensions {
		if !e.Id.Equal(pki.OIDSubjectAltName) {
			continue
		}
		boxes, err := pki.SmtpUTF8Mailboxes(e.Value)
		if err != nil {
			return err
		}
		for _, box := range boxes {
			at := strings.LastIndexByte(box, '@')
			if at <= 0 {
				return fmt.Errorf("the SmtpUTF8Mailbox %q is no mailbox", box)
			}
			host, err := idna.Lookup.ToASCII(box[at+1:])
			if err != nil {
				return fmt.Errorf("the host of the SmtpUTF8Mailbox %q: %v", box, err)
			}
			// A label empty ("corp.example.", "corp..example") would read
			// as another host than the constraint's, which it is, to a
			// mail system.
			if slices.Contains(strings.Split(host, "."), "") {
				return fmt.Errorf("the host of the SmtpUTF8Mailbox %q has an empty label", box)
			}
			if err := checkEmail("the SmtpUTF8Mailbox", box[:at+1]+host, path, budget); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkEmail checks email, what the certificate names, against the email
// constraints of path. Its comparisons come out of budget.
func checkEmail(what, email string, path []*x509.Certificate, budget *int) error {
	in := func(m string) bool { return inMailboxes(email, m) }
	return within(fmt.Sprintf("%s %q", what, email), len(email), path, emailSubtrees, in, in, budget)
}

// within checks a name, which what describes in errors and which is size
// bytes long, against the subtrees of one form (subtrees gives them) of
// each certificate of path: permits reports whether a permitted subtree
// holds the name, excludes whether an excluded one takes it in. Its
// comparisons come out of budget.
func within(what string, size int, path []*x509.Certificate, subtrees func(*x509.Certificate) (permitted, excluded []string), permits, excludes func(subtree string) bool, budget *int) error {
	for _, c := range path {
		permitted, excluded := subtrees(c)
		if err := pki.Spend(budget, (len(permitted)+len(excluded))*pki.Cost(size, 0)); err != nil {
			return err
		}
		if len(permitted) > 0 && !slices.ContainsFunc(permitted, permits) {
			return fmt.Errorf("%s is not within a subtree that %s permits", what, c.Subject)
		}
		if slices.ContainsFunc(excluded, excludes) {
			return fmt.Errorf("%s is within a subtree that %s excludes", what, c.Subject)
		}
	}
	return nil
}

func emailSubtrees(c *x509.Certificate) (permitted, excluded []string) {
	return c.PermittedEmailAddresses, c.ExcludedEmailAddresses
}

func dnsSubtrees(c *x509.Certificate) (permitted, excluded []string) {
	return c.PermittedDNSDomains, c.ExcludedDNSDomains
}

// inMailboxes reports whether email is within an email constraint (RFC
// 5280, 4.2.1.10): a mailbox, all mailboxes of a host, or with a leading
// dot those of the hosts under a domain. Host names compare without regard
// to case.
func inMailboxes(email, constraint string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	local, host := email[:at], email[at+1:]
	if cLocal, cHost, ok := strings.Cut(constraint, "@"); ok {
		return local == cLocal && strings.EqualFold(host, cHost)
	}
	return inHosts(host, constraint)
}

// inHosts reports whether host is within the host constraint of an email
// address or URI (RFC 5280, 4.2.1.10): without a leading dot, that host
// alone; with one, the hosts under it. Host names compare without regard
// to case.
func inHosts(host, constraint string) bool {
	if strings.HasPrefix(constraint, ".") {
		return len(host) > len(constraint) && strings.EqualFold(host[len(host)-len(constraint):], constraint)
	}
	return strings.EqualFold(host, constraint)
}

func uriSubtrees(c *x509.Certificate) (permitted, excluded []string) {
	return c.PermittedURIDomains, c.ExcludedURIDomains
}

// checkCommonName checks, as OpenSSL does and Go's verifier does not, the
// common names of a certificate without DNS names in its subject
// alternative names, each that reads as a host name, against the DNS name
// constraints of the path: a verifier that still takes a host name from
// the common name would take these. Every common name counts (Go's
// Subject.CommonName is the last; OpenSSL matches each), and so does a
// wildcard one, which OpenSSL's constraint check skips and its host name
// check (curl's, Python's) matches. One that is an IP address is held to
// the IP address constraints (checkIPLiteral). Its comparisons come out
// of budget.
func checkCommonName(cert *x509.Certificate, path []*x509.Certificate, budget *int) error {
	if len(cert.DNSNames) > 0 {
		return nil
	}
	for _, a := range cert.Subject.Names {
		cn, ok := a.Value.(string)
		if !a.Type.Equal(oidCommonName) || !ok {
			continue
		}
		what := fmt.Sprintf("the common name %q, a host name,", cn)
		// A number alone ("12345", "007": an employee's, a device's) is
		// taken for no address in a common name, though it is one in a
		// DNS name: too many common names are numbers.
		if strings.ContainsAny(cn, ".:") || strings.HasPrefix(strings.ToLower(cn), "0x") {
			if err := checkIPLiteral(what, cn, path, budget); err != nil {
				return err
			}
		}
		if err := checkHost(what, cn, path, budget); err != nil {
			return err
		}
	}
	return nil
}

// checkIPLiteral holds name, a DNS name or a common name, that is an IP
// address ("10.1.2.3") to the IP address constraints of path, as if it
// were an iPAddress alternative name: OpenSSL's host check matches it
// with a client's host written so, and Go's verifier checks a DNS name
// against the DNS name constraints alone, so it escaped an excluded
// range. (An address IPv4-mapped, "::ffff:10.1.2.3", is held as its IPv4
// address, as net.IPNet takes it.) Its comparisons come out of budget.
func checkIPLiteral(what, name string, path []*x509.Certificate, budget *int) error {
	addr, ok := hostAddr(name)
	if !ok {
		return nil
	}
	ip := net.IP(addr.AsSlice())
	in := func(n *net.IPNet) bool { return n.Contains(ip) }
	for _, c := range path {
		if err := pki.Spend(budget, len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)); err != nil {
			return err
		}
		if len(c.PermittedIPRanges) > 0 && !slices.ContainsFunc(c.PermittedIPRanges, in) {
			return fmt.Errorf("%s is an IP address not within a range that %s permits", what, c.Subject)
		}
		if slices.ContainsFunc(c.ExcludedIPRanges, in) {
			return fmt.Errorf("%s is an IP address within a range that %s excludes", what, c.Subject)
		}
	}
	return nil
}

// hostAddr returns the IP address that name, a host name, reads as to a
// client that resolves it: an address as written, or in one of the forms
// of inet_aton, which getaddrinfo takes too ("0xa.1.2.3", "012.1.2.3",
// "10.1.515" and "167838211" are all 10.1.2.3).
func hostAddr(name string) (netip.Addr, bool) {
	name = strings.TrimSuffix(name, ".")
	if addr, err := netip.ParseAddr(name); err == nil {
		return addr, true
	}
	parts := strings.Split(name, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var ip uint64
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		// Each part a byte, but the last, which fills the bytes left.
		if bits := 8 * (4 - i); err != nil || i < len(parts)-1 && v > 255 || i == len(parts)-1 && v >= 1<<bits {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			ip |= v << (24 - 8*i)
		} else {
			ip |= v
		}
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// checkHost checks name as OpenSSL's host check matches it (hostPattern):
// a host name, or a wildcard, every name it stands for, against the DNS
// name constraints of path: each name permitted, and none excluded. A name
// that is neither goes unchecked. Its comparisons come out of budget.
func checkHost(what, name string, path []*x509.Certificate, budget *int) error {
	host, wildcard := hostPattern(name)
	if host == "" {
		return nil
	}
	return within(what, len(host), path, dnsSubtrees,
		func(d string) bool { return domainHolds(host, wildcard, d) }, func(d string) bool { return domainTouches(host, wildcard, d) }, budget)
}

// checkDNSNames checks, as Go's verifier does not, the DNS names of cert's
// subject alternative names with a "*" in their first label against the
// DNS name constraints of path, as a wildcard common name is checked
// (checkCommonName): every name the wildcard may stand for permitted, and
// none excluded. Go's verifier takes a name for a wildcard only when its
// first label is "*" alone, and compares "s*.corp.example" as it is;
// OpenSSL's host check (curl's, Python's) matches it with
// secret.corp.example, which an excluded subtree would have kept out.
// Holding such a name as a wildcard common name is held, rather than
// refusing it, keeps one rule for a host name wherever a certificate
// gives it, in code already there; a first label with a "*" is taken to
// stand for any label ("a*" for "secret" too), the safe side. A name
// hostPattern reads as no wildcard (a "*" after the first label), no
// client matches as one either: Go's verifier compares it as it is. Its
// comparisons come out of budget. A DNS name that is an IP address is
// held to the IP address constraints (checkIPLiteral).
func checkDNSNames(cert *x509.Certificate, path []*x509.Certificate, budget *int) error {
	for _, name := range cert.DNSNames {
		what := fmt.Sprintf("the DNS name %q", name)
		if err := checkIPLiteral(what, name, path, budget); err != nil {
			return err
		}
		first, _, _ := strings.Cut(name, ".")
		if !strings.Contains(first, "*") {
			continue
		}
		if err := checkHost(what, name, path, budget); err != nil {
			return err
		}
	}
	return nil
}

// checkAltNames checks the subject alternative names of cert that Go's
// verifier reads otherwise than clients do, or not at all, against the
// name constraints of path: DNS names with a "*" in their first label,
// or that are IP addresses (checkDNSNames), email addresses and URIs, and internationalized email
// addresses (checkMailboxes). Its comparisons come out of budget.
//
// Go's verifier reads an email or URI constraint without a leading dot as
// a DNS one, a domain and the hosts under it: "corp.example" permits
// a@evil.corp.example and spiffe://evil.corp.example/x. RFC 5280 (4.2.1.10)
// has it name that host alone (".corp.example" names the hosts under it),
// and OpenSSL refuses the others ("permitted subtree violation"): each is
// checked so here too (inMailboxes, inHosts), after Go's verifier, and
// a name is issued only if both permit it and neither excludes it (Go's
// reading excludes more, the safe side).
func checkAltNames(cert *x509.Certificate, path []*x509.Certificate, budget *int) error {
	if err := checkDNSNames(cert, path, budget); err != nil {
		return err
	}
	for _, email := range cert.EmailAddresses {
		if err := checkEmail("the email address", email, path, budget); err != nil {
			return err
		}
	}
	for _, u := range cert.URIs {
		// The host, without port or brackets, as Go's verifier reads it
		// (one empty or an IP address it refuses, under any constraint).
		host := u.Hostname()
		in := func(d string) bool { return inHosts(host, d) }
		if err := within(fmt.Sprintf("the URI %q", u), len(host), path, uriSubtrees, in, in, budget); err != nil {
			return err
		}
	}
	return checkMailboxes(cert, path, budget)
}

// oidCommonName is the commonName attribute of a subject.
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// hostPattern reads a common name as a host name, as OpenSSL matches it:
// the name (less one final dot), or for a wildcard one ("*.example.com",
// "w*.example.com") the domain its first label stands in front of, with
// wildcard true. It returns "" for a common name that is not a host name.
func hostPattern(cn string) (host string, wildcard bool) {
	cn = strings.TrimSuffix(cn, ".")
	first, rest, ok := strings.Cut(cn, ".")
	if ok && strings.Contains(first, "*") {
		if hostLabel(strings.ReplaceAll(first, "*", "x")) && allLabels(rest) {
			return rest, true
		}
		return "", false
	}
	if hostName(cn) {
		return cn, false
	}
	return "", false
}

// domainHolds reports whether a DNS name constraint permits a host name,
// or for a wildcard every name one label under it.
func domainHolds(host string, wildcard bool, domain string) bool {
	if wildcard {
		return inDomain(host, strings.TrimPrefix(domain, "."))
	}
	return inDomain(host, domain)
}

// domainTouches reports whether a DNS name constraint excludes a host
// name, or for a wildcard any name one label under it.
func domainTouches(host string, wildcard bool, domain string) bool {
	if !wildcard {
		return inDomain(host, domain)
	}
	if inDomain(host, strings.TrimPrefix(domain, ".")) {
		return true
	}
	label, under, ok := strings.Cut(domain, ".")
	return ok && label != "" && strings.EqualFold(under, host)
}

// hostName reports whether s reads as a DNS host name, as OpenSSL takes
// a common name to: at least two labels.
func hostName(s string) bool {
	return strings.Contains(s, ".") && allLabels(s)
}

// allLabels reports whether every dot-separated label of s is a host
// name's: letters, digits, hyphens (not first or last) and underscores,
// which OpenSSL takes too.
func allLabels(s string) bool {
	return !slices.ContainsFunc(strings.Split(s, "."), func(l string) bool { return !hostLabel(l) })
}

func hostLabel(l string) bool {
	return l != "" && l[0] != '-' && l[len(l)-1] != '-' && !strings.ContainsFunc(l, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	})
}

// inDomain reports whether name is within a DNS name constraint (RFC
// 5280, 4.2.1.10): the domain itself and names under it, or with a
// leading dot only names under it.
func inDomain(name, domain string) bool {
	name, domain = strings.ToLower(name), strings.ToLower(domain)
	if sub, ok := strings.CutPrefix(domain, "."); ok {
		return strings.HasSuffix(name, "."+sub)
	}
	return domain == "" || name == domain || strings.HasSuffix(name, "."+domain)
}

// Forget drops what is kept open of a CA's key, once the CA is deleted.
func (k *Keys) Forget(caID string) {
	k.signers.Remove(caID)
	k.issuers.Remove(caID)
}

// Open reports how many CA keys are kept open.
func (k *Keys) Open() int { return k.signers.Len() }

// keyStoreFor chooses the store of a new CA's key, and the standard the CA
// reports. A request that names no standard (AWS's default) gets the
// default store, and the standard that store is declared to meet, if any.
// One that names a standard gets the first store declared to meet it, and
// reports it as asked; if no store meets it, it is refused, unless the
// operator allows the claim.
func (s *Service) keyStoreFor(want openpca.KeyStorageSecurityStandard) (KeyStore, openpca.KeyStorageSecurityStandard, error) {
	def := s.keys.stores[0]
	if want == "" {
		return def, def.Standard, nil
	}
	for _, ks := range s.keys.stores {
		if meets(ks.Standard, want) && (ks.Hardware() || !s.requireHardware) {
			return ks, want, nil // true, and what the request said
		}
	}
	if s.allowUnmet {
		return def, want, nil
	}
	var declared []string
	for _, ks := range s.keys.stores {
		d := string(ks.Standard)
		if d == "" {
			d = "none"
		}
		declared = append(declared, ks.Name()+": "+d)
	}
	return KeyStore{}, "", openpca.Errorf(openpca.CodeInvalidArgs,
		"KeyStorageSecurityStandard %s: no key store of this server is declared to meet it (%s). Keys kept in software meet no FIPS level; "+
			"omit the field to use the server's default store.", want, strings.Join(declared, ", "))
}

// hardware reports whether ca's key signs outside the server's
// processors: in a token or KMS, or in a store this server lacks (where it
// does not sign at all).
func (k *Keys) hardware(ca *openpca.CA) bool {
	ks, err := k.store(ca)
	return err != nil || ks.Hardware()
}

// store returns the store that keeps ca's key.
func (k *Keys) store(ca *openpca.CA) (KeyStore, error) {
	for _, ks := range k.stores {
		if ks.Name() == ca.KeyStore {
			return ks, nil
		}
	}
	return KeyStore{}, &openpca.Error{Code: openpca.CodeServiceUnavailable,
		Message: fmt.Sprintf("The key of %s is kept in the %s key store, which this server is not configured with.", ca.ARN, ca.KeyStore)}
}

// DestroyKeys removes from their stores the keys the store has to
// destroy (KeysToDestroy): of CAs deleted for good, and made for CAs never
// stored. A key in a token or KMS goes only on the audit key's signed word
// for it (CA.Destruction), within the word's time: a record without it,
// or whose word is of another CA or key, was written outside the server
// (or by a version before 2026-12); it is forgotten, its key left in its
// store, as it is once its word has lapsed.
func (s *Service) DestroyKeys(ctx context.Context, cas []*openpca.CA) { s.destroyKeys(ctx, cas, true) }

// destroyKeys removes the keys of cas from their stores, and records
// each removed (KeyDestroyed); with signed, only those whose Destruction
// lets them go. A key that cannot be removed (its store away) is logged,
// and stays to be destroyed: the janitor tries it again (KeysToDestroy).
func (s *Service) destroyKeys(ctx context.Context, cas []*openpca.CA, signed bool) {
	for _, ca := range cas {
		if ctx.Err() != nil {
			return // the server is stopping; the rest are tried at its next start
		}
		if ca.KeepKey {
			err := s.store.KeyDestroyed(ctx, ca.ID)
			s.logger.ErrorContext(ctx, "a record asks for a key to be destroyed that a stored CA holds: it was written outside the server, or names one CA's key for another; the key is left in its store, and the record forgotten",
				"ca", ca.ARN, "key_store", ca.KeyStore, "key_handle", string(ca.KeyHandle), "key_id", ca.KeyID, "error", err)
			continue
		}
		ks, err := s.keys.store(ca)
		// What finds the key, for an operator to remove it by hand: its
		// id, and the handle unless the store may be the software one,
		// whose handle is the sealed key itself.
		hardware, handle := err != nil || ks.Hardware(), ""
		if hardware {
			handle = string(ca.KeyHandle)
		}
		if signed && hardware {
			if cerr := s.destructionSigned(ca); errors.Is(cerr, errNotYet) {
				continue // a purge tries it again
			} else if cerr != nil {
				s.destructionRefused()
				err := s.store.KeyDestroyed(ctx, ca.ID)
				s.logger.ErrorContext(ctx, "a record asks for a key to be destroyed without the audit key's word for it: it was written outside the server, or by a version before 2026-12, or its word lapsed (the key's store away for a week, or a restore gave the CA its restoration period again) or could not be signed; the key is left in its store, and the record forgotten",
					"ca", ca.ARN, "key_store", ca.KeyStore, "key_handle", handle, "key_id", ca.KeyID, "problem", cerr, "error", err)
				continue
			}
		}
		s.keys.Forget(ca.ID)
		if err == nil {
			_, err = inStore(ctx, s.keys, ks, ca, func() (struct{}, error) { return struct{}{}, ks.DestroyKey(ctx, ca) })
		}
		if errors.Is(err, openpca.ErrNotFound) {
			// Destroyed before (by another server, or a try whose answer
			// was lost), or a store that is not the one that held it: said,
			// for an operator to tell the two apart.
			s.logger.WarnContext(ctx, "the key of a CA deleted for good, or never stored, is not in its store; it is taken as destroyed", "ca", ca.ARN, "key_store", ca.KeyStore,
				"key_handle", handle, "key_id", ca.KeyID)
			err = nil
		}
		if err == nil && ks.KeyStore != nil {
			// Said, with what found the key: a server of a restored copy
			// on the same token or KMS destroys keys the old servers may
			// still use, and nothing else would tell which.
			s.logger.InfoContext(ctx, "destroyed the key of a CA deleted for good", "ca", ca.ARN, "key_store", ca.KeyStore, "key_handle", handle, "key_id", ca.KeyID)
		}
		if err == nil {
			// A key destroyed is recorded so, even as the server stops.
			err = s.store.KeyDestroyed(context.WithoutCancel(ctx), ca.ID)
		}
		if err != nil {
			s.logger.ErrorContext(ctx, "removing the key of a CA deleted for good, or never stored; a purge tries again", "ca", ca.ARN, "key_store", ca.KeyStore,
				"key_handle", handle, "key_id", ca.KeyID, "error", err)
		}
	}
}

// errNotYet says that a key's destruction is signed for a time to come.
var errNotYet = errors.New("its time has not come")

// DestructionWindow is how long, from the time it names, the audit key's
// word that a CA's key may be destroyed serves: a purge that cannot
// reach the key's store for longer leaves the key, as it does a key
// without a word. The word of a CA deleted, and restored since, serves
// no longer than this past the end of the restoration period it was
// given; so too the word of a key made for a CA since stored.
const DestructionWindow = 7 * 24 * time.Hour

// destructionSigned checks that ca.Destruction is the audit key's word
// that ca's key, as ca names it, may be destroyed now; errNotYet if it
// may later.
func (s *Service) destructionSigned(ca *openpca.CA) error {
	return checkDestruction(ca, s.log.VerifierKey(), s.now())
}

// checkDestruction checks that ca.Destruction is a word signed by the key
// of verifierKey that ca's key, as ca names it, may be destroyed at now;
// errNotYet if it may later. The word's ARN must be its CA's own, as KMS
// checks a key's tag against it.
func checkDestruction(ca *openpca.CA, verifierKey string, now time.Time) error {
	if len(ca.Destruction) == 0 {
		return errors.New("the record has none")
	}
	d, err := auditlog.OpenKeyDestruction(ca.Destruction, verifierKey)
	if err != nil {
		return err
	}
	p, err := openpca.ParseCAARN(d.CAARN)
	switch {
	case err != nil || p.CAID != d.CAID:
		return fmt.Errorf("the word names the CA %s by another ARN than its own, %s", d.CAID, d.CAARN)
	case d.CAID != ca.ID || d.CAARN != ca.ARN:
		return fmt.Errorf("the word is of another CA, %s (%s)", d.CAARN, d.CAID)
	case d.Store != ca.KeyStore || !bytes.Equal(d.KeyHandle, ca.KeyHandle) || d.KeyID != ca.KeyID:
		return fmt.Errorf("the word is of another key, %q in the %s store (key id %q)", d.KeyHandle, d.Store, d.KeyID)
	case now.Before(d.From):
		return errNotYet
	case !now.Before(d.Until):
		return fmt.Errorf("the word lapsed at %s", d.Until.UTC().Format(time.RFC3339))
	}
	return nil
}

// signDestruction returns the audit key's word that ca's key, in a token
// or KMS, may be destroyed from from, for reason; nil for a key in
// software, which goes with the CA's row, and for a CA whose purge
// leaves its key (KeepKey: a restored copy's, beside servers that share
// its audit key and may use the key still). A row whose ARN is not its
// own gets none: the word would name another CA's key.
func (s *Service) signDestruction(ca *openpca.CA, reason string, from time.Time) ([]byte, error) {
	if !s.keys.hardware(ca) || ca.KeepKey {
		return nil, nil
	}
	if err := ownRow(ca); err != nil {
		return nil, err
	}
	signed, err := s.log.SignKeyDestruction(auditlog.KeyDestruction{Reason: reason, CAID: ca.ID, CAARN: ca.ARN, Store: ca.KeyStore,
		KeyHandle: ca.KeyHandle, KeyID: ca.KeyID, From: from, Until: from.Add(DestructionWindow)})
	if _, coded := errors.AsType[*openpca.Error](err); err != nil && !coded {
		err = &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("The audit key could not sign the destruction of the key of %s; retry later.", ca.ARN), Cause: err}
	}
	return signed, err
}

// keyIdentifier returns the key identifier of a CA's certificate, which
// the authority key identifier of what the CA signs repeats (RFC 5280,
// 4.2.1.1): its subject key identifier, or, for an imported certificate
// without one (without which Go signs no CRL), the key's, made as the
// CA's own certificates make it.
func keyIdentifier(c *x509.Certificate) ([]byte, error) {
	if len(c.SubjectKeyId) > 0 {
		return c.SubjectKeyId, nil
	}
	pub, err := pki.ParsePublicKey(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	return pki.SubjectKeyID(pub)
}
