// Package console serves the web console under /console/: the CA
// hierarchy, certificates, expiries, activity and audit reports of the
// signed-in account, a few actions, and a page where an auditor checks a
// report in the browser. Pages are rendered on the server and read without
// JavaScript; only the verify page runs code, the audit verifier compiled
// to WebAssembly (cmd/verify-wasm).
//
// Sign-in takes an access key and its secret, as the API does. A session
// lives in an HttpOnly, SameSite=Strict cookie (Secure under TLS) holding a
// random token whose hash the store keeps; it ends after SessionLife,
// SessionIdle without a request, or at sign-out. Every action is a POST carrying the session's CSRF token,
// from the console's own origin, and goes through the same operations, so
// the same authorization and logs, as the API.
package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/logsample"
	"github.com/openpca/openpca/internal/smallbody"
)

//go:generate sh -c "GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -buildid=' -o static/verify.wasm ../cmd/verify-wasm"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Authenticator checks access keys for the console.
type Authenticator interface {
	// SignIn checks a key's secret and returns its caller.
	SignIn(ctx context.Context, keyID, secret string) (openpca.Caller, error)
	// Session returns the caller of a key that is still valid, and its
	// secret, from one read of the key; auth.ErrSignIn once it is not.
	Session(ctx context.Context, keyID string) (openpca.Caller, string, error)
}

// AuditLog is what the console shows of the CAs' logs and reports.
type AuditLog interface {
	AuditVerifierKey() string
	AuditCheckpoint(ctx context.Context, caARN string, witnessed bool) ([]byte, error)
	AuditReports(ctx context.Context, caARN string) ([]*openpca.AuditReport, error)
}

// Certificates lists and counts a CA's certificates, which the API has
// no operation for, as far as the caller may (acm-pca:ListCertificates).
// An audit report's download, which lists them too, asks the same.
type Certificates interface {
	MayListCertificates(ctx context.Context, caARN string) error
	ListCertificates(ctx context.Context, caARN string, q openpca.CertificateQuery) ([]*openpca.ListedCertificate, error)
	CertificateCounts(ctx context.Context, caARN string, now, until, since time.Time) (expiring, issued, revoked []openpca.DayCount, err error)
}

// Store is what the console reads beside the API: its sessions, and which
// key store holds a CA's key, which the API does not describe. Nothing it
// reads of a CA is shown before the API has shown the CA to the caller.
type Store interface {
	CreateConsoleSession(ctx context.Context, s *openpca.ConsoleSession) error
	FindConsoleSession(ctx context.Context, idHash []byte, now time.Time) (*openpca.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, idHash []byte, now time.Time) error
	ExtendConsoleSession(ctx context.Context, idHash []byte, expiresAt time.Time) error
	FindCA(ctx context.Context, accountID, id string) (*openpca.CA, error)
	LatestCRL(ctx context.Context, caID string) (time.Time, error)
}

