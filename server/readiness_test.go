package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReadinessOutlivesItsProber: a prober that hangs up does not end the
// readiness check (whose failure would stand for everyone's probes).
func TestReadinessOutlivesItsProber(t *testing.T) {
	h := &readiness{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), check: func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the check has no deadline")
		}
		return ctx.Err()
	}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the prober hung up
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
	if w.Code != http.StatusOK {
		t.Errorf("/readyz for a prober that hung up: %d, want the check's own answer, 200", w.Code)
	}
}
