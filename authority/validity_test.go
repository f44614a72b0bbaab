package authority

import (
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestCalendarValidity: MONTHS and YEARS count calendar months, ending on
// the last day of a shorter month rather than in the month after.
func TestCalendarValidity(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		issued string
		typ    openpca.ValidityPeriodType
		n      int64
		want   string
	}{
		{"2026-01-31 10:00:00", openpca.ValidityPeriodTypeMonths, 1, "2026-02-28 10:00:00"},
		{"2028-01-31 10:00:00", openpca.ValidityPeriodTypeMonths, 1, "2028-02-29 10:00:00"},
		{"2026-03-31 23:59:59", openpca.ValidityPeriodTypeMonths, 1, "2026-04-30 23:59:59"},
		{"2026-03-31 00:00:00", openpca.ValidityPeriodTypeMonths, 2, "2026-05-31 00:00:00"},
		{"2026-12-15 08:30:00", openpca.ValidityPeriodTypeMonths, 13, "2028-01-15 08:30:00"},
		{"2026-08-31 12:00:00", openpca.ValidityPeriodTypeMonths, 18, "2028-02-29 12:00:00"},
		{"2028-02-29 12:00:00", openpca.ValidityPeriodTypeYears, 1, "2029-02-28 12:00:00"},
		{"2028-02-29 12:00:00", openpca.ValidityPeriodTypeYears, 4, "2032-02-29 12:00:00"},
		{"2026-06-30 12:00:00", openpca.ValidityPeriodTypeYears, 10, "2036-06-30 12:00:00"},
		{"2026-01-31 10:00:00", openpca.ValidityPeriodTypeDays, 30, "2026-03-02 10:00:00"},
	} {
		got, err := notAfter(&openpca.Validity{Type: tc.typ, Value: tc.n}, at(tc.issued))
		if err != nil || !got.Equal(at(tc.want)) {
			t.Errorf("%s + %d %s: %v, %v; want %s", tc.issued, tc.n, tc.typ, got, err, tc.want)
		}
	}
}
