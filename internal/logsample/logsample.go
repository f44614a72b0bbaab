// Package logsample lets through a few log lines a second of a kind
// anyone can cause without a secret (a request that proved no signature,
// a TLS handshake that failed, a sign-in refused), and counts those it
// holds back, which the next line let through reports as held_back: an
// outsider sending 20,000 unsigned requests a second wrote 6 MB of log a
// second, 500 GB a day.
package logsample

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Rate and Burst are what a Sampler of New lets through: 20 lines a
// second, in bursts of 100.
const (
	Rate  = 20
	Burst = 100
)

// Sampler lets through a few lines a second of one kind.
type Sampler struct {
	lim  *rate.Limiter
	held atomic.Int64
}

// New returns a Sampler of Rate lines a second, in bursts of Burst.
func New() *Sampler { return &Sampler{lim: rate.NewLimiter(Rate, Burst)} }

// Allow reports whether a line may be written now, with the attribute
// that counts the lines held back since the last (none if none were).
func (s *Sampler) Allow() (bool, []slog.Attr) {
	if !s.lim.Allow() {
		s.held.Add(1)
		return false, nil
	}
	if n := s.held.Swap(0); n > 0 {
		return true, []slog.Attr{slog.Int64("held_back", n)}
	}
	return true, nil
}

// Handler writes what its Sampler lets through of the lines Sampled picks
// (all if nil), and every other line.
type Handler struct {
	slog.Handler
	Sampler *Sampler
	Sampled func(message string) bool
}

func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if h.Sampled != nil && !h.Sampled(r.Message) {
		return h.Handler.Handle(ctx, r)
	}
	ok, held := h.Sampler.Allow()
	if !ok {
		return nil
	}
	r.AddAttrs(held...)
	return h.Handler.Handle(ctx, r)
}

func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs), h.Sampler, h.Sampled}
}

func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{h.Handler.WithGroup(name), h.Sampler, h.Sampled}
}

// Logger returns a logger of l's handler that writes what a Sampler of its
// own lets through of its lines, all of them sampled.
func Logger(l *slog.Logger) *slog.Logger {
	return slog.New(Handler{Handler: l.Handler(), Sampler: New()})
}
