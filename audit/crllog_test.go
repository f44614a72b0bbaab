package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// TestVerifyCRLRecords: what a CRL's record says it lists is held to the
// log's revocations. The fixture's log revokes its certificates 0 and 5
// (entries 11 and 12), and the test its certificate 2 (entry 14), between
// CRL 1 (entry 13) and CRL 2 (entry 15).
func TestVerifyCRLRecords(t *testing.T) {
	base := newLogFixture(t, 10, openpca.AuditReportResponseFormatJson)
	// marked is the record of CRL number signed at thisUpdate, which says
	// it lists the certificates revoked before entry before that expire
	// from expiringFrom on, and, if from is not nil, those revoked from
	// entry from on whatever their end; it lists those of rows.
	marked := func(f *logFixture, number int64, thisUpdate time.Time, before int64, from *int64, expiringFrom time.Time, rows ...int) []byte {
		var list pki.RevokedCertificates
		for _, i := range rows {
			c := f.rows[i]
			serial, _ := new(big.Int).SetString(c.Serial, 16)
			if err := list.Add(serial, c.RevokedAt, pki.CRLReason(c.RevocationReason)); err != nil {
				t.Fatal(err)
			}
		}
		entries := &openpca.CRLEntries{RevocationsBefore: before, RevocationsFrom: from, ExpiringFrom: expiringFrom, Count: list.Len(), SHA256: list.SHA256()}
		return openpca.CRLUse(f.ca, number, thisUpdate, thisUpdate.Add(24*time.Hour), entries, []byte("crl")).Record
	}
	// crl is such a record that does not say what it lists whatever the
	// end, as the versions before revocationsFrom wrote them.
	crl := func(f *logFixture, number int64, thisUpdate time.Time, before int64, expiringFrom time.Time, rows ...int) []byte {
		return marked(f, number, thisUpdate, before, nil, expiringFrom, rows...)
	}
	first := base.rows[0].IssuedAt.Truncate(time.Second).Add(2 * time.Hour)
	second := first.Add(time.Hour)
	expiry := base.rows[9].NotAfter // the latest; every certificate ends in the same second
	if !base.rows[0].NotAfter.Equal(expiry) {
		t.Fatal("the fixture's certificates end at different times")
	}
	// logged returns the fixture with CRL 1, certificate 2's revocation,
	// and then records.
	// endingEarly is base with its certificate i (issued at entry i+1)
	// ending at e0, a day before the rest.
	e0 := expiry.AddDate(0, 0, -1)
	endingEarly := func(i int) *logFixture {
		f := *base
		f.rows = slices.Clone(base.rows)
		c := *base.rows[i]
		c.NotAfter = e0
		f.rows[i] = &c
		f.records = slices.Clone(base.records)
		if f.records[i+1] = openpca.IssueUse(base.ca.ARN, &c).Record; !strings.Contains(string(f.records[i+1]), c.Serial) {
			t.Fatalf("entry %d is not the issuance of certificate %d", i+1, i)
		}
		return &f
	}
	early := endingEarly(0)
	loggedOn := func(base *logFixture, records ...func(f *logFixture) []byte) *logFixture {
		f := *base
		f.rows = make([]*openpca.Certificate, len(base.rows))
		for i, c := range base.rows {
			copied := *c
			f.rows[i] = &copied
		}
		f.records = append(f.records[:len(f.records):len(f.records)], crl(&f, 1, first, 13, first, 0, 5))
		c := f.rows[2]
		c.RevokedAt, c.RevocationReason = first.Add(time.Minute), openpca.RevocationReasonSuperseded
		f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, c, c.RevokedAt, c.RevocationReason, "account:111122223333", "req").Record)
		for _, r := range records {
			f.records = append(f.records, r(&f))
		}
		return &f
	}
	logged := func(records ...func(f *logFixture) []byte) *logFixture { return loggedOn(base, records...) }
	second2 := func(before int64, expiringFrom time.Time, rows ...int) func(f *logFixture) []byte {
		return func(f *logFixture) []byte { return crl(f, 2, second, before, expiringFrom, rows...) }
	}
	cases := []struct {
		name string
		f    *logFixture
		want string // in the only problem; "": none
	}{
		{"every revocation", logged(second2(15, first, 0, 5, 2)), ""},
		{"one logged after the previous CRL left for the next", logged(second2(14, first, 0, 5)), ""},
		{"a revocation left out", logged(second2(15, first, 0, 2)), "signs CRL 2, which lists 2 certificates"},
		{"one listed the log has not revoked", logged(second2(15, first, 0, 5, 2, 3)), "signs CRL 2, which lists 4 certificates"},
		{"another order", logged(second2(15, first, 5, 0, 2)), "signs CRL 2, which lists 3 certificates"},
		{"revocations before the previous CRL", logged(second2(13, first, 0, 5)), "lists the revocations before entry 13: not after the CA's previous CRL (entry 13)"},
		{"revocations after its own entry", logged(second2(16, first, 0, 5, 2)), "lists the revocations before entry 16"},
		// A certificate that expired between the CRL before and this one
		// would be on no CRL past its end; where none did, none is left
		// out (an earlier version's first CRL written, after others were
		// not).
		{"expiring from its thisUpdate, none expired since the CRL before", logged(second2(15, second, 0, 5, 2)), ""},
		{"expiring from its thisUpdate, one expired since the CRL before", loggedOn(early,
			second2(15, first, 0, 5, 2),
			func(f *logFixture) []byte { return crl(f, 3, e0.Add(time.Hour), 16, e0.Add(time.Hour), 5, 2) }),
			"after the CA's CRLs before it (the latest not after its own of " + second.Format(time.RFC3339) + "), so that it leaves out certificate " + base.rows[0].Serial},
		{"expiring from earlier than the CRL before (a clock set back)", logged(
			func(f *logFixture) []byte { return crl(f, 2, expiry.Add(time.Hour), 15, first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 3, expiry.Add(2*time.Hour), 16, expiry.Add(time.Hour)) },
			func(f *logFixture) []byte {
				return crl(f, 4, expiry.Add(-time.Hour), 17, expiry.Add(-time.Hour), 0, 5, 2)
			}), ""},
		// Held to the latest CRL before it, not the last: a clock set
		// back dated the last before the one signed earlier. Certificate 0
		// expired between the two, and was listed past its end.
		{"one revoked after what it lists, expired since the CRL before", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return crl(f, 2, e0.Add(time.Hour), 14, e0.Add(time.Hour), 0, 5) }), ""},
		// The server lists a revocation the CRL before did not read once,
		// from its certificate's end, which may be before that CRL.
		{"one read late, of a certificate that ended before the CRL before, listed from its end", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return crl(f, 2, e0.Add(time.Hour), 14, first, 0, 5) },
			func(f *logFixture) []byte { return crl(f, 3, e0.Add(2*time.Hour), 16, e0, 0, 5, 2) }), ""},
		// One that says it lists those the CRL before did not read whatever
		// their end is held to it.
		{"marked, one read late listed from its end", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return marked(f, 2, e0.Add(time.Hour), 14, new(int64(13)), first, 0, 5) },
			func(f *logFixture) []byte { return marked(f, 3, e0.Add(2*time.Hour), 16, new(int64(14)), e0, 0, 5, 2) }), ""},
		{"marked, one read late left out as expired", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return marked(f, 2, e0.Add(time.Hour), 14, new(int64(13)), first, 0, 5) },
			func(f *logFixture) []byte {
				return marked(f, 3, e0.Add(2*time.Hour), 16, new(int64(14)), e0.Add(time.Hour), 0, 5)
			}),
			"signs CRL 3, which lists the certificates that expire from " + e0.Add(time.Hour).Format(time.RFC3339) + " on, and says it lists whatever their end those revoked from entry 14 on: it leaves out certificate " + base.rows[2].Serial},
		{"marked from before what the CRL before read (a server of the version before signed it)", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return crl(f, 2, e0.Add(time.Hour), 14, first, 0, 5) },
			func(f *logFixture) []byte { return marked(f, 3, e0.Add(2*time.Hour), 16, new(int64(13)), e0, 0, 5, 2) }), ""},
		{"marked from before what the CRL before read, leaving out one it says it lists", loggedOn(endingEarly(2),
			func(f *logFixture) []byte { return marked(f, 2, e0.Add(time.Hour), 15, new(int64(13)), first, 0, 5, 2) },
			func(f *logFixture) []byte {
				return marked(f, 3, e0.Add(2*time.Hour), 16, new(int64(13)), e0.Add(time.Hour), 0, 5)
			}),
			"signs CRL 3, which lists the certificates that expire from " + e0.Add(time.Hour).Format(time.RFC3339) + " on, and says it lists whatever their end those revoked from entry 13 on: it leaves out certificate " + base.rows[2].Serial},
		// A CRL's problem is its own: the next, which takes on from what
		// it read, is not held to what the one before read.
		{"one that left one out, and the next", logged(
			func(f *logFixture) []byte { return marked(f, 2, second, 15, new(int64(13)), first, 0, 5) },
			func(f *logFixture) []byte {
				return marked(f, 3, second.Add(time.Hour), 16, new(int64(15)), first, 0, 5, 2)
			},
			func(f *logFixture) []byte {
				return marked(f, 4, second.Add(2*time.Hour), 17, new(int64(16)), first, 0, 5, 2)
			}), "signs CRL 2, which lists 2 certificates"},
		{"marked from after what the CRL before read", logged(
			func(f *logFixture) []byte { return marked(f, 2, second, 15, new(int64(14)), first, 0, 5, 2) }),
			"signs CRL 2, which lists the revocations from entry 14 on whatever their end: not a CRL after another, or after what the CA's previous CRL read (those before entry 13)"},
		{"not marked, after one that was", logged(
			func(f *logFixture) []byte { return marked(f, 2, second, 15, new(int64(13)), first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 3, second.Add(time.Hour), 16, first, 0, 5, 2) }),
			"signs CRL 3, whose record does not say from which entry it lists revocations whatever their end, after CRLs of the CA that did"},
		{"expiring from the latest CRL before it, after the last", loggedOn(early,
			func(f *logFixture) []byte { return crl(f, 2, e0.Add(time.Hour), 15, first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 3, e0.Add(-time.Hour), 16, e0.Add(-time.Hour), 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 4, e0.Add(2*time.Hour), 17, e0.Add(time.Hour), 5, 2) }), ""},
		// One CRL dated ahead does not let those before its date drop
		// certificates as they expire.
		{"expiring from its thisUpdate, after a CRL dated ahead", loggedOn(early,
			func(f *logFixture) []byte { return crl(f, 2, e0.AddDate(0, 0, 20), 15, first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 3, e0.Add(time.Hour), 16, e0.Add(time.Hour), 5, 2) }),
			"signs CRL 3, which lists the certificates that expire from " + e0.Add(time.Hour).Format(time.RFC3339) + " on: after the CA's CRLs before it (the latest not after its own of " + first.Format(time.RFC3339)},
		{"expiring from after the latest CRL before it", loggedOn(early,
			func(f *logFixture) []byte { return crl(f, 2, e0.Add(-time.Hour), 15, first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 3, e0.Add(-2*time.Hour), 16, e0.Add(-2*time.Hour), 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 4, e0.Add(time.Hour), 17, e0.Add(time.Second), 5, 2) }),
			"signs CRL 4, which lists the certificates that expire from"},
		{"expiring from after its own thisUpdate", logged(func(f *logFixture) []byte { return crl(f, 2, first, 15, first.Add(time.Second), 0, 5, 2) }), "after its thisUpdate"},
		{"ending as the previous CRL began, listed", logged(
			func(f *logFixture) []byte { return crl(f, 2, expiry, 14, first, 0, 5) },
			func(f *logFixture) []byte { return crl(f, 3, expiry.Add(time.Hour), 16, expiry, 0, 5, 2) }), ""},
		{"another count", logged(func(f *logFixture) []byte {
			var r openpca.KeyUseRecord
			if err := decodeRecord(second2(15, first, 0, 5, 2)(f), &r); err != nil {
				t.Fatal(err)
			}
			*r.Revoked = 4
			return marshalRecord(t, &r)
		}), "signs CRL 2, which lists 4 certificates"},
		{"expired before the previous CRL, left out", logged(
			second2(15, first, 0, 5, 2),
			func(f *logFixture) []byte { return crl(f, 3, expiry.Add(time.Hour), 16, first, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 4, expiry.Add(2*time.Hour), 17, expiry.Add(time.Second)) }), ""},
		{"one expired, listed on one CRL past its end, the others to theirs", loggedOn(early,
			second2(15, first, 0, 5, 2),
			func(f *logFixture) []byte { return crl(f, 3, expiry.Add(time.Hour), 16, second, 0, 5, 2) },
			func(f *logFixture) []byte { return crl(f, 4, expiry.Add(2*time.Hour), 17, expiry, 5, 2) }), ""},
		{"expired before the previous CRL, listed", logged(
			second2(15, first, 0, 5, 2),
			func(f *logFixture) []byte { return crl(f, 3, expiry.Add(time.Hour), 16, first, 0, 5, 2) },
			func(f *logFixture) []byte {
				return crl(f, 4, expiry.Add(2*time.Hour), 17, expiry.Add(time.Second), 0, 5, 2)
			}), "signs CRL 4, which lists 3 certificates"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			report, proof := tc.f.write(t)
			v := Verify(bytes.NewReader(report), bytes.NewReader(proof), tc.f.vkey)
			switch {
			case tc.want == "" && len(v.Problems) > 0:
				t.Errorf("problems: %v", v.Problems)
			case tc.want != "" && (len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Detail, tc.want)):
				t.Errorf("problems: %v; want one saying %q", v.Problems, tc.want)
			}
			if slices.ContainsFunc(v.Notes, func(n string) bool { return strings.Contains(n, "CRL") }) {
				t.Errorf("notes: %v", v.Notes)
			}
		})
	}

	// A log of one CRL, which leaves out a revocation.
	one := *base
	one.records = append(one.records[:len(one.records):len(one.records)], crl(&one, 1, first, 13, first, 0))
	report, proof := one.write(t)
	if v := Verify(bytes.NewReader(report), bytes.NewReader(proof), one.vkey); len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Detail, "signs CRL 1, which lists 1 certificates") {
		t.Errorf("a log of one CRL, which leaves out a revocation: %v", v.Problems)
	}

	// A CA's first CRL lists what is valid: it says nothing of those
	// whatever their end.
	first1 := *base
	first1.records = append(first1.records[:len(first1.records):len(first1.records)], marked(&first1, 1, first, 13, new(int64(0)), first, 0, 5))
	report, proof = first1.write(t)
	if v := Verify(bytes.NewReader(report), bytes.NewReader(proof), first1.vkey); len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Detail, "signs CRL 1, which lists the revocations from entry 0 on whatever their end: not a CRL after another") {
		t.Errorf("a first CRL that says it lists some whatever their end: %v", v.Problems)
	}

	// A record written before records said what their CRL lists is
	// noted, and its CRL is the previous one of the next; after one that
	// said it, it is a problem (else a server could drop back to them,
	// and its CRLs leave out what they would). One that says it in part
	// is a problem too.
	earlier := func(f *logFixture, number int64, thisUpdate time.Time, before *int64) []byte {
		var r openpca.KeyUseRecord
		if err := decodeRecord(openpca.CRLUse(f.ca, number, thisUpdate, thisUpdate, &openpca.CRLEntries{}, nil).Record, &r); err != nil {
			t.Fatal(err)
		}
		r.RevocationsBefore, r.ExpiringFrom, r.EntriesSHA256 = before, "", ""
		return marshalRecord(t, &r)
	}
	for _, tc := range []struct {
		name    string
		records []func(f *logFixture) []byte
		want    string // in the only problem
		noted   bool
	}{
		{"first, then one that says what it lists", []func(f *logFixture) []byte{
			func(f *logFixture) []byte { return earlier(f, 1, first, nil) },
			func(f *logFixture) []byte { return crl(f, 2, second, 13, first, 0, 5) },
		}, "signs CRL 2, which lists the revocations before entry 13: not after the CA's previous CRL (entry 13)", true},
		{"after one that says what it lists", []func(f *logFixture) []byte{
			func(f *logFixture) []byte { return crl(f, 1, first, 13, first, 0, 5) },
			func(f *logFixture) []byte { return earlier(f, 2, second, nil) },
		}, "signs CRL 2, whose record does not say what the CRL lists, after CRLs of the CA that did", false},
		{"in part", []func(f *logFixture) []byte{
			func(f *logFixture) []byte { return earlier(f, 1, first, new(int64(13))) },
		}, "signs CRL 1, whose record says what the CRL lists in part", false},
	} {
		f := *base
		f.records = f.records[:len(f.records):len(f.records)]
		for _, r := range tc.records {
			f.records = append(f.records, r(&f))
		}
		report, proof = f.write(t)
		v := Verify(bytes.NewReader(report), bytes.NewReader(proof), f.vkey)
		noted := slices.ContainsFunc(v.Notes, func(n string) bool {
			return strings.Contains(n, "1 CRLs were signed by a version that did not log what they list")
		})
		if len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Detail, tc.want) || noted != tc.noted {
			t.Errorf("a record that does not say what its CRL lists, %s: problems %v, notes %v", tc.name, v.Problems, v.Notes)
		}
	}
}

