// Package server assembles OpenPCA's HTTP server: the AWS Private CA API on
// POST /, the audit log's checkpoints and proofs under /audit-log/, the
// OCSP responder at /ocsp, the embedded object store's CRLs under /s3/, a
// liveness check on GET /healthz, a readiness check on GET /readyz,
// Prometheus metrics on GET /metrics and the web console under /console/,
// with one structured log line per API request.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/logsample"
	"github.com/openpca/openpca/internal/smallbody"
)

// Config holds what a Server serves.
type Config struct {
	Service openpca.PrivateCA
	// AuditLog, if set, is served at /audit-log/.
	AuditLog AuditLog
	// OCSP, if set, answers OCSP requests at /ocsp.
	OCSP OCSPResponder
	// OCSPMaxAge is how long HTTP caches may serve an OCSP answer without
	// asking again (never past its nextUpdate): a revocation may take as
	// long to reach relying parties behind one. 0: caches ask each time.
	OCSPMaxAge time.Duration
	// LocalObjects, if set, is the embedded object store, whose CRLs are
	// served at /s3/<bucket>/<key>.
	LocalObjects LocalObjects
	// Collectors report metrics of their own at /metrics, beside the
	// requests' (see CACollector).
	Collectors []prometheus.Collector
	// Ready, if set, reports whether the server can serve writes, for
	// /readyz: nil if the store makes them durable.
	Ready         func(context.Context) error
	Authenticator awsjson.Authenticator
	// Console, if set, is the web console, served under /console/.
	Console http.Handler
	// PrivateMetrics keeps /metrics off the API's listener, for
	// Server.Metrics to serve elsewhere: they count every account's CAs
	// and requests.
	PrivateMetrics bool
	// AccountRates bounds each account's API requests a second; the
	// console shares them. nil: no bound.
	AccountRates *awsjson.AccountRates
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies clientaddr.Proxies
	// MaxConnections is how many connections the server takes at once
	// (0: smallbody.DefaultConnections), for the budget of small bodies.
	MaxConnections int
	Logger         *slog.Logger
}

// Timeouts of the HTTP server. A request body is at most a few MiB, so a
// minute to read it is generous even on a slow link.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 2 * time.Minute
	// requestTimeout bounds an API request just short of writeTimeout,
	// past which no answer could be written anyway: a CA creation may
	// wait its turn behind other accounts' RSA-4096 keys for a minute or
	// more.
	requestTimeout = writeTimeout - 10*time.Second
	idleTimeout    = 2 * time.Minute
	// maxHeaderBytes bounds a request's line and headers: a signed
	// request's are about 2 KiB (a session token's add up to 4 KiB), a
	// browser's with its cookies a few. Go's default of 1 MiB would let
	// each of an outsider's connections hold a megabyte; 64 KiB let 8,000
	// slow ones take 2.3 GB of a server here, 16 KiB 570 MB (and the
	// connections are bounded too: app.DefaultMaxConnections).
	maxHeaderBytes = 16 << 10
	// readyTimeout bounds the readiness check: a store that hangs is not
	// ready either.
	readyTimeout = 5 * time.Second
)

// Server is an OpenPCA HTTP server.
type Server struct {
	http    *http.Server
	logger  *slog.Logger
	metrics http.Handler
	proxies clientaddr.Proxies // for the client's address in the log
	// unproven samples the lines of requests that proved no signature,
	// and throttled those of requests throttled.
	unproven, throttled *logsample.Sampler
	ocspMaxAge          time.Duration
	// connections is Config.MaxConnections.
	connections int
	// counts are the metrics the server counts itself.
	counts *metrics
	// revocation serves what ServeRevocation does.
	revocation *http.Server
}

