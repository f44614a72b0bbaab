package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Condition is one test of a statement's Condition element: an operator,
// a condition key and the values the operator compares the request's
// values of the key with.
type Condition struct {
	// Operator is as written, such as ForAnyValue:StringLikeIfExists.
	Operator string
	// Key is the condition key as written; keys match regardless of case.
	Key    string
	Values []string

	lowerKey string
	// compared are the values requests' are matched with: Values, folded
	// for aws:TagKeys (foldsValues).
	compared []string
	match    matcher
	negated  bool // the operator is a Not... one
	set      setQualifier
	ifExists bool
	null     bool // the Null operator
}

type setQualifier int

const (
	single setQualifier = iota
	forAnyValue
	forAllValues
)

// matcher reports whether a request's value matches one of the policy's
// values, for the positive form of an operator.
type matcher func(value string, policy []string) bool

// operators are the positive forms of the condition operators, with
// their negated names.
var operators = map[string]struct {
	match   matcher
	negated string
	check   func(string) error // of each policy value
}{
	"StringEquals":             {match: stringEquals(false), negated: "StringNotEquals"},
	"StringEqualsIgnoreCase":   {match: stringEquals(true), negated: "StringNotEqualsIgnoreCase"},
	"StringLike":               {match: stringLike, negated: "StringNotLike"},
	"ArnEquals":                {match: arnLike, negated: "ArnNotEquals", check: checkARNPattern},
	"ArnLike":                  {match: arnLike, negated: "ArnNotLike", check: checkARNPattern},
	"IpAddress":                {match: ipAddress, negated: "NotIpAddress", check: checkPrefix},
	"NumericEquals":            {match: numeric(func(c int) bool { return c == 0 }), negated: "NumericNotEquals", check: checkNumber},
	"NumericLessThan":          {match: numeric(func(c int) bool { return c < 0 }), check: checkNumber},
	"NumericLessThanEquals":    {match: numeric(func(c int) bool { return c <= 0 }), check: checkNumber},
	"NumericGreaterThan":       {match: numeric(func(c int) bool { return c > 0 }), check: checkNumber},
	"NumericGreaterThanEquals": {match: numeric(func(c int) bool { return c >= 0 }), check: checkNumber},
	"DateEquals":               {match: date(func(c int) bool { return c == 0 }), negated: "DateNotEquals", check: checkDate},
	"DateLessThan":             {match: date(func(c int) bool { return c < 0 }), check: checkDate},
	"DateLessThanEquals":       {match: date(func(c int) bool { return c <= 0 }), check: checkDate},
	"DateGreaterThan":          {match: date(func(c int) bool { return c > 0 }), check: checkDate},
	"DateGreaterThanEquals":    {match: date(func(c int) bool { return c >= 0 }), check: checkDate},
	"Bool":                     {match: boolEquals, check: checkBool},
}

// lookupOperator finds the base operator of name, without its set
// qualifier and IfExists suffix.
func lookupOperator(name string) (match matcher, negated bool, check func(string) error, ok bool) {
	if o, ok := operators[name]; ok {
		return o.match, false, o.check, true
	}
	for _, o := range operators {
		if o.negated != "" && o.negated == name {
			return o.match, true, o.check, true
		}
	}
	return nil, false, nil, false
}

// The condition keys this server supplies, in lower case (keys match
// regardless of case), and the prefixes of those named after a tag key.
// AWS always supplies aws:EpochTime, aws:RequestedRegion,
// aws:ResourceAccount and the two that say whether an AWS service made
// or passed the request, which none does here.
const (
	KeyTemplateArn           = "acm-pca:templatearn"
	KeyTagKeys               = "aws:tagkeys"
	KeyCurrentTime           = "aws:currenttime"
	KeyEpochTime             = "aws:epochtime"
	KeyPrincipalAccount      = "aws:principalaccount"
	KeyPrincipalIsAWSService = "aws:principalisawsservice"
	KeyViaAWSService         = "aws:viaawsservice"
	KeyRequestedRegion       = "aws:requestedregion"
	KeyResourceAccount       = "aws:resourceaccount"
	KeySourceIP              = "aws:sourceip"
	KeySecureTransport       = "aws:securetransport"
	PrefixResourceTag        = "aws:resourcetag/"
	PrefixRequestTag         = "aws:requesttag/"
)

// unsupplied reports whether key (in lower case) is one that AWS puts in
// every request signed with an access key and this server never does
// (which principal made it: an access key here is no IAM user or role),
// or one of ACM Private CA's it does not know. Other keys AWS leaves out
// of such requests as well (aws:SourceVpc, aws:MultiFactorAuthPresent,
// ...), and their absence means here what it means there.
func unsupplied(key string) bool {
	switch key {
	case "aws:principalarn", "aws:principaltype", "aws:userid", "aws:username", "aws:principalorgid", "aws:principalorgpaths",
		"aws:resourceorgid", "aws:resourceorgpaths", "aws:useragent":
		return true
	}
	return strings.HasPrefix(key, "aws:principaltag/") ||
		strings.HasPrefix(key, PrefixResourceTag) && len(key) == len(PrefixResourceTag) ||
		strings.HasPrefix(key, PrefixRequestTag) && len(key) == len(PrefixRequestTag) ||
		strings.HasPrefix(key, "acm-pca:") && key != KeyTemplateArn
}

