package authority

import (
	"fmt"
	"strconv"
	"time"

	"github.com/openpca/openpca"
)

// maxTime bounds validity ends: X.509 cannot encode years past 9999.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// addMonths is t n calendar months later, on the same day of the month,
// or on the month's last day if it has fewer: a month after January 31 is
// the end of February, not March 3 as time.AddDate makes it, and a year
// after February 29 is February 28. (AWS does not say; this is how
// calendar arithmetic commonly reads, Java's plusMonths among others, and
// a validity of N months never runs into the month after.)
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}

// notAfter is the end of validity that v asks for, counted from issued.
func notAfter(v *openpca.Validity, issued time.Time) (time.Time, error) {
	n := v.Value
	var t time.Time
	switch v.Type {
	case openpca.ValidityPeriodTypeDays, openpca.ValidityPeriodTypeMonths, openpca.ValidityPeriodTypeYears:
		// Past 10,000 years the end is beyond maxTime whatever the unit,
		// and AddDate would overflow.
		if n > 10000*366 {
			return time.Time{}, fmt.Errorf("Validity %d %s ends after the year 9999", n, v.Type)
		}
		switch v.Type {
		case openpca.ValidityPeriodTypeDays:
			t = issued.AddDate(0, 0, int(n))
		case openpca.ValidityPeriodTypeMonths:
			t = addMonths(issued, int(n))
		default:
			t = addMonths(issued, 12*int(n))
		}
	case openpca.ValidityPeriodTypeAbsolute:
		if n > maxTime.Unix() {
			return time.Time{}, fmt.Errorf("Validity ABSOLUTE %d ends after the year 9999", n)
		}
		t = time.Unix(n, 0)
	case openpca.ValidityPeriodTypeEndDate:
		var err error
		if t, err = parseEndDate(n); err != nil {
			return time.Time{}, err
		}
	default:
		return time.Time{}, fmt.Errorf("Validity type %q is not supported", v.Type)
	}
	if t.After(maxTime) {
		return time.Time{}, fmt.Errorf("Validity ends after the year 9999")
	}
	return t.UTC(), nil
}

// parseEndDate reads an END_DATE value: UTCTime digits YYMMDDHHMMSS (years
// 50–99 are 19YY, 00–49 are 20YY) or GeneralizedTime digits YYYYMMDDHHMMSS.
func parseEndDate(n int64) (time.Time, error) {
	s := strconv.FormatInt(n, 10)
	switch len(s) {
	case 11, 12: // UTCTime; a year 00–09 loses its leading zero in a number
		s = fmt.Sprintf("%012d", n)
		century := "20"
		if s[:2] >= "50" {
			century = "19"
		}
		s = century + s
	case 14:
	default:
		return time.Time{}, fmt.Errorf("Validity END_DATE %d is neither YYMMDDHHMMSS nor YYYYMMDDHHMMSS", n)
	}
	t, err := time.Parse("20060102150405", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("Validity END_DATE %d is not a valid date and time", n)
	}
	return t, nil
}

// notBefore is the start of validity: ValidityNotBefore, an explicit
// ABSOLUTE time, or by default an hour before issuance, which allows for
// clocks that run behind.
func notBefore(v *openpca.Validity, issued time.Time) (time.Time, error) {
	if v == nil {
		return issued.Add(-time.Hour).UTC(), nil
	}
	if v.Type != openpca.ValidityPeriodTypeAbsolute {
		return time.Time{}, fmt.Errorf("ValidityNotBefore must have Type ABSOLUTE, not %s", v.Type)
	}
	if v.Value > maxTime.Unix() {
		return time.Time{}, fmt.Errorf("ValidityNotBefore is after the year 9999")
	}
	return time.Unix(v.Value, 0).UTC(), nil
}