// New returns a Server for cfg; Serve starts it.
func New(cfg Config) *Server {
	s := &Server{logger: cfg.Logger, proxies: cfg.TrustedProxies, unproven: logsample.New(), throttled: logsample.New(), ocspMaxAge: cfg.OCSPMaxAge, connections: cfg.MaxConnections}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(registry, cfg.Collectors)
	s.counts = m

	envelope := awsjson.NewEnvelope(cfg.Authenticator, cfg.Logger, func(r *http.Request, o awsjson.Outcome) {
		m.observe(o)
		s.logRequest(r, o)
	}, awsjson.Options{AccountRates: cfg.AccountRates, Proxies: cfg.TrustedProxies, RequestTimeout: requestTimeout})
	api := &awsjson.Handler{Service: cfg.Service, Envelope: envelope, Logger: cfg.Logger}
	mux := http.NewServeMux()
	mux.Handle("/", promhttp.InstrumentHandlerInFlight(m.inFlight, api))
	// Liveness: the process answers. Restarting it would not help a
	// store that fails, so it says nothing of the store.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	// Readiness: whether requests that write can succeed here now; a load
	// balancer sends them elsewhere while not.
	mux.Handle("GET /readyz", &readiness{check: cfg.Ready, logger: cfg.Logger})
	s.metrics = promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	if !cfg.PrivateMetrics {
		mux.Handle("GET /metrics", s.metrics)
	}
	if cfg.Console != nil {
		mux.Handle("/console/", bounded(cfg.Console))
	}
	if cfg.AuditLog != nil {
		handleAuditLog(mux, cfg.AuditLog, envelope)
	}
	revocation := s.revocationRoutes(cfg)
	s.http = s.newHTTP(revocation(mux), cfg.Logger)
	s.revocation = s.newHTTP(revocation(http.NewServeMux()), cfg.Logger)
	return s
}

// newHTTP returns the HTTP server of a listener serving h, bounded and
// paced.
func (s *Server) newHTTP(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           paceAnswers(smallbody.Bound(h)),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Its answer to "OPTIONS *" read the body before the handler, and
		// smallbody.Bound, ran: the mux answers it, 400.
		DisableGeneralOptionsHandler: true,
		// Of net/http's own lines, those of TLS handshakes that failed are
		// of connections anyone can open; a panic's or an accept error's
		// are the server's.
		ErrorLog: slog.NewLogLogger(logsample.Handler{Handler: logger.Handler(), Sampler: logsample.New(),
			Sampled: func(m string) bool { return strings.HasPrefix(m, "http: TLS handshake error") }}, slog.LevelWarn),
	}
}

// revocationRoutes returns what adds to a mux the routes relying parties
// fetch, as cfg has them: the OCSP responder and the embedded object
// store's CRLs; and returns the handler that serves the mux.
func (s *Server) revocationRoutes(cfg Config) func(*http.ServeMux) http.Handler {
	var post, get http.HandlerFunc
	if cfg.OCSP != nil {
		post, get = s.ocspHandlers(cfg.OCSP)
	}
	return func(mux *http.ServeMux) http.Handler {
		if cfg.LocalObjects != nil {
			s.handleLocalCRLs(mux, cfg.LocalObjects)
		}
		if cfg.OCSP == nil {
			return mux
		}
		mux.HandleFunc("POST "+PathOCSP, post)
		mux.HandleFunc("GET "+PathOCSP+"/", get)
		// The mux cleans a path with "//" in it by redirecting to it
		// without, and base64 that a client left unescaped can have "//":
		// the redirect would ask about another certificate, or none.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasPrefix(r.URL.EscapedPath(), PathOCSP+"/") {
				get(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
}

// Metrics serves GET /metrics, the Prometheus metrics, and nothing else
// (404, 405), for a listener of its own (--metrics-listen): its answers,
// all of them, are paced as the API's listener's are, for the listener
// bounds its connections, not how long an answer left unread holds one.
func (s *Server) Metrics() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics)
	return paceAnswers(mux)
}

// slowAbandoned is how long a request whose client gave up on it ran
// before its line is a warning: as long as no request but a CA creation
// takes.
const slowAbandoned = 10 * time.Second