func parseConditions(v json.RawMessage) ([]*Condition, error) {
	var block map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &block); err != nil || block == nil {
		return nil, fmt.Errorf("must map condition operators to {key: values}")
	}
	var out []*Condition
	for op, keys := range block {
		// As IAM's grammar has it: an operator names one key at least.
		if len(keys) == 0 {
			return nil, fmt.Errorf("%s: names no condition key", op)
		}
		for key, raw := range keys {
			c, err := parseCondition(op, key, raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %v", op, key, err)
			}
			out = append(out, c)
		}
	}
	// Map order is random: keep the conditions in a stable order, so that
	// what explains a decision reads the same each time.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operator != out[j].Operator {
			return out[i].Operator < out[j].Operator
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

func parseCondition(op, key string, raw json.RawMessage) (*Condition, error) {
	c := &Condition{Operator: op, Key: key, lowerKey: FoldKey(key)}
	if key == "" {
		return nil, fmt.Errorf("the condition key is empty")
	}
	// A tag key, after aws:ResourceTag/ or aws:RequestTag/, may be any
	// text; the key's name is ASCII.
	if name, _, _ := strings.Cut(key, "/"); name != "" {
		if r, ok := nonASCII(name); ok {
			return nil, fmt.Errorf("the condition key %q holds %U: keys' names are ASCII", key, r)
		}
		// A request has no such key: the condition would test one
		// always absent.
		if strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, fmt.Errorf("the condition key %q has a space or a control character in its name", key)
		}
	}
	values, err := conditionValues(raw)
	if err != nil {
		return nil, err
	}
	c.Values = values
	name := op
	switch {
	case strings.HasPrefix(name, "ForAnyValue:"):
		c.set, name = forAnyValue, strings.TrimPrefix(name, "ForAnyValue:")
	case strings.HasPrefix(name, "ForAllValues:"):
		c.set, name = forAllValues, strings.TrimPrefix(name, "ForAllValues:")
	}
	if name == "Null" && c.set == single {
		c.null = true
		for _, v := range values {
			if v != "true" && v != "false" {
				return nil, fmt.Errorf("Null takes true or false, not %q", v)
			}
		}
		return c, nil
	}
	if base, ok := strings.CutSuffix(name, "IfExists"); ok {
		c.ifExists, name = true, base
	}
	var check func(string) error
	var ok bool
	c.match, c.negated, check, ok = lookupOperator(name)
	if !ok {
		return nil, fmt.Errorf("%q is not a condition operator", op)
	}
	c.compared = values
	if foldsValues(c.lowerKey) {
		c.compared = make([]string, len(values))
		for i, v := range values {
			c.compared[i] = FoldKey(v)
		}
	}
	for _, v := range values {
		if check != nil {
			if err := check(v); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// foldsValues reports whether the values of key (in lower case) are
// compared with their case folded (FoldKey), on both sides: aws:TagKeys,
// whose tag keys aws:ResourceTag/ and aws:RequestTag/ fold in the key's
// name. AWS compares them as written, so that a Deny naming "owner" under
// ForAnyValue:StringEquals missed a tag "Owner", which every
// aws:ResourceTag/owner condition then read. Two tags of a CA never
// differ only in case (InvalidTagException), so folding loses nothing.
func foldsValues(key string) bool { return key == KeyTagKeys }

// conditionValues reads a value or a list of values: strings, or booleans
// and numbers, which IAM compares as the strings they are written as.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		list = []json.RawMessage{raw}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no values")
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		// encoding/json decodes null as any type's zero value: "" would
		// stand in for what the policy's writer left out.
		if string(bytes.TrimSpace(v)) == "null" {
			return nil, fmt.Errorf("values must be strings, booleans or numbers, not null")
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out = append(out, s)
			continue
		}
		var b bool
		if err := json.Unmarshal(v, &b); err == nil {
			out = append(out, strconv.FormatBool(b))
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			out = append(out, n.String())
			continue
		}
		return nil, fmt.Errorf("values must be strings, booleans or numbers")
	}
	return out, nil
}

// holds reports whether the condition holds for a request whose values of
// the key are values; present is false when the request has no value of
// it. IAM's rules: a key the request lacks makes a condition false, but
// true for a negated operator (StringNotEquals, ...) and for ...IfExists;
// Null tests the key's presence itself. ForAnyValue holds if one of the
// request's values matches, and never for none; ForAllValues if each
// does, and always for none.
func (c *Condition) holds(values []string, present bool) bool {
	if c.null {
		want := "false"
		if !present || len(values) == 0 {
			want = "true"
		}
		for _, v := range c.Values {
			if v == want {
				return true
			}
		}
		return false
	}
	if c.ifExists && (!present || len(values) == 0) {
		return true
	}
	if foldsValues(c.lowerKey) {
		folded := make([]string, len(values))
		for i, v := range values {
			folded[i] = FoldKey(v)
		}
		values = folded
	}
	matches := func(v string) bool { return c.match(v, c.compared) != c.negated }
	switch c.set {
	case forAnyValue:
		for _, v := range values {
			if matches(v) {
				return true
			}
		}
		return false
	case forAllValues:
		for _, v := range values {
			if !matches(v) {
				return false
			}
		}
		return true
	}
	if !present || len(values) == 0 {
		return c.negated
	}
	any := false
	for _, v := range values {
		if c.match(v, c.compared) {
			any = true
			break
		}
	}
	return any != c.negated
}

