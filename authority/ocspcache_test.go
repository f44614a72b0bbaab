package authority

import (
	"fmt"
	"testing"

	"github.com/openpca/openpca"
)

// TestOCSPCacheBytes fills the kept responses far past their bound in
// bytes: they never hold more than the bound, the newest are kept, and
// one asked for again survives the responses added after it.
func TestOCSPCacheBytes(t *testing.T) {
	const limit = 1 << 20
	c := ocspCache{limit: limit}
	id := func(i int) ocspCertID { return ocspCertID{nameHash: "name", keyHash: "key", serial: fmt.Sprint(i)} }
	hot := id(-1)
	c.put(hot, &ocspEntry{OCSPResponse: openpca.OCSPResponse{DER: make([]byte, 1000)}})
	for i := range 20000 {
		c.put(id(i), &ocspEntry{OCSPResponse: openpca.OCSPResponse{DER: make([]byte, 1000)}})
		if c.get(hot) == nil {
			t.Fatalf("a response asked for at every step was dropped after %d others", i)
		}
		held := 0
		for _, gen := range []map[ocspCertID]*ocspEntry{c.cur, c.prev} {
			for k, e := range gen {
				held += k.size(e)
			}
		}
		if held > limit {
			t.Fatalf("after %d responses the cache holds %d bytes, more than %d", i+1, held, limit)
		}
	}
	if c.get(id(19999)) == nil {
		t.Error("the newest response is not kept")
	}
	if c.get(id(0)) != nil {
		t.Error("the oldest response is still kept")
	}
}
