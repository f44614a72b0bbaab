package crl

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlstore"
)

// issueRevoked records a certificate of ca valid until notAfter,
// revoked at revokedAt, and returns its serial.
func issueRevoked(t *testing.T, db *sqlstore.DB, ca *openpca.CA, notBefore, notAfter, revokedAt time.Time) *big.Int {
	t.Helper()
	c := issue(t, db, ca, notBefore, notAfter)
	revoke(t, db, ca, c, revokedAt)
	serial, _ := new(big.Int).SetString(c.Serial, 16)
	return serial
}

// issue records a certificate of ca valid until notAfter.
func issue(t *testing.T, db *sqlstore.DB, ca *openpca.CA, notBefore, notAfter time.Time) *openpca.Certificate {
	t.Helper()
	serial := big.NewInt(time.Now().UnixNano())
	c := &openpca.Certificate{CAID: ca.ID, AccountID: ca.AccountID, Serial: serial.Text(16), DER: make([]byte, 100),
		Subject: "CN=x", NotBefore: notBefore, NotAfter: notAfter, IssuedAt: notBefore,
		TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "arn:aws:iam::111122223333:root", RequestID: uuid.NewString()}
	c.ARN = ca.ARN + "/certificate/" + c.Serial
	if _, err := db.RecordIssuance(t.Context(), &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(ca.ARN, c), Statuses: []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// revoke records the revocation of c, dated at.
func revoke(t *testing.T, db *sqlstore.DB, ca *openpca.CA, c *openpca.Certificate, at time.Time) {
	t.Helper()
	if err := db.RecordRevocation(t.Context(), &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonKeyCompromise,
		Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonKeyCompromise, "tester", "r"), Statuses: []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}}); err != nil {
		t.Fatal(err)
	}
}