// marshalRecord writes r as a server writes records (FuzzAppendRecord
// holds openpca's writer to encoding/json's).
func marshalRecord(t *testing.T, r *openpca.KeyUseRecord) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMinTree: the least of each run of places, and the first place of
// one below a value, are what a scan finds, as values are set in any
// order.
func TestMinTree(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 40; n++ {
		tree, values := newMinTree(n), make([]int64, n)
		for i := range values {
			values[i] = math.MaxInt64
		}
		for step := range 3 * n {
			p, v := rnd.IntN(n), rnd.Int64N(12)-3
			if v == 8 {
				v = math.MaxInt64
			}
			tree.set(p, v)
			values[p] = v
			for lo := 0; lo <= n; lo++ {
				for hi := lo; hi <= n; hi++ {
					want, first := int64(math.MaxInt64), -1
					for i, v := range values[lo:hi] {
						want = min(want, v)
						if first < 0 && v < 2 {
							first = lo + i
						}
					}
					if got := tree.min(lo, hi); got != want {
						t.Fatalf("n %d, after %d sets: the least of [%d, %d) is %d, want %d", n, step+1, lo, hi, got, want)
					}
					if got := tree.firstBelow(lo, hi, 2); got != first {
						t.Fatalf("n %d, after %d sets: the first of [%d, %d) below 2 is %d, want %d", n, step+1, lo, hi, got, first)
					}
				}
			}
		}
	}
}
