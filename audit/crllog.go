package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
)

// checkCRLs checks each CRL record of the proof file's log that says what
// its CRL lists (openpca.CRLEntries) against the log's revocations: a CRL
// is made from the store's certificates, and an operator who cleared a
// revocation there had the next CRLs leave it out, the log unchanged. The
// record must say the CRL lists the certificates revoked before an entry
// after the CA's previous CRL (a CA's CRLs are made one at a time, each
// read after the last was logged) and not after its own, that expire at
// or after a time no later than its thisUpdate (later would leave out
// certificates still valid), nor than the latest thisUpdate of the CA's
// CRLs before it that is not after its own, where that leaves out a
// revoked certificate that expired between (a certificate stays on the
// first CRL past its end, RFC 5280 3.3; the latest, not the last, as a
// server's clock set back dates a CRL before the one it signed earlier;
// none after its own, or one CRL dated ahead would let those before its
// date drop what expires; where none expired between, nothing is left
// out, as of an earlier version's CRLs after it had published none), and
// those must be, entry for entry, what the log says. Whether a CRL was
// published is not in the log: a server that signs one it does not
// publish past a certificate's end may drop it from the next; nor is a
// revocation a CRL says it left for the next held to be on one, unless
// the next says it lists those whatever their end (revocationsFrom, no
// later than what the CRL before read: earlier, from the last published,
// lists more; once a CA's CRL says it, the later must too): earlier
// versions left some on none (README). A CA's first CRL is held to the
// revocations it says it read. Once a CA's CRL says what it lists, a
// record that does not is a problem. Records written before they
// said what they list are counted in a note. It reads the proof file once
// more; revs are the log's, sorted.
func (v *Verification) checkCRLs(proof io.Reader, checkpoint *auditlog.Checkpoint, revs *revocations) {
	l := newCRLLister(revs)
	previous := int64(-1) // the CA's previous CRL's entry
	read := int64(-1)     // the revocations it read were those before this entry
	listing := false      // a CRL of the CA said what it lists
	marked := false       // one said what it lists whatever their end
	var dates []int64     // the thisUpdates of its CRLs so far, sorted
	unlisted := 0
	err := rereadProof(proof, checkpoint, func(seq int64, record []byte, _ *auditlog.Hasher) error {
		var r openpca.KeyUseRecord
		if decodeRecord(record, &r) != nil {
			return nil // a problem of Verify's first read
		}
		switch r.Kind {
		case openpca.KeyUseIssue:
			l.issued(seq, &r)
		case openpca.KeyUseCRL:
			thisUpdate, err := time.Parse(time.RFC3339, r.ThisUpdate)
			if err != nil {
				v.problem("log", 0, "entry %d signs a CRL of thisUpdate %q", seq, r.ThisUpdate)
				return nil
			}
			i, found := slices.BinarySearch(dates, thisUpdate.Unix())
			earlier := r.EntriesSHA256 == "" && r.RevocationsBefore == nil && r.ExpiringFrom == "" && r.RevocationsFrom == nil
			switch {
			case earlier && !listing:
				// It read at most what came before it.
				unlisted++
				read = max(read, seq)
			case earlier:
				v.problem("log", 0, "entry %d signs CRL %d, whose record does not say what the CRL lists, after CRLs of the CA that did: it could leave out any revocation", seq, r.CRLNumber)
			default:
				var latest time.Time // of the CRLs before, not after it
				switch {
				case found:
					latest = thisUpdate
				case i > 0:
					latest = time.Unix(dates[i-1], 0).UTC()
				}
				if p := l.check(seq, &r, thisUpdate, previous, latest, read, marked); p != "" {
					v.problem("log", 0, "entry %d signs CRL %d, %s", seq, r.CRLNumber, p)
				}
				// What it says it read, if that may be so, is what the
				// next is held to, whatever else is wrong with it: that
				// is its own problem, not the next's.
				if b := r.RevocationsBefore; b != nil && *b > previous && *b <= seq {
					read = max(read, *b)
				}
				listing, marked = true, marked || r.RevocationsFrom != nil
			}
			previous = seq
			if !found {
				dates = slices.Insert(dates, i, thisUpdate.Unix())
			}
		}
		return nil
	})
	if err != nil {
		v.problem("log", 0, "%v", err)
	}
	if unlisted > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d CRLs were signed by a version that did not log what they list: what they list is checked only against a CRL kept (openpca audit proof --crl)", unlisted))
	}
}

