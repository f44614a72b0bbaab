package server

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Log lines of a kind anyone can cause without a secret (a request that
// proved no signature, a TLS handshake that failed) are let through at
// sampleRate a second, in bursts of sampleBurst: an outsider sending 20,000
// unsigned requests a second wrote 6 MB of log a second, 500 GB a day.
const (
	sampleRate  = 20
	sampleBurst = 100
)

// sampler lets through a few lines a second of one kind, and counts those
// it holds back, which the next line let through reports as held_back.
type sampler struct {
	lim  *rate.Limiter
	held atomic.Int64
}

func newSampler() *sampler { return &sampler{lim: rate.NewLimiter(sampleRate, sampleBurst)} }

// allow reports whether a line may be written now, with the attribute
// that counts the lines held back since the last (none if none were).
func (s *sampler) allow() (bool, []slog.Attr) {
	if !s.lim.Allow() {
		s.held.Add(1)
		return false, nil
	}
	if n := s.held.Swap(0); n > 0 {
		return true, []slog.Attr{slog.Int64("held_back", n)}
	}
	return true, nil
}

// sampledHandler writes what a sampler lets through.
type sampledHandler struct {
	slog.Handler
	s *sampler
}

func (h sampledHandler) Handle(ctx context.Context, r slog.Record) error {
	ok, held := h.s.allow()
	if !ok {
		return nil
	}
	r.AddAttrs(held...)
	return h.Handler.Handle(ctx, r)
}

func (h sampledHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sampledHandler{h.Handler.WithAttrs(attrs), h.s}
}

func (h sampledHandler) WithGroup(name string) slog.Handler {
	return sampledHandler{h.Handler.WithGroup(name), h.s}
}