// Config is what the console works with.
type Config struct {
	Service      openpca.PrivateCA
	AuditLog     AuditLog
	Certificates Certificates
	Store        Store
	Objects      openpca.ObjectStore
	Auth         Authenticator
	Logger       *slog.Logger
	// Rates bounds each account's requests, the API's and the console's
	// together; nil: no bound.
	Rates *awsjson.AccountRates
	// SearchTime bounds a search of a CA's certificates by text, which
	// reads all of a large CA's certificates when it matches few, and the
	// charts' counts, which always do, on the database readers the API
	// shares; 0 means DefaultSearchTime.
	SearchTime time.Duration
	// Proxies are the proxies in front of the server whose word on the
	// client's address it takes, for the sign-in limit of an address, and
	// on whether the client came over HTTPS, for the session's cookie.
	Proxies clientaddr.Proxies
	// MaxConnections is how many connections the server takes at once
	// (0: smallbody.DefaultConnections), for the budget of small forms.
	MaxConnections int
	// HTTPS says that clients reach the console over HTTPS, though the
	// server may not: behind a proxy that ends TLS, cookies are Secure
	// all the same.
	HTTPS bool
	// SessionKey is what sessions are MACed with (SessionKeySetting).
	SessionKey []byte
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// SessionKeySetting names the setting that keeps, sealed with the master
// key, the key of the sessions' MACs (sessionMAC), which every server on
// the database shares, and a rotation of the master key makes anew.
const SessionKeySetting = "console-session-key"

// DefaultSearchTime is how long a search by text, or the charts, may read.
const DefaultSearchTime = 5 * time.Second

// SessionLife is how long a session lasts after sign-in, at most.
const SessionLife = 8 * time.Hour

// SessionIdle is how long a session lasts without a request: a console
// left open on an unattended screen stops acting for its key. A request
// moves the end on, a minute or more at a time, so that browsing writes
// to the store at most once a minute per session.
const SessionIdle = 30 * time.Minute

// Sign-in attempts are what anyone can send: a server takes at most
// signInRate a second (signInBurst at once), each a read of the store;
// past that, 429 without one. Before that, one address (an IPv6 address's
// /64, which one host usually has whole) takes at most signInAddrRate a
// second, and its network (an IPv4 /24, an IPv6 /48) a sixteenth of the
// server's bound, so that filling it takes sixteen networks (with a
// quarter, four did, and with twice an address's, two addresses). A
// network from which a key signed in within signInKnownFor is not held to
// the server's bound at all: floods from elsewhere do not lock its users
// out. Behind a proxy whose word the server does not take
// (Config.Proxies), the address is the proxy's: its clients share its
// bound. signInAddrs addresses, and as many networks of each kind, are
// kept, the least recently seen dropped first (apart: one network's many
// addresses must not drop another network's bound). The lines of sign-ins
// refused are sampled (logsample).
const (
	signInAddrRate  = 5
	signInAddrBurst = 10
	signInRate      = 40 * signInAddrRate
	signInBurst     = 40 * signInAddrBurst
	signInNetRate   = signInRate / 16.0
	signInNetBurst  = signInBurst / 16
	signInKnownFor  = 24 * time.Hour
	signInAddrs     = 10_000
)

// maxForm bounds what a form may send: the console's are of a few hundred
// bytes (the largest, a revocation's, a CA's ARN, a serial, a reason and
// the CSRF token), so that each is read in the budget of small bodies,
// which held back take the connections before they take it
// (smallbody.Budgets). Before, forms of up to 64 KiB, which anyone may
// post, shared 4 MiB, which eight networks filled. One waits formWait for
// room.
const (
	maxForm  = smallbody.SmallBody
	formWait = 5 * time.Second
)

// sessionCookie is the name and path of the session's cookie for r. Over
// HTTPS it is a __Host- cookie, of the whole host: a browser takes it only
// from this host, over HTTPS, without a Domain, so that a sibling host
// (evil.example beside ca.example) cannot set one of that name that the
// browser would send here before the console's, signing its user into
// another's account. Over HTTP nothing can stop that.
func (c *Console) sessionCookie(r *http.Request) (name, path string) {
	if c.secure(r) {
		return "__Host-openpca_console", "/"
	}
	return "openpca_console", "/console/"
}

// Console is the console's HTTP handler.
type Console struct {
	cfg     Config
	pages   map[string]*template.Template
	mux     *http.ServeMux
	origin  *http.CrossOriginProtection
	signIns *rate.Limiter
	// signInsFrom limits each address's sign-ins, then signInsFromNet
	// each network's, before signIns.
	signInsFrom, signInsFromNet *lru.Cache[netip.Prefix, *rate.Limiter]
	// signedInFrom is when a key last signed in from each network.
	signedInFrom *lru.Cache[netip.Prefix, time.Time]
	refusals     *logsample.Sampler
	forms        *smallbody.Budgets // for the bodies of forms
	signatures   *signatures        // of the CA page's tree
	// unproven logs, sampled, what failed of requests that proved
	// neither a session nor a secret: anyone can send them, and while
	// the store fails each one fails.
	unproven *slog.Logger
	searches searchSlots
}

// New returns the console, to be served under /console/.
func New(cfg Config) (*Console, error) {
	if len(cfg.SessionKey) < 32 {
		return nil, errors.New("console: the sessions' key must be 32 bytes or more")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SearchTime == 0 {
		cfg.SearchTime = DefaultSearchTime
	}
	signInsFrom, _ := lru.New[netip.Prefix, *rate.Limiter](signInAddrs)
	signInsFromNet, _ := lru.New[netip.Prefix, *rate.Limiter](signInAddrs)
	signedInFrom, _ := lru.New[netip.Prefix, time.Time](signInAddrs)
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}, mux: http.NewServeMux(), origin: http.NewCrossOriginProtection(),
		signIns: rate.NewLimiter(signInRate, signInBurst), signInsFrom: signInsFrom, signInsFromNet: signInsFromNet, signedInFrom: signedInFrom,
		refusals: logsample.New(), forms: smallbody.NewBudgets(0, cfg.MaxConnections, formWait), signatures: newSignatures(), unproven: logsample.Logger(cfg.Logger), searches: searchSlots{byAccount: map[string]int{}}}
	for _, page := range []string{"signin", "cas", "ca", "certificates", "certificate", "charts", "verify", "message"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		c.pages[page] = t
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	c.mux.HandleFunc("GET /console/{$}", c.home)
	c.mux.HandleFunc("POST /console/sign-in", c.signIn)
	c.mux.Handle("POST /console/sign-out", c.signedIn(c.signOut, leave))
	c.mux.Handle("GET /console/cas", c.session(c.listCAs))
	c.mux.Handle("GET /console/ca", c.session(c.showCA))
	c.mux.Handle("GET /console/ca/certificates", c.session(c.listCertificates))
	c.mux.Handle("GET /console/ca/certificate", c.session(c.showCertificate))
	c.mux.Handle("GET /console/ca/charts", c.session(c.showCharts))
	c.mux.Handle("GET /console/ca/report", c.session(c.downloadReport))
	c.mux.Handle("POST /console/ca/revoke", c.session(c.revoke))
	c.mux.Handle("POST /console/ca/report", c.session(c.requestReport))
	c.mux.Handle("POST /console/ca/status", c.session(c.setStatus))
	c.mux.Handle("GET /console/verify", c.session(c.verifyPage))
	files, err := listStatic(static)
	if err != nil {
		return nil, err
	}
	c.mux.Handle("GET /console/static/{name}", c.signedIn(func(w http.ResponseWriter, r *http.Request, _ *signedIn) {
		f, ok := files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.serve(w, r)
	}, asset))
	return c, nil
}

// ServeHTTP serves the console, with the headers every answer carries: no
// caching, no framing, no opener or loader of another origin, no referrer
// to other sites, and only the console's own scripts; and reached over HTTPS, HTTPS only from then on (HSTS, for
// the host, not its subdomains, which the server does not know).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if c.secure(r) {
		h.Set("Strict-Transport-Security", "max-age=15552000")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// A page of another site that opened the console keeps no handle on
	// it (to send it elsewhere later), and one of this site's other
	// origins (a sibling host, another port) cannot load its answers.
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	// Not no-referrer: under it, browsers send a form's Origin as "null",
	// which the cross-origin check below refuses where no Sec-Fetch-Site
	// tells it the form is the console's own (plain HTTP to a host name).
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if r.Method == http.MethodPost {
		// Forms come from the console's own pages: a cross-origin POST is
		// refused before it reaches a handler, CSRF token or not.
		if err := c.origin.Check(r); err != nil {
			c.fail(w, r, http.StatusForbidden, "This request came from another site, and is refused.")
			return
		}
		body, done, err := smallbody.Read(w, r, maxForm, c.forms, clientaddr.Network(c.cfg.Proxies.Nearest(r), 24, 48))
		switch {
		case errors.Is(err, smallbody.ErrTooLarge):
			c.fail(w, r, http.StatusRequestEntityTooLarge, "The form is too large.")
			return
		case errors.Is(err, smallbody.ErrBusy):
			c.fail(w, r, http.StatusServiceUnavailable, "The server is busy: try again.")
			return
		case err != nil:
			c.fail(w, r, http.StatusBadRequest, "The form did not arrive whole in time: try again.")
			return
		}
		defer done()
		r.Body = io.NopCloser(bytes.NewReader(body))
	} else {
		// A page's parameters are its query's. FormValue parsed a
		// multipart body here, to temporary files that nothing removed:
		// net/http removes those of its own request, not of the copy a
		// handler is given.
		r.Body = http.NoBody
	}
	c.mux.ServeHTTP(w, r)
}

