package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/race"
)

// heavyPolicy is a CA policy of nearly MaxSize bytes that holds as many
// conditions as it can, as any account may put on its CA (PutPolicy takes
// any condition key): each of its ~6,900 conditions is a few bytes of
// text and a Condition of well over a hundred bytes parsed. n makes each
// document distinct, as an account putting a new policy each time would.
func heavyPolicy(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"Version":"2012-10-17","Statement":[{"Sid":"S%d","Effect":"Allow","Principal":{"AWS":"222233334444"},`+
		`"Action":"acm-pca:DescribeCertificateAuthority","Resource":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x",`+
		`"Condition":{"StringEquals":{`, n)
	for i := 0; b.Len() < MaxSize-100; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	b.WriteString(`}}}]}`)
	return b.String()
}

// TestCacheMemoryBounded: the cache of parsed policies is bounded by what
// it holds, not only by how many policies. The authority's cache keeps
// every CA policy a cross-account request (or another account's listing)
// evaluated, of any account; one account putting a new 80 KB policy on its
// CA before each request of a second account made the server keep about
// 1 MB per policy, up to a thousand of them: a gigabyte.
func TestCacheMemoryBounded(t *testing.T) {
	race.Skip(t)
	if testing.Short() {
		t.Skip("parses 80 policies of 80 KB")
	}
	const n = 80
	docs := make([]string, n)
	for i := range docs {
		docs[i] = heavyPolicy(i)
	}
	var c Cache
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, doc := range docs {
		if _, err := c.Parse(doc, Resource); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	const limit = 48 << 20
	if held > limit {
		t.Errorf("the cache holds %d MB after %d policies of %d KB; want at most %d MB", held>>20, n, len(docs[0])>>10, limit>>20)
	}
	runtime.KeepAlive(docs)
	runtime.KeepAlive(&c)
	// What it keeps still serves: the last policy is parsed once.
	p1, _ := c.Parse(docs[n-1], Resource)
	p2, _ := c.Parse(docs[n-1], Resource)
	if p1 != p2 {
		t.Error("the policy parsed last is not served from the cache")
	}
}

// TestCacheFootprintGenerous: the estimate the cache counts a policy by is
// at least what the policy takes.
func TestCacheFootprintGenerous(t *testing.T) {
	doc := heavyPolicy(0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ps := make([]*Policy, 10)
	for i := range ps {
		p, err := Parse([]byte(doc), Resource)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	taken := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(len(ps))
	if est := int64(ps[0].footprint()); est < taken {
		t.Errorf("footprint %d bytes, but a parsed policy takes %d", est, taken)
	}
	runtime.KeepAlive(ps)
}