// crlLister makes again, from a log's revocations, what a CRL's record
// says it lists. Each revocation's entry is encoded once (about 50 bytes),
// and the list's hash runs on: a CA's next CRL lists what the last did
// and the revocations since, unless a certificate it listed expired, and
// only then is the list hashed again from its start.
type crlLister struct {
	revs     *revocations
	bySeq    []int32 // indexes in revs.list, in the log's order
	notAfter []int64 // by index in revs.list: Unix seconds; notIssued before its issuance is read
	// ends are the notAfters by place in bySeq, those not issued left at
	// math.MaxInt64, kept for the earliest of a run of them.
	ends    minTree
	place   []int32 // of each index of revs.list in bySeq
	entries []byte  // the entries encoded, each at start of its index, of size bytes (0: not yet)
	start   []int
	size    []uint8
	serial  big.Int
	// The list so far: the revocations of the first n of bySeq that
	// expire from expiringFrom on (listed, in the log's order), the
	// earliest expiry of those, and their entries hashed.
	n                            int
	expiringFrom, earliestExpiry int64
	listed                       []int32
	hash                         hash.Hash
}

const notIssued = math.MinInt64

func newCRLLister(revs *revocations) *crlLister {
	l := &crlLister{revs: revs, bySeq: make([]int32, len(revs.list)), notAfter: make([]int64, len(revs.list)),
		ends: newMinTree(len(revs.list)), place: make([]int32, len(revs.list)),
		start: make([]int, len(revs.list)), size: make([]uint8, len(revs.list)), hash: sha256.New()}
	for i := range revs.list {
		l.bySeq[i] = int32(i)
		l.notAfter[i] = notIssued
	}
	slices.SortFunc(l.bySeq, func(a, b int32) int { return cmp.Compare(revs.list[a].seq, revs.list[b].seq) })
	for p, i := range l.bySeq {
		l.place[i] = int32(p)
	}
	l.restart(math.MinInt64)
	return l
}

// issued notes the expiry of a revoked certificate, issued at entry seq
// before its revocation.
func (l *crlLister) issued(seq int64, r *openpca.KeyUseRecord) {
	i := l.revs.index(r.Serial)
	if i < 0 || l.revs.list[i].seq < seq {
		return
	}
	if notAfter, err := time.Parse(time.RFC3339, r.NotAfter); err == nil {
		l.notAfter[i] = notAfter.Unix()
		l.ends.set(int(l.place[i]), notAfter.Unix())
	}
}