// signedIn is the session and caller of a request.
type signedIn struct {
	session *openpca.ConsoleSession
	caller  openpca.Caller
	ctx     context.Context // carries the caller, a request id and the operation
}

// extra is in, for what a page shows beside what it was asked for, which
// a refusal leaves out: refusals of it are not logged.
func (in *signedIn) extra() *signedIn {
	return &signedIn{session: in.session, caller: in.caller, ctx: openpca.WithDenialUnlogged(in.ctx)}
}

// session wraps a handler that needs a session: without one, the request
// goes to the sign-in page; a POST must carry the session's CSRF token.
// Its requests count against the account's request rate.
func (c *Console) session(h func(http.ResponseWriter, *http.Request, *signedIn)) http.Handler {
	return c.signedIn(h, page)
}

// Kinds of requests of a session.
const (
	page  = iota // counts against the account's request rate
	asset        // does not: a page's own scripts, which it needs whole
	leave        // does not, and needs the session alone: signing out works whatever became of the key
)

func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *signedIn), kind int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, token, err := c.findSession(r)
		if err != nil && !errors.Is(err, openpca.ErrNotFound) {
			// The store failed (its database away, say): the session may
			// well be there, and its browser is told what failed rather
			// than sent to sign in again, which would fail the same way.
			c.apiErrorTo(c.unproven, w, r, err)
			return
		}
		if err != nil {
			// A session that ended under its browser (by time, by its
			// key's later sign-ins) is told so, not taken for none.
			name, _ := c.sessionCookie(r)
			_, had := r.Cookie(name)
			switch {
			case r.Method == http.MethodGet && had == nil:
				http.Redirect(w, r, "/console/?ended=1", http.StatusSeeOther)
			case r.Method == http.MethodGet:
				http.Redirect(w, r, "/console/", http.StatusSeeOther)
			case had == nil:
				c.fail(w, r, http.StatusUnauthorized, sessionEnded+" What you asked was not done.")
			default:
				c.fail(w, r, http.StatusUnauthorized, "Sign in first.")
			}
			return
		}
		mac := hmac.Equal([]byte(s.CSRF), []byte(c.sessionMAC(s)))
		if !mac {
			// Not a session this server made for the key: a row written,
			// or given another key, by whoever can write the database.
			c.cfg.Logger.WarnContext(r.Context(), "console: a session's row does not match its access key, as only a change by hand leaves it (or a sign-in before the sessions' key changed: a master key rotation, a version before 2026-12); it is ended", "key", s.KeyID)
		}
		// Its start is in the MAC; its end is not, and the store keeps
		// what its row says (a later end written by hand).
		if !mac || !c.cfg.Now().Before(s.CreatedAt.Add(SessionLife)) {
			c.endSession(w, r, s)
			switch {
			case r.Method == http.MethodGet:
				http.Redirect(w, r, "/console/?ended=1", http.StatusSeeOther)
			case kind == leave: // signed out, as asked
				http.Redirect(w, r, "/console/", http.StatusSeeOther)
			default:
				c.fail(w, r, http.StatusUnauthorized, sessionEnded+" What you asked was not done.")
			}
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
			c.fail(w, r, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
			return
		}
		if kind == leave {
			h(w, r, &signedIn{session: s, ctx: r.Context()})
			return
		}
		// Read once, its secret opened for its account: a key moved to
		// another account is a failure, not that account's caller.
		caller, _, err := c.cfg.Auth.Session(r.Context(), s.KeyID)
		if errors.Is(err, auth.ErrSignIn) { // the key was revoked since sign-in
			c.endSession(w, r, s)
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
			return
		}
		if openpca.ErrorCode(err) == openpca.CodeAccessDenied { // a policy of the key no longer reads
			c.fail(w, r, http.StatusForbidden, openpca.ClientMessage(err))
			return
		}
		if err != nil {
			c.apiError(w, r, err)
			return
		}
		// Checked only for pages: a check takes its request's share.
		if kind == page {
			if err := c.cfg.Rates.Check(caller.AccountID); err != nil {
				w.Header().Set("Retry-After", strconv.Itoa(c.cfg.Rates.RetryAfter()))
				c.fail(w, r, http.StatusTooManyRequests, "Your account sends more requests a second than this server takes from one account: wait a moment and try again.")
				return
			}
		}
		end := c.cfg.Now().Add(SessionIdle)
		if last := s.CreatedAt.Add(SessionLife); end.After(last) {
			end = last
		}
		if end.Sub(s.ExpiresAt) >= time.Minute {
			if err := c.cfg.Store.ExtendConsoleSession(r.Context(), s.IDHash, end); err != nil {
				c.apiError(w, r, err)
				return
			}
			// The browser keeps the cookie until the end it was given.
			c.setSessionCookie(w, r, token, end)
		}
		// As the API takes them: aws:SourceIp absent if the client's
		// address cannot be told.
		if addr := c.cfg.Proxies.Of(r); addr.IsValid() {
			caller.SourceIP = addr.String()
		}
		caller.SecureTransport = c.cfg.Proxies.Secure(r)
		ctx := openpca.WithRequestID(openpca.WithCaller(r.Context(), caller), uuid.NewString())
		h(w, r, &signedIn{session: s, caller: caller, ctx: ctx})
	})
}

