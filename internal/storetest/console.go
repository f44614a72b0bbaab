package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// testConsoleSessions: a session is found by its hash until it expires or
// ends; ending one also sweeps the expired.
func testConsoleSessions(t *testing.T, s openpca.Store) {
	t0 := now()
	a := &openpca.ConsoleSession{IDHash: []byte("hash-a"), KeyID: "OPCAKEY", CSRF: "csrf-a", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	b := &openpca.ConsoleSession{IDHash: []byte("hash-b"), KeyID: "OPCAKEY", CSRF: "csrf-b", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	for _, sess := range []*openpca.ConsoleSession{a, b} {
		if err := s.CreateConsoleSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.FindConsoleSession(ctx, a.IDHash, t0); err != nil || got.KeyID != "OPCAKEY" || got.CSRF != "csrf-a" || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("the session: %+v, %v", got, err)
	}
	if _, err := s.FindConsoleSession(ctx, b.IDHash, t0.Add(2*time.Minute)); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("an expired session was found: %v", err)
	}
	if _, err := s.FindConsoleSession(ctx, []byte("unknown"), t0); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("an unknown session was found: %v", err)
	}
	// A session's expiry moves later, never earlier.
	if err := s.ExtendConsoleSession(ctx, a.IDHash, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ExtendConsoleSession(ctx, a.IDHash, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindConsoleSession(ctx, a.IDHash, t0.Add(150*time.Minute)); err != nil || !got.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("the extended session: %+v, %v", got, err)
	}
	if err := s.DeleteConsoleSession(ctx, a.IDHash, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, sess := range []*openpca.ConsoleSession{a, b} {
		if _, err := s.FindConsoleSession(ctx, sess.IDHash, t0); !errors.Is(err, openpca.ErrNotFound) {
			t.Errorf("session %s outlived its end or expiry: %v", sess.IDHash, err)
		}
	}
	// A new session sweeps the expired ones too.
	old := &openpca.ConsoleSession{IDHash: []byte("hash-old"), KeyID: "OPCAKEY", CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	if err := s.CreateConsoleSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	later := &openpca.ConsoleSession{IDHash: []byte("hash-new"), KeyID: "OPCAKEY", CSRF: "c", CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour)}
	if err := s.CreateConsoleSession(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindConsoleSession(ctx, old.IDHash, t0); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("an expired session outlived the creation of another: %v", err)
	}

	// A key keeps its newest sessions; another key's are its own.
	other := &openpca.ConsoleSession{IDHash: []byte("hash-other"), KeyID: "OPCAOTHER", CSRF: "c", CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour)}
	if err := s.CreateConsoleSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	var many []*openpca.ConsoleSession
	for i := range openpca.ConsoleSessionsPerKey + 3 {
		sess := &openpca.ConsoleSession{IDHash: fmt.Appendf(nil, "hash-many-%d", i), KeyID: "OPCAKEY", CSRF: "c",
			CreatedAt: t0.Add(time.Hour + time.Duration(i+1)*time.Second), ExpiresAt: t0.Add(2 * time.Hour)}
		if err := s.CreateConsoleSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		many = append(many, sess)
	}
	live := func(sess *openpca.ConsoleSession) bool {
		_, err := s.FindConsoleSession(ctx, sess.IDHash, t0.Add(time.Hour))
		return err == nil
	}
	for i, sess := range append(many, later, other) {
		want := i >= 3 && i < len(many) || sess == other
		if live(sess) != want {
			t.Errorf("session %s live %v, want %v", sess.IDHash, !want, want)
		}
	}
	// A session made at an earlier time than the key's others (a clock
	// stepped back, another server's), or at the same, is kept, and the
	// oldest of the others ends: the oldest of many, then the first of
	// these.
	oldest := many[3]
	for i, at := range []time.Duration{time.Minute, time.Hour + time.Second} {
		sess := &openpca.ConsoleSession{IDHash: fmt.Appendf(nil, "zz-hash-%d", i), KeyID: "OPCAKEY", CSRF: "c", CreatedAt: t0.Add(at), ExpiresAt: t0.Add(2 * time.Hour)}
		if err := s.CreateConsoleSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if !live(sess) {
			t.Errorf("a session made at %v, beside newer ones, ended as it was made", at)
		}
		if live(oldest) {
			t.Errorf("session %s outlived a new one past %d", oldest.IDHash, openpca.ConsoleSessionsPerKey)
		}
		oldest = sess
	}
}

// testConsoleQueries: a CA's certificates are listed newest first, by
// serial, subject text and status, a page at a time; expiries and
// activity are counted by day.
func testConsoleQueries(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	other := activeCA(t, s)
	t0 := now()
	var certs []*openpca.Certificate
	for i := range 5 {
		c := newCertificate(ca)
		c.Subject = []string{"CN=alpha.example", "CN=beta.example", "CN=100%_sure.example", "CN=Alpha.example", "CN=ÅRHUS gamma.example"}[i]
		c.NotAfter = t0.Add(time.Duration(i+1) * 24 * time.Hour)
		switch i {
		case 3:
			c.NotAfter = t0 // valid through its notAfter (RFC 5280)
		case 4:
			c.NotAfter = t0.Add(-time.Microsecond) // expired
		}
		if i == 0 {
			c.Names = "api.internal.example 10.0.0.1"
		}
		if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if _, err := s.RecordIssuance(ctx, issuance(other, newCertificate(other))); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: certs[1].Serial, At: t0, Reason: openpca.RevocationReasonKeyCompromise,
		Use: openpca.RevokeUse(ca.ARN, certs[1], t0, openpca.RevocationReasonKeyCompromise, "t", "r"), Statuses: active}); err != nil {
		t.Fatal(err)
	}
	serialsOf := func(q openpca.CertificateQuery) []string {
		t.Helper()
		q.Now = t0
		if q.Limit == 0 {
			q.Limit = 10
		}
		list, err := s.ListCertificates(ctx, ca.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range list {
			out = append(out, l.Serial)
		}
		return out
	}
	want := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, certs[i].Serial)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    openpca.CertificateQuery
		want []string
	}{
		{"all, newest first", openpca.CertificateQuery{}, want(4, 3, 2, 1, 0)},
		{"by serial", openpca.CertificateQuery{Serial: certs[2].Serial}, want(2)},
		{"by subject, whatever the case", openpca.CertificateQuery{Text: "ALPHA"}, want(3, 0)},
		{"wildcards are text", openpca.CertificateQuery{Text: "0%_"}, want(2)},
		{"a % alone is no wildcard", openpca.CertificateQuery{Text: "%"}, want(2)},
		// SQLite lowers ASCII letters alone: a subject with a capital
		// outside ASCII is found as typed, at least.
		{"by subject outside ASCII, as typed", openpca.CertificateQuery{Text: "ÅRHUS"}, want(4)},
		{"by alternative name", openpca.CertificateQuery{Text: "10.0.0"}, want(0)},
		{"issued", openpca.CertificateQuery{Status: "issued"}, want(3, 2, 0)},
		{"revoked", openpca.CertificateQuery{Status: "revoked"}, want(1)},
		{"expired", openpca.CertificateQuery{Status: "expired"}, want(4)},
		{"a first page", openpca.CertificateQuery{Limit: 2}, want(4, 3)},
	} {
		if got := serialsOf(tc.q); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || (len(got) > 1 && got[len(got)-1] != tc.want[len(tc.want)-1]) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	first, err := s.ListCertificates(ctx, ca.ID, openpca.CertificateQuery{Limit: 2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got := serialsOf(openpca.CertificateQuery{Limit: 2, Before: first[1].IssueSeq}); len(got) != 2 || got[0] != certs[2].Serial || got[1] != certs[1].Serial {
		t.Errorf("the second page: %v", got)
	}

	expiries, err := s.ExpiryCounts(ctx, ca.ID, t0, t0.AddDate(0, 0, 90))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, d := range expiries {
		total += d.Count
		if d.Day.Hour() != 0 || d.Day.Before(t0.Truncate(24*time.Hour)) {
			t.Errorf("an expiry day %v", d.Day)
		}
	}
	if total != 3 { // unrevoked, and not expired
		t.Errorf("%d expiries counted, want 3: %v", total, expiries)
	}
	issued, revoked, err := s.ActivityCounts(ctx, ca.ID, t0.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if len(issued) != 1 || issued[0].Count != 5 || len(revoked) != 1 || revoked[0].Count != 1 || !issued[0].Day.Equal(t0.Truncate(24*time.Hour)) {
		t.Errorf("activity: issued %v, revoked %v", issued, revoked)
	}
}
