package awsjson

import (
	"math"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/openpca/openpca"
)

// AccountRates bounds each account's requests to a rate, so that one
// account cannot take a shared server from the others; AWS bounds each
// account's requests too, with ThrottlingException, which clients retry
// after a backoff. An account's bound is kept while it sends requests:
// accountsKept accounts at most, the least recent dropped first (an
// account that comes back starts with a full bucket, which a bound per
// account allows anyway).
// The API and the console share one, so that a bound holds across both.
type AccountRates struct {
	rate     float64 // 0: no bound
	accounts *lru.Cache[string, *rate.Limiter]
}

const accountsKept = 100_000

// NewAccountRates bounds each account to perSecond requests a second; 0
// is no bound.
func NewAccountRates(perSecond float64) *AccountRates {
	a := &AccountRates{rate: perSecond}
	if perSecond > 0 {
		a.accounts, _ = lru.New[string, *rate.Limiter](accountsKept)
	}
	return a
}

// Check says whether a request of account may go now: nil, or
// ThrottlingException. A nil AccountRates is no bound.
func (a *AccountRates) Check(account string) error {
	if !a.allow(account) {
		return openpca.Errorf(openpca.CodeThrottling, "Rate exceeded: account %s sends more than %g requests a second to this server.", account, a.rate)
	}
	return nil
}

// RetryAfter is how many seconds an account past its rate waits for its
// next request: one request's share of the rate, rounded up.
func (a *AccountRates) RetryAfter() int {
	if a == nil || a.rate <= 0 {
		return 1
	}
	return max(1, int(math.Ceil(1/a.rate)))
}

// allow reports whether a request of account may go now.
func (a *AccountRates) allow(account string) bool {
	if a == nil || a.accounts == nil {
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