// findSession returns the session of r's cookie, and its token.
func (c *Console) findSession(r *http.Request) (*openpca.ConsoleSession, string, error) {
	token, ok := c.sessionToken(r)
	if !ok {
		return nil, "", openpca.ErrNotFound
	}
	s, err := c.cfg.Store.FindConsoleSession(r.Context(), hashToken(token), c.cfg.Now())
	return s, token, err
}

// sessionToken is the session's token r's cookie gives, if any.
func (c *Console) sessionToken(r *http.Request) (string, bool) {
	name, _ := c.sessionCookie(r)
	cookie, err := r.Cookie(name)
	if err != nil || len(cookie.Value) > 64 {
		return "", false
	}
	return cookie.Value, true
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// sessionMAC is a session's CSRF token: a MAC, under the servers' session
// key (SessionKeySetting), of the session's hash, key id and start (which
// bounds its life). Random to
// anyone without the key, as a CSRF token must be, it also proves that a
// server made the session for that key: whoever can write the database,
// without the master key that seals the session key, can neither write a
// session for another's key nor move theirs to it. Not under the key's
// secret: the column would let whoever reads the database test guesses
// of a secret an operator chose.
func (c *Console) sessionMAC(s *openpca.ConsoleSession) string {
	m := hmac.New(sha256.New, c.cfg.SessionKey)
	fmt.Fprintf(m, "openpca console session\x00%s\x00%x\x00%d", s.KeyID, s.IDHash, s.CreatedAt.UnixMicro())
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionEnded tells a browser whose session the server no longer has
// why that may be.
const sessionEnded = "Your session ended: 30 minutes passed without a request, or 8 hours since you signed in, or you signed out, or its access key signed in 16 more times since (a key keeps 16 sessions). Sign in again."

// home is the sign-in page, or the CAs once signed in.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, _, err := c.findSession(r); err == nil {
		http.Redirect(w, r, "/console/cas", http.StatusSeeOther)
		return
	}
	data := map[string]any{}
	if r.FormValue("ended") != "" {
		data["Error"] = sessionEnded
	}
	c.render(w, r, http.StatusOK, "signin", nil, data)
}

