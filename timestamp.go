package openpca

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Timestamp is a point in time as the AWS JSON protocol carries it: a number
// of seconds since the Unix epoch, with a fraction for milliseconds.
type Timestamp struct{ time.Time }

// NewTimestamp returns t as a *Timestamp, or nil when t is the zero time, so
// that an unset time is left out of a response.
func NewTimestamp(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t}
}

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: not epoch seconds", b)
	}
	sec := int64(f)
	t.Time = time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Millisecond).UTC()
	return nil
}
