package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/internal/logsample"
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

// TestRequestLogLevels: a request's line is at ERROR for the server's own
// failure, at WARN for a 503 and for a request whose client gave up on it
// after slowAbandoned, at INFO otherwise.
func TestRequestLogLevels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome awsjson.Outcome
		level   string
	}{
		{"answered", awsjson.Outcome{Status: http.StatusOK}, "INFO"},
		{"an internal failure", awsjson.Outcome{Status: http.StatusInternalServerError}, "ERROR"},
		{"unavailable", awsjson.Outcome{Status: http.StatusServiceUnavailable}, "WARN"},
		{"given up on at once", awsjson.Outcome{Status: awsjson.StatusClientClosed, Duration: time.Second}, "INFO"},
		{"given up on after a wait", awsjson.Outcome{Status: awsjson.StatusClientClosed, Duration: slowAbandoned}, "WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{logger: slog.New(slog.NewTextHandler(&logs, nil)), unproven: logsample.New()}
			tc.outcome.Key = "AKID" // a signed request's line is not sampled
			s.logRequest(httptest.NewRequest(http.MethodPost, "/", nil), tc.outcome)
			if !strings.Contains(logs.String(), "level="+tc.level+" ") {
				t.Errorf("the line: %s; want it at %s", logs.String(), tc.level)
			}
		})
	}
}