// check checks the record r of a CRL signed at entry seq, whose CA's
// previous CRL (-1: none) is at entry previous and read the revocations
// before entry read, and the latest of whose CRLs before, not after
// thisUpdate, is of latest (zero: none); marked says whether one of them
// said from which entry it lists revocations whatever their end. It
// returns what is wrong, or "".
func (l *crlLister) check(seq int64, r *openpca.KeyUseRecord, thisUpdate time.Time, previous int64, latest time.Time, read int64, marked bool) string {
	expiringFrom, err := time.Parse(time.RFC3339, r.ExpiringFrom)
	switch {
	case r.RevocationsBefore == nil || r.Revoked == nil || r.EntriesSHA256 == "" || err != nil:
		return "whose record says what the CRL lists in part"
	case *r.RevocationsBefore > seq || *r.RevocationsBefore <= previous:
		return fmt.Sprintf("which lists the revocations before entry %d: not after the CA's previous CRL (entry %d), or after its own", *r.RevocationsBefore, previous)
	case expiringFrom.After(thisUpdate):
		return fmt.Sprintf("which lists the certificates that expire from %s on: after its thisUpdate, so that it leaves out some still valid", r.ExpiringFrom)
	case r.RevocationsFrom == nil && marked:
		return "whose record does not say from which entry it lists revocations whatever their end, after CRLs of the CA that did: one a CRL left unread could be left out of the next, as expired"
	case r.RevocationsFrom != nil && (*r.RevocationsFrom < 0 || *r.RevocationsFrom > read):
		return fmt.Sprintf("which lists the revocations from entry %d on whatever their end: not a CRL after another, or after what the CA's previous CRL read (those before entry %d)", *r.RevocationsFrom, read)
	}
	if r.RevocationsFrom != nil {
		if serial := l.endedFrom(*r.RevocationsFrom, *r.RevocationsBefore, expiringFrom.Unix()); serial != "" {
			return fmt.Sprintf("which lists the certificates that expire from %s on, and says it lists whatever their end those revoked from entry %d on: it leaves out certificate %s, revoked since, which expired before",
				r.ExpiringFrom, *r.RevocationsFrom, serial)
		}
	}
	if !latest.IsZero() && expiringFrom.After(latest) {
		if serial := l.expiredBetween(*r.RevocationsBefore, latest.Unix(), expiringFrom.Unix()); serial != "" {
			return fmt.Sprintf("which lists the certificates that expire from %s on: after the CA's CRLs before it (the latest not after its own of %s), so that it leaves out certificate %s, revoked, which expired between and is on no CRL past its end",
				r.ExpiringFrom, latest.Format(time.RFC3339), serial)
		}
	}
	count, sum := l.list(*r.RevocationsBefore, expiringFrom.Unix())
	if count != *r.Revoked || hex.EncodeToString(sum) != r.EntriesSHA256 {
		return fmt.Sprintf("which lists %d certificates (their entries' SHA-256 %s); the log's revocations before entry %d of certificates that expire from %s on are %d (SHA-256 %x): it leaves out a revocation of the log, or lists one the log has not (openpca audit proof --crl says which of a CRL kept)",
			*r.Revoked, r.EntriesSHA256, *r.RevocationsBefore, r.ExpiringFrom, count, sum)
	}
	return ""
}

// list returns how many certificates a CRL lists that lists those revoked
// before entry before that expire from expiringFrom on, and the SHA-256
// of their entries.
func (l *crlLister) list(before int64, expiringFrom int64) (int, []byte) {
	n := l.placeOf(before)
	// The list so far is the start of this one if this one has every
	// revocation it has, and lists every certificate it lists (none
	// expired) and none it left out. Of one whose certificates expired,
	// the rest is, hashed again: a CA of short-lived certificates has one
	// expire before most of its CRLs, and its expired revocations are
	// not read again for each.
	switch {
	case n < l.n || expiringFrom < l.expiringFrom:
		l.restart(expiringFrom)
	case expiringFrom > l.earliestExpiry:
		l.dropExpired(expiringFrom)
	}
	for _, i := range l.bySeq[l.n:n] {
		if l.notAfter[i] != notIssued && l.notAfter[i] >= expiringFrom {
			l.add(i)
		}
	}
	l.n, l.expiringFrom = n, expiringFrom
	return len(l.listed), l.hash.Sum(nil)
}

// endedFrom returns the serial of a certificate revoked at an entry from
// from, before before, that expired before to, or "" if none did. It is
// found in logarithmic time: a log whose CRLs each say they list all from
// its first entry costs no more than one whose CRLs say they list those
// the CRL before did not read.
func (l *crlLister) endedFrom(from, before, to int64) string {
	if p := l.ends.firstBelow(l.placeOf(from), l.placeOf(before), to); p >= 0 {
		return l.revs.list[l.bySeq[p]].hex()
	}
	return ""
}

