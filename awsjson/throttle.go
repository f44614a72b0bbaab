package awsjson

import (
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// accountRates bounds each account's requests to a rate, so that one
// account cannot take a shared server from the others; AWS bounds each
// account's requests too, with ThrottlingException, which clients retry
// after a backoff. An account's bound is kept while it sends requests:
// accountsKept accounts at most, the least recent dropped first (an
// account that comes back starts with a full bucket, which a bound per
// account allows anyway).
type accountRates struct {
	rate     float64 // 0: no bound
	accounts *lru.Cache[string, *rate.Limiter]
}

const accountsKept = 100_000

func newAccountRates(perSecond float64) *accountRates {
	a := &accountRates{rate: perSecond}
	if perSecond > 0 {
		a.accounts, _ = lru.New[string, *rate.Limiter](accountsKept)
	}
	return a
}

// allow reports whether a request of account may go now.
func (a *accountRates) allow(account string) bool {
	if a.accounts == nil {
		return true // no bound
	}
	l := rate.NewLimiter(rate.Limit(a.rate), max(1, int(a.rate)))
	if earlier, found := a.accounts.Get(account); found {
		l = earlier
	} else {
		a.accounts.Add(account, l) // of two at once, the last counts
	}
	return l.Allow()
}