// allowSignIn reports whether a sign-in from r's client may be tried now.
func (c *Console) allowSignIn(r *http.Request) bool {
	// Requests whose address net/http did not give (none over TCP) share
	// one bound, of the zero prefix.
	addr := c.cfg.Proxies.Nearest(r)
	network := clientaddr.Network(addr, 24, 48)
	if !signInLimit(c.signInsFrom, clientaddr.Network(addr, 32, 64), signInAddrRate, signInAddrBurst).Allow() ||
		!signInLimit(c.signInsFromNet, network, signInNetRate, signInNetBurst).Allow() {
		return false
	}
	if at, ok := c.signedInFrom.Get(network); ok && c.cfg.Now().Sub(at) < signInKnownFor {
		return true
	}
	return c.signIns.Allow()
}

// noteSignIn notes that a key signed in from r's network.
func (c *Console) noteSignIn(r *http.Request, at time.Time) {
	c.signedInFrom.Add(clientaddr.Network(c.cfg.Proxies.Nearest(r), 24, 48), at)
}

// signInLimit is the sign-in limit of from, an address or a network, in
// limits.
func signInLimit(limits *lru.Cache[netip.Prefix, *rate.Limiter], from netip.Prefix, r rate.Limit, burst int) *rate.Limiter {
	limit, found := limits.Get(from)
	if !found {
		limit = rate.NewLimiter(r, burst)
		limits.Add(from, limit) // of two at once, the last counts
	}
	return limit
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.allowSignIn(r) {
		c.fail(w, r, http.StatusTooManyRequests, "Too many sign-in attempts: try again in a few seconds.")
		return
	}
	keyID, secret := r.PostFormValue("access_key_id"), r.PostFormValue("secret_access_key")
	caller, err := c.cfg.Auth.SignIn(r.Context(), keyID, secret)
	if openpca.ErrorCode(err) == openpca.CodeAccessDenied { // the secret is right; a policy no longer reads
		c.fail(w, r, http.StatusForbidden, openpca.ClientMessage(err))
		return
	}
	if openpca.ErrorCode(err) == openpca.CodeServiceUnavailable && !errors.Is(err, auth.ErrSecretUnopened) {
		// The store failed, for every key alike: the page says so, not
		// that the secret is wrong, and the log says why.
		c.apiErrorTo(c.unproven, w, r, err)
		return
	}
	if err != nil && !errors.Is(err, auth.ErrSignIn) {
		// A failure with this key alone (its secret sealed under a
		// master key this server does not hold): logged, and answered as
		// a wrong secret, for an answer of its own would tell that the
		// key exists.
		logged(r.Context(), c.unproven, err)
	}
	if err != nil {
		if ok, held := c.refusals.Allow(); ok {
			c.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "console: a sign-in was refused", append(held,
				slog.String("key", loggableKeyID(keyID)), slog.String("remote", r.RemoteAddr), slog.String("client", c.cfg.Proxies.Nearest(r).String()))...)
		}
		c.render(w, r, http.StatusUnauthorized, "signin", nil, map[string]any{"Error": "The access key or its secret is wrong.", "KeyID": truncate(keyID, 32)})
		return
	}
	token, now := randomToken(), c.cfg.Now().UTC()
	s := &openpca.ConsoleSession{IDHash: hashToken(token), KeyID: keyID, CreatedAt: now, ExpiresAt: now.Add(min(SessionIdle, SessionLife))}
	s.CSRF = c.sessionMAC(s)
	if err := c.cfg.Store.CreateConsoleSession(r.Context(), s); err != nil {
		c.apiError(w, r, err)
		return
	}
	// The browser's session before this one, if it had one, ends: its
	// cookie is replaced, and the session would have stayed valid, unseen,
	// until it went idle.
	if old, ok := c.sessionToken(r); ok {
		if err := c.cfg.Store.DeleteConsoleSession(r.Context(), hashToken(old), now); err != nil {
			c.cfg.Logger.ErrorContext(r.Context(), "console: ending the session signed in again", "error", err)
		}
	}
	c.noteSignIn(r, now)
	c.setSessionCookie(w, r, token, s.ExpiresAt)
	c.cfg.Logger.InfoContext(r.Context(), "console: signed in", "key", keyID, "account", caller.AccountID, "remote", r.RemoteAddr, "client", c.cfg.Proxies.Nearest(r))
	http.Redirect(w, r, "/console/cas", http.StatusSeeOther)
}

