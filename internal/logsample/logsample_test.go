package logsample

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestHandler: of the lines picked, a burst is written and the rest held
// back, the next line written counting them; a line not picked is always
// written.
func TestHandler(t *testing.T) {
	var out strings.Builder
	logger := slog.New(Handler{Handler: slog.NewTextHandler(&out, nil), Sampler: New(), Sampled: func(m string) bool { return strings.HasPrefix(m, "noise") }})
	start := time.Now()
	for range 10 * Burst {
		logger.Warn("noise from anyone")
	}
	logger.Error("the server's own")
	most := Burst + int(Rate*time.Since(start).Seconds()) + 1
	if n := strings.Count(out.String(), "noise from anyone"); n < Burst || n > most {
		t.Errorf("%d lines of %d written, want %d to %d", n, 10*Burst, Burst, most)
	}
	if !strings.Contains(out.String(), "the server's own") {
		t.Error("a line not picked was held back")
	}
	time.Sleep(time.Second / Rate * 2)
	logger.Warn("noise again")
	if !strings.Contains(out.String(), `msg="noise again" held_back=`) {
		t.Errorf("the line after those held back does not count them:\n%s", out.String()[max(0, out.Len()-300):])
	}
}