// placeOf returns the place in bySeq of the first revocation logged at
// entry seq or after.
func (l *crlLister) placeOf(seq int64) int {
	p, _ := slices.BinarySearchFunc(l.bySeq, seq, func(i int32, seq int64) int { return cmp.Compare(l.revs.list[i].seq, seq) })
	return p
}

// minTree keeps the least of a run of values, each of which may change:
// a segment tree, its leaves at [n, 2n).
type minTree []int64

func newMinTree(n int) minTree {
	t := make(minTree, 2*n)
	for i := range t {
		t[i] = math.MaxInt64
	}
	return t
}

// set sets the value at place p.
func (t minTree) set(p int, v int64) {
	p += len(t) / 2
	for t[p] = v; p > 1; p /= 2 {
		t[p/2] = min(t[p&^1], t[p|1])
	}
}

// firstBelow returns the first place of [lo, hi) whose value is below v;
// -1 if none is.
func (t minTree) firstBelow(lo, hi int, v int64) int {
	if lo >= hi || t.min(lo, hi) >= v {
		return -1
	}
	for lo+1 < hi { // one of [lo, hi) is below v
		if mid := lo + (hi-lo)/2; t.min(lo, mid) < v {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

// min returns the least value at places [lo, hi); math.MaxInt64 if none.
func (t minTree) min(lo, hi int) int64 {
	least := int64(math.MaxInt64)
	for lo, hi = lo+len(t)/2, hi+len(t)/2; lo < hi; lo, hi = lo/2, hi/2 {
		if lo&1 == 1 {
			least = min(least, t[lo])
			lo++
		}
		if hi&1 == 1 {
			hi--
			least = min(least, t[hi])
		}
	}
	return least
}

// expiredBetween returns the serial of a certificate revoked before entry
// before that expired at or after from and before to, or "" if none did.
func (l *crlLister) expiredBetween(before, from, to int64) string {
	for _, i := range l.bySeq {
		r := &l.revs.list[i]
		if r.seq >= before {
			break
		}
		if l.notAfter[i] != notIssued && l.notAfter[i] >= from && l.notAfter[i] < to {
			return r.hex()
		}
	}
	return ""
}

// add lists the revocation of index i, if it has an entry.
func (l *crlLister) add(i int32) {
	if entry := l.entry(i); entry != nil {
		l.hash.Write(entry)
		l.listed = append(l.listed, i)
		l.earliestExpiry = min(l.earliestExpiry, l.notAfter[i])
	}
}

// restart empties the list.
func (l *crlLister) restart(expiringFrom int64) {
	l.hash.Reset()
	l.listed = l.listed[:0]
	l.n, l.expiringFrom, l.earliestExpiry = 0, expiringFrom, math.MaxInt64
}

// dropExpired takes out of the list the certificates that expire before
// expiringFrom.
func (l *crlLister) dropExpired(expiringFrom int64) {
	l.hash.Reset()
	listed := l.listed
	l.listed, l.earliestExpiry = listed[:0], math.MaxInt64
	for _, i := range listed {
		if l.notAfter[i] >= expiringFrom {
			l.add(i)
		}
	}
}

// entry returns the CRL entry of the revocation of index i, DER, or nil
// if it has none (a serial that is no number: checkRecord keeps serials
// of any text).
func (l *crlLister) entry(i int32) []byte {
	if l.size[i] == 0 {
		r := &l.revs.list[i]
		if _, ok := l.serial.SetString(r.hex(), 16); !ok {
			return nil
		}
		from := len(l.entries)
		entries, err := pki.AppendRevokedEntry(l.entries, &l.serial, time.Unix(r.at, 0), pki.CRLReason(revocationReasons[r.reason]))
		if err != nil || len(entries)-from > math.MaxUint8 {
			return nil
		}
		l.entries, l.start[i], l.size[i] = entries, from, uint8(len(entries)-from)
	}
	return l.entries[l.start[i] : l.start[i]+int(l.size[i])]
}