// loggableKeyID is what the log says of a key id a refused sign-in gave:
// the id if it could be one of the server's (capitals and digits, as its
// own and AWS's are), else only its length, for a secret pasted into the
// key id's field would be logged.
func loggableKeyID(id string) string {
	if len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < '0' || r > '9') }) {
		return fmt.Sprintf("(not a key id: %d bytes)", len(id))
	}
	return id
}

// setSessionCookie gives the browser a session's token until its end.
func (c *Console) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, end time.Time) {
	name, path := c.sessionCookie(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: token, Path: path, Expires: end,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, in *signedIn) {
	c.endSession(w, r, in.session)
	c.cfg.Logger.InfoContext(r.Context(), "console: signed out", "key", in.session.KeyID)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request, s *openpca.ConsoleSession) {
	if err := c.cfg.Store.DeleteConsoleSession(r.Context(), s.IDHash, c.cfg.Now()); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: ending a session", "error", err)
	}
	name, path := c.sessionCookie(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

// secure reports whether a cookie for r must be Secure: r came over TLS,
// to the server or to a trusted proxy that says so (X-Forwarded-Proto),
// or clients reach the console over HTTPS. The public URL alone does not
// tell: it is also OCSP's, which certificates name, often over http.
func (c *Console) secure(r *http.Request) bool { return c.cfg.HTTPS || c.cfg.Proxies.Secure(r) }

// render writes page with the layout; in is the signed-in user, if any.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, in *signedIn, data map[string]any) {
	if in != nil {
		data["CSRF"] = in.session.CSRF
		data["Key"] = in.caller.Principal
		data["Account"] = in.caller.AccountID
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[page].Execute(w, data); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: rendering a page", "page", page, "error", err)
	}
}

// fail answers with a message page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	c.render(w, r, status, "message", nil, map[string]any{"Title": http.StatusText(status), "Message": message})
}