func stringEquals(ignoreCase bool) matcher {
	return func(v string, policy []string) bool {
		for _, p := range policy {
			if v == p || ignoreCase && strings.EqualFold(v, p) {
				return true
			}
		}
		return false
	}
}

func stringLike(v string, policy []string) bool {
	for _, p := range policy {
		if Match(p, v) {
			return true
		}
	}
	return false
}

func arnLike(v string, policy []string) bool {
	for _, p := range policy {
		if MatchARN(p, v) {
			return true
		}
	}
	return false
}

func checkARNPattern(p string) error {
	if p != "*" && strings.Count(p, ":") < 5 {
		return fmt.Errorf("%q is not an ARN", p)
	}
	return nil
}

func ipAddress(v string, policy []string) bool {
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return false
	}
	// netip's Contains is false for an address with a zone (fe80::1%eth0,
	// a link-local client's): a Deny of fe80::/10 would deny nothing.
	addr = addr.Unmap().WithZone("")
	for _, p := range policy {
		if prefix, err := parsePrefix(p); err == nil && prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// parsePrefix reads an address range in CIDR notation, or one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return a.Unmap().Prefix(a.Unmap().BitLen())
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	// An IPv4 range written as IPv6 (::ffff:10.0.0.0/104) counts its bits
	// from the IPv6 address's first: requests' addresses are unmapped, and
	// so is it, less the 96 bits of its prefix. With the bits kept, it
	// was an invalid prefix that contained no address.
	if a := p.Addr(); a.Is4In6() {
		switch bits := p.Bits(); {
		case bits >= 96:
			return netip.PrefixFrom(a.Unmap(), bits-96).Masked(), nil
		case bits <= 32:
			// Read, before, as an IPv4 range of as many bits: a policy
			// that gives one keeps its meaning.
			return netip.PrefixFrom(a.Unmap(), bits).Masked(), nil
		default:
			return netip.Prefix{}, fmt.Errorf("an IPv4 range in IPv6 form takes at least 96 bits (::ffff:10.0.0.0/104 is 10.0.0.0/8)")
		}
	}
	return p.Masked(), nil
}

func checkPrefix(s string) error {
	_, err := parsePrefix(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address or CIDR range: %v", s, err)
	}
	return nil
}

func numeric(ok func(int) bool) matcher {
	return func(v string, policy []string) bool {
		x, good := parseNumber(v)
		if !good {
			return false
		}
		for _, p := range policy {
			if y, good := parseNumber(p); good && ok(x.Cmp(y)) {
				return true
			}
		}
		return false
	}
}

// decimal is what IAM's numeric operators compare: an integer or a
// decimal number, of at most 64 characters. An exponent is not one:
// big.Rat takes exponents up to a million, and "1e999999" took 15 ms to
// read, at every evaluation of a policy that can hold thousands.
var decimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

func parseNumber(s string) (*big.Rat, bool) {
	if len(s) > 64 || !decimal.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

func checkNumber(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("%q is too long for a number", s[:64])
	}
	if _, ok := parseNumber(s); !ok {
		return fmt.Errorf("%q is not a number: numeric conditions compare integers and decimals, such as 10 or 2.5", s)
	}
	return nil
}

// parseDate reads a date as IAM writes them: ISO 8601 (RFC 3339, or a
// date alone) or epoch seconds. Digits that would be seconds before
// 1973-03-03 (fewer than nine) are no date: "2027" and "20270101" are a
// year and an ISO 8601 date to whoever wrote them, and as seconds, dates
// of 1970, a Deny until then would deny nothing.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= minEpochDate {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// minEpochDate is the least number of seconds read as a date.
const minEpochDate = 100_000_000

func date(ok func(int) bool) matcher {
	return func(v string, policy []string) bool {
		x, good := parseDate(v)
		if !good {
			return false
		}
		for _, p := range policy {
			if y, good := parseDate(p); good && ok(x.Compare(y)) {
				return true
			}
		}
		return false
	}
}

func checkDate(s string) error {
	if _, ok := parseDate(s); !ok {
		return fmt.Errorf("%q is not a date: use ISO 8601 with its dashes, such as 2027-01-31T00:00:00Z, or seconds since 1970 of %d or more", s, minEpochDate)
	}
	return nil
}

func boolEquals(v string, policy []string) bool {
	for _, p := range policy {
		if strings.EqualFold(v, p) {
			return true
		}
	}
	return false
}

func checkBool(s string) error {
	if !strings.EqualFold(s, "true") && !strings.EqualFold(s, "false") {
		return fmt.Errorf("Bool takes true or false, not %q", s)
	}
	return nil
}
