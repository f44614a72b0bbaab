package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request is what a policy decides: an action on a resource, by a
// principal of an account, with the values of the condition keys.
type Request struct {
	// Action is service:Action, such as acm-pca:IssueCertificate.
	Action string
	// Resource is the ARN of the resource acted on, or * for an action
	// on none.
	Resource string
	// Account is the caller's account, which a resource policy's
	// principals name.
	Account string
	// Context holds the values of the condition keys the request has, by
	// key in lower case (IAM's keys match regardless of case).
	Context map[string][]string
}

// Named is a policy under the name it is attached with.
type Named struct {
	Name string
	*Policy
}

// Decision is what policies decided about a request, and which statement
// decided it.
type Decision struct {
	Allowed bool
	// Denied is true for an explicit deny.
	Denied bool
	// Policy and Statement name the statement that decided; both are ""
	// for an implicit deny (no statement allows).
	Policy, Statement string
}

// Evaluate decides r with policies, as IAM does within one kind of policy:
// any statement that denies it wins; otherwise any that allows it allows
// it; otherwise it is denied implicitly.
func Evaluate(policies []Named, r *Request) Decision {
	var allow *Decision
	for _, p := range policies {
		for _, s := range p.Statements {
			if !s.applies(r) {
				continue
			}
			d := Decision{Policy: p.Name, Statement: s.Name()}
			if s.Effect == Deny {
				d.Denied = true
				return d
			}
			if allow == nil {
				d.Allowed = true
				allow = &d
			}
		}
	}
	if allow != nil {
		return *allow
	}
	return Decision{}
}

// Names reports whether a statement of the resource policy p names
// account as a principal, whatever it allows.
func (p *Policy) Names(account string) bool {
	for _, s := range p.Statements {
		if s.AllPrincipals || contains(s.Principals, account) {
			return true
		}
	}
	return false
}

// applies reports whether the statement is about r: its principal, action,
// resource and every condition.
func (s *Statement) applies(r *Request) bool {
	if s.Principals != nil || s.AllPrincipals {
		if !s.AllPrincipals && !contains(s.Principals, r.Account) {
			return false
		}
	}
	if s.Actions != nil && !anyAction(s.Actions, r.Action) || s.NotActions != nil && anyAction(s.NotActions, r.Action) {
		return false
	}
	if s.Resources != nil && !anyResource(s.Resources, r.Resource) || s.NotResources != nil && anyResource(s.NotResources, r.Resource) {
		return false
	}
	for _, c := range s.Conditions {
		values, present := r.Context[c.lowerKey]
		if !c.holds(values, present) {
			return false
		}
	}
	return true
}

// Actions match regardless of case, as IAM matches them.
func anyAction(patterns []string, action string) bool {
	for _, p := range patterns {
		if p == "*" || MatchFold(p, action) {
			return true
		}
	}
	return false
}

func anyResource(patterns []string, resource string) bool {
	for _, p := range patterns {
		if p == "*" || MatchARN(p, resource) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Match reports whether s matches pattern, where * matches any run of
// characters and ? any one character, case-sensitively.
func Match(pattern, s string) bool { return match(pattern, s, false) }

// MatchFold is Match regardless of case.
func MatchFold(pattern, s string) bool { return match(pattern, s, true) }

// match is the classic glob matcher with one backtracking point: each *
// retries only from the latest one, so that it runs in time proportional
// to len(pattern)*len(s) at worst, whatever the pattern. It compares
// characters, not bytes; ASCII, by far the usual case, takes a path that
// allocates nothing.
func match(pattern, s string, fold bool) bool {
	if isASCII(pattern) && isASCII(s) {
		return glob(len(pattern), len(s), func(p int) byte { return pattern[p] }, func(i int) byte { return s[i] },
			func(a, b byte) bool { return a == b || fold && lowerASCII(a) == lowerASCII(b) })
	}
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	pr, sr := []rune(pattern), []rune(s)
	return glob(len(pr), len(sr), func(p int) rune { return pr[p] }, func(i int) rune { return sr[i] }, func(a, b rune) bool { return a == b })
}

func glob[C byte | rune](np, ns int, pat, str func(int) C, eq func(C, C) bool) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < ns {
		switch {
		case p < np && pat(p) == '*':
			star, mark = p, i
			p++
		case p < np && (pat(p) == '?' || eq(pat(p), str(i))):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < np && pat(p) == '*' {
		p++
	}
	return p == np
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FoldKey returns a condition key's name as requests' contexts hold it,
// and as conditions look it up: each character folded as
// case-insensitive comparison (strings.EqualFold) folds it, so that two
// names are one key exactly when that comparison says they are the same.
// A key's name is ASCII, but a tag's key after aws:ResourceTag/ may be
// any text, and Unicode's lowering (strings.ToLower) makes one of
// characters that the comparison keeps apart: U+0130 lowers to "i". A
// tag key "envİronment" then passed a Deny on aws:TagKeys naming
// "environment", and was read as aws:ResourceTag/environment after.
func FoldKey(s string) string {
	// ASCII, by far the usual key, a byte at a time: strings.Map takes
	// some twenty times longer.
	if isASCII(s) {
		b := []byte(s)
		for i, c := range b {
			b[i] = lowerASCII(c)
		}
		return string(b)
	}
	return strings.Map(foldRune, s)
}

// foldRune returns the least character of r's case-folding orbit
// (unicode.SimpleFold), which strings.EqualFold takes as one: an ASCII
// letter's lower case (the Kelvin sign's is "k").
func foldRune(r rune) rune {
	// An ASCII letter's orbit's least is its upper case: the lower case
	// at once, without walking the orbit.
	if r < utf8.RuneSelf {
		return rune(lowerASCII(byte(r)))
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if 'A' <= least && least <= 'Z' {
		least += 'a' - 'A'
	}
	return least
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// MatchARN matches an ARN against a pattern as IAM does: each of the six
// colon-separated parts of the ARN separately, with * and ?, case
// sensitively; * alone matches every ARN.
func MatchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	pp := strings.SplitN(pattern, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return false
	}
	for i := range pp {
		if !Match(pp[i], ap[i]) {
			return false
		}
	}
	return true
}