// logRequest writes a request's log line: sampled for a request that
// proved no signature, and for one throttled (past its account's rate, or
// its creations at once: an account that sends thousands a second past
// its rate wrote a line each, 1.4 MB of log a second); at ERROR for a
// failure of the server's own, at WARN for one it answered as unavailable
// (busy, or a key store away: anyone who knows a key id can have the
// server refuse a body it has no room for), and for one whose client gave
// up on it after slowAbandoned.
func (s *Server) logRequest(r *http.Request, o awsjson.Outcome) {
	var held []slog.Attr
	var sampler *logsample.Sampler
	switch {
	case o.Code == openpca.CodeThrottling:
		sampler = s.throttled
	case o.Key == "":
		sampler = s.unproven
	}
	if sampler != nil {
		var ok bool
		if ok, held = sampler.Allow(); !ok {
			return
		}
	}
	level := slog.LevelInfo
	switch {
	case o.Status == http.StatusInternalServerError:
		level = slog.LevelError
	case o.Status >= 500:
		level = slog.LevelWarn
	case o.Status == awsjson.StatusClientClosed && o.Duration >= slowAbandoned:
		// A client that gave up waiting: what was slow may be the server,
		// or what it waits on (a key store, an object store).
		level = slog.LevelWarn
	}
	// A slice of its own, which the held-back count rarely grows: built
	// onto held, every request's line cost an allocation more.
	attrs := []slog.Attr{
		slog.String("request_id", o.RequestID),
		slog.String("operation", o.Operation),
		slog.String("account", o.AccountID),
		slog.String("key", o.Key),
		slog.Int("status", o.Status),
		slog.String("error_code", o.Code),
		slog.Float64("latency_ms", float64(o.Duration.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
		slog.String("client", s.proxies.Nearest(r).String()),
	}
	if held != nil {
		attrs = append(attrs, held...)
	}
	s.logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// Serve answers requests on l until Shutdown, with its http.Server given
// to limit first, if not nil (connlimit.Listener.Limit, which follows
// each connection's state and requests). It returns nil after a graceful
// shutdown.
func (s *Server) Serve(l net.Listener, limit func(*http.Server)) error {
	return serve(s.http, l, limit)
}

func serve(srv *http.Server, l net.Listener, limit func(*http.Server)) error {
	if limit != nil {
		limit(srv)
	}
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeRevocation serves the OCSP responder and the embedded object
// store's CRLs, and nothing else (404), on l, a listener of their own in
// plain HTTP (--revocation-listen), until Shutdown: relying parties fetch
// them over HTTP (RFC 5280, RFC 6960), and NSS and GnuTLS fetch no OCSP
// answer over HTTPS, which took a revoked certificate for good. Its
// answers are bounded and paced as the API's are.
func (s *Server) ServeRevocation(l net.Listener, limit func(*http.Server)) error {
	return serve(s.revocation, l, limit)
}

// Shutdown stops accepting requests and waits for the requests in flight
// to finish or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	// Both at once: the revocation listener's requests (OCSP answers,
	// which sign) stop as the API's do, and are waited for as long.
	revocation := make(chan error, 1)
	go func() { revocation <- s.revocation.Shutdown(ctx) }()
	return errors.Join(s.http.Shutdown(ctx), <-revocation)
}

// readiness answers /readyz. Why the store is not ready goes to the log,
// once each time the reason changes, and not to whoever asks: the reason
// can name the database, its user and its address.
type readiness struct {
	check  func(context.Context) error // nil: always ready
	logger *slog.Logger

	mu   sync.Mutex
	last string // the reason logged last; "" while ready
}

func (h *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err error
	if h.check != nil {
		// Not the request's context: a prober that hangs up at once
		// would fail the check for everyone, and a check that failed
		// stands for a second (a load balancer then took a healthy
		// server out of service for anyone who hung up 20 times a
		// second).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), readyTimeout)
		defer cancel()
		err = h.check(ctx)
	}
	h.note(err)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: the store does not make writes durable; the server's log says why\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// note logs a change of readiness.
func (h *readiness) note(err error) {
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if reason == h.last {
		return
	}
	if h.last = reason; err != nil {
		h.logger.Warn("not ready: the store does not make writes durable", "err", err)
	} else {
		h.logger.Info("ready: the store makes writes durable again")
	}
}

// bounded runs h with requests whose context ends after requestTimeout,
// as the API's do: a database that stops answering holds no page for
// good.
func bounded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