// TestRevokedListedOnFirstCRLPastNotAfter: RFC 5280 (3.3, 4.1.2.5): a
// certificate's validity includes its notAfter second, and its entry stays
// until it appears on one CRL issued beyond that period. A CRL signed at
// the very second of notAfter is not beyond it: the next CRL must list the
// certificate still. Nor is a CRL signed and never written: until one is,
// each lists what was valid at the first. Of a last CRL dated ahead (a
// clock set back), the next lists what was valid at the latest signed
// before now, to which audit verify holds it: so too after the CA's CRLs
// were disabled meanwhile, which dates its last CRL now, the time of none.
func TestRevokedListedOnFirstCRLPastNotAfter(t *testing.T) {
	type step struct {
		after   time.Duration // after notAfter
		written bool
		listed  bool
		off     bool // the CA's CRLs disabled for this step, and none signed
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"every CRL written", []step{{-time.Hour, true, true, false}, {0, true, true, false}, {time.Minute, true, true, false}, {2 * time.Minute, true, false, false}}},
		{"the first not written", []step{{-time.Hour, false, false, false}, {time.Minute, true, true, false}, {2 * time.Minute, true, false, false}}},
		{"two not written, the second past notAfter", []step{{-time.Hour, false, false, false}, {time.Minute, false, false, false}, {2 * time.Minute, true, true, false}, {3 * time.Minute, true, false, false}}},
		{"the last dated ahead", []step{{-2 * time.Hour, true, true, false}, {24 * time.Hour, true, true, false}, {time.Minute, true, true, false}, {2 * time.Minute, true, false, false}}},
		{"the last dated ahead, then CRLs disabled and enabled", []step{{-2 * time.Hour, true, true, false}, {24 * time.Hour, true, true, false},
			{30 * time.Minute, true, false, true}, {time.Hour, true, true, false}, {2 * time.Hour, true, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, objects, dir := newCRLStores(t, "crls")
			notAfter := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
			t0 := notAfter.Add(tc.steps[0].after)
			ca, key, cert := newCRLCA(t, db, "111122223333", "crls", t0)
			serial := issueRevoked(t, db, ca, t0, notAfter, t0)
			clock := t0
			p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
			bucket := filepath.Join(dir, "s3", "crls")
			enable := func(on bool) {
				ca.Revocation.CrlConfiguration.Enabled = &on
				if err := db.UpdateCA(t.Context(), ca, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tc.steps {
				clock = notAfter.Add(s.after)
				if s.off {
					enable(false)
				}
				publishAt(t, db, p, ca.ID, clock, bucket, s.written)
				if s.off {
					enable(true)
					continue
				}
				if !s.written {
					continue
				}
				l := writtenCRL(t, bucket, ca)
				if listed := slices.ContainsFunc(l, func(n *big.Int) bool { return n.Cmp(serial) == 0 }); listed != s.listed {
					t.Errorf("the CRL at notAfter%+v lists the certificate: %v, want %v", s.after, listed, s.listed)
				}
			}
		})
	}
}

// publishAt asks for a CRL of the CA and publishes it at clock, written
// to bucket or, if not written, failing as the bucket is away.
func publishAt(t *testing.T, db *sqlstore.DB, p *Publisher, caID string, clock time.Time, bucket string, written bool) {
	t.Helper()
	if !written {
		if err := os.Rename(bucket, bucket+".away"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Rename(bucket+".away", bucket); err != nil {
				t.Fatal(err)
			}
		}()
	}
	if err := db.WantCRL(t.Context(), caID); err != nil {
		t.Fatal(err)
	}
	job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
	if errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("no CRL to claim at %v", clock)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := p.publish(t.Context(), job, "a"); (err == nil) != written {
		t.Fatalf("the CRL at %v: %v", clock, err)
	}
}

// writtenCRL returns the serials the CA's CRL in bucket lists.
func writtenCRL(t *testing.T, bucket string, ca *openpca.CA) []*big.Int {
	t.Helper()
	der, err := os.ReadFile(filepath.Join(bucket, Key(ca, ca.CRL())))
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func parseCRL(der []byte) ([]*big.Int, error) {
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	var out []*big.Int
	for _, e := range l.RevokedCertificateEntries {
		out = append(out, e.SerialNumber)
	}
	return out, nil
}

// readingStore is the publisher's store that, once, runs during as soon
// as a CRL has read the log's size: a revocation committed then is one
// that CRL does not read, logged before its record.
type readingStore struct {
	Store
	during func()
}

func (s *readingStore) RevokedCertificates(ctx context.Context, caID string, expiresAfter time.Time, listedFrom int64, fn func(*openpca.RevokedCertificate) error) (int64, time.Time, error) {
	before, used, err := s.Store.RevokedCertificates(ctx, caID, expiresAfter, listedFrom, fn)
	if s.during != nil {
		s.during()
		s.during = nil
	}
	return before, used, err
}

// TestRevocationReadLateListedOnce: a revocation requested in the last
// moments of its certificate, and committed after the next CRL read the
// log, reaches the log after a CRL dated past the certificate's end. The
// CRL after lists what was valid at that one, and would leave it out: it
// would be on no CRL. It is listed once, on the first CRL published that
// reads it (one signed and not written does not count), and not after. A
// CA's first CRL lists what is valid: a revocation it reads of a
// certificate that had ended is not listed. The records of those after
// say so, from what the last CRL published read on; and each record
// says what its CRL lists.
func TestRevocationReadLateListedOnce(t *testing.T) {
	const (
		none = iota
		before
		during // the CRL's read
	)
	type step struct {
		revoke  int // the late certificate's revocation, dated a second before its end
		written bool
		listed  bool // the late certificate
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"revoked before a CRL", []step{{none, true, false}, {before, true, true}, {none, true, false}}},
		{"revoked while a CRL read", []step{{none, true, false}, {during, true, false}, {none, true, true}, {none, true, false}}},
		{"the CRL that read it not written", []step{{none, true, false}, {before, false, false}, {none, true, true}, {none, true, false}}},
		// Of a CA none of whose CRLs was written, the next lists what
		// was valid at the first signed, and what that one did not read.
		{"revoked while the first CRL read", []step{{during, true, false}, {none, true, true}, {none, true, false}}},
		{"revoked while the first CRL read, not written", []step{{during, false, false}, {none, true, true}, {none, true, false}}},
		{"revoked while the first CRL read, the first two not written", []step{{during, false, false}, {none, false, false}, {none, true, true}, {none, true, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, objects, dir := newCRLStores(t, "crls")
			notAfter := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
			t0 := notAfter.Add(-2 * time.Hour)
			ca, key, cert := newCRLCA(t, db, "111122223333", "crls", t0)
			certs := map[string]*openpca.Certificate{}
			ended := issue(t, db, ca, t0, notAfter.Add(-time.Hour))
			revoke(t, db, ca, ended, notAfter.Add(-90*time.Minute))
			late := issue(t, db, ca, t0, notAfter)
			certs[ended.Serial], certs[late.Serial] = ended, late
			revokeLate := func() { revoke(t, db, ca, late, notAfter.Add(-time.Second)) }
			clock := t0
			store := &readingStore{Store: db}
			p := newPublisher(Config{Store: store, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
			bucket := filepath.Join(dir, "s3", "crls")
			var read *int64 // what the last CRL written read, or the first signed while none was
			written := false
			for i, step := range tc.steps {
				clock = notAfter.Add(time.Duration(i+1) * time.Minute)
				switch step.revoke {
				case before:
					revokeLate()
				case during:
					store.during = revokeLate
				}
				publishAt(t, db, p, ca.ID, clock, bucket, step.written)
				uses, err := db.CRLKeyUses(t.Context(), ca.ID, clock)
				var r openpca.KeyUseRecord
				if err != nil || len(uses) != 1 || json.Unmarshal(uses[0].Record, &r) != nil || r.RevocationsBefore == nil {
					t.Fatalf("CRL %d's record: %v, %v", i+1, uses, err)
				}
				if (r.RevocationsFrom == nil) != (read == nil) || read != nil && *r.RevocationsFrom != *read {
					entry := func(n *int64) any {
						if n == nil {
							return "none"
						}
						return *n
					}
					t.Errorf("CRL %d's record lists whatever their end those revoked from entry %v on, want %v", i+1, entry(r.RevocationsFrom), entry(read))
				}
				if !written && read == nil || step.written {
					read = r.RevocationsBefore
				}
				if !step.written {
					continue
				}
				written = true
				l := writtenCRL(t, bucket, ca)
				if listed := slices.ContainsFunc(l, func(n *big.Int) bool { return n.Text(16) == late.Serial }); listed != step.listed {
					t.Errorf("CRL %d lists the certificate revoked late: %v, want %v", i+1, listed, step.listed)
				}
				// What the record says it lists: the certificates revoked
				// before its entry that expire from its date on.
				expiringFrom, err := time.Parse(time.RFC3339, r.ExpiringFrom)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				if err := db.LogRecords(t.Context(), ca.ID, *r.RevocationsBefore, func(record []byte) error {
					var u openpca.KeyUseRecord
					if err := json.Unmarshal(record, &u); err != nil {
						return err
					}
					if c := certs[u.Serial]; u.Kind == openpca.KeyUseRevoke && !c.NotAfter.Before(expiringFrom) {
						want = append(want, c.Serial)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, n := range l {
					got = append(got, n.Text(16))
				}
				if !slices.Equal(got, want) || *r.Revoked != len(l) {
					t.Errorf("CRL %d lists %v (its record says %d), want %v: those revoked before entry %d that expire from %s on", i+1, got, *r.Revoked, want, *r.RevocationsBefore, r.ExpiringFrom)
				}
			}
		})
	}
}