// apiError answers with what an operation refused, as the API would have
// said it, with the status the API would have used; and logs what the
// server failed at (logged).
func (c *Console) apiError(w http.ResponseWriter, r *http.Request, err error) {
	c.apiErrorTo(c.cfg.Logger, w, r, err)
}

// apiErrorTo is apiError, logging to logger.
func (c *Console) apiErrorTo(logger *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	e, ok := logged(r.Context(), logger, err)
	switch {
	case openpca.Abandoned(r.Context(), err):
		// No one reads the answer; the API answers it 503 too.
		c.fail(w, r, http.StatusServiceUnavailable, "The request's connection was closed before it was answered.")
		return
	case !ok:
		c.fail(w, r, http.StatusInternalServerError, "The server could not answer; its log says why.")
		return
	}
	status := http.StatusBadRequest
	switch e.Code {
	case openpca.CodeResourceNotFound, openpca.CodeInvalidArn:
		status = http.StatusNotFound
	case openpca.CodeAccessDenied:
		status = http.StatusForbidden
	case openpca.CodeInternalFailure:
		status = http.StatusInternalServerError
	case openpca.CodeServiceUnavailable:
		status = http.StatusServiceUnavailable
	}
	c.fail(w, r, status, e.Code+": "+e.Message)
}

// logged logs err as the API logs what it answers: a failure of the
// server's own at ERROR, a dependency's failure (the database, a key
// store, the object store) with its cause at WARN, and neither a refusal
// nor a client that hung up, which anyone could cause as fast as they
// like. It returns err as an *openpca.Error, if it is one.
func logged(ctx context.Context, logger *slog.Logger, err error) (*openpca.Error, bool) {
	e, ok := errors.AsType[*openpca.Error](err)
	switch {
	case openpca.Abandoned(ctx, err):
	case !ok:
		logger.ErrorContext(ctx, "console: internal failure", "error", err)
	case e.Cause != nil:
		logger.WarnContext(ctx, "console: a dependency failed", "error", err)
	}
	return e, ok
}

// truncate cuts s to n bytes at most, on a character's boundary: a
// search cut inside a character is no longer UTF-8.
func truncate(s string, n int) string {
	cut, _ := openpca.CutText(s, n)
	return cut
}
