// Package policy reads IAM policy documents and decides requests with
// them, as AWS Identity and Access Management documents its evaluation:
// an explicit Deny wins, then an Allow, and anything else is an implicit
// deny. It holds the grammar (Version, Statement, Sid, Effect,
// Principal, Action/NotAction, Resource/NotResource, Condition) and the
// condition operators, and nothing of the server: callers give it the
// request's action, resource and condition values.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Effect is what a statement does to the requests it applies to.
type Effect string

// Effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Kind says where a policy is attached, which changes its grammar: an
// identity policy (on an access key) names no principal, a resource
// policy (on a CA) must.
type Kind int

// Kinds of policies.
const (
	Identity Kind = iota
	Resource
)

// MaxSize bounds a policy document, as the API's AWSPolicy shape does.
const MaxSize = 81920

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	ID         string
	Statements []*Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect Effect
	// Principals are the accounts a resource policy's statement applies
	// to; All is "*".
	Principals    []string
	AllPrincipals bool
	// Exactly one of Actions and NotActions is set, and one of Resources
	// and NotResources.
	Actions, NotActions     []string
	Resources, NotResources []string
	Conditions              []*Condition
	// Index is the statement's place in its policy, from 0.
	Index int
}

// Name is how a decision names the statement: its Sid, or its index.
func (s *Statement) Name() string {
	if s.Sid != "" {
		return s.Sid
	}
	return fmt.Sprintf("statement %d", s.Index+1)
}

// Error is a policy that is not valid; its message says where.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func invalid(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Parse reads a policy document of the given kind. Its errors are *Error.
func Parse(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, invalid("the policy is %d bytes long; at most %d are allowed", len(doc), MaxSize)
	}
	var raw map[string]json.RawMessage
	if err := decodeStrict(doc, &raw); err != nil || raw == nil {
		return nil, invalid("the policy is not a JSON object: %v", errText(err))
	}
	p := &Policy{}
	for k, v := range raw {
		var err error
		switch k {
		case "Version":
			err = json.Unmarshal(v, &p.Version)
			if err == nil && p.Version != "2012-10-17" && p.Version != "2008-10-17" {
				err = fmt.Errorf("%q is not a policy language version: use 2012-10-17", p.Version)
			}
		case "Id":
			err = json.Unmarshal(v, &p.ID)
		case "Statement":
			p.Statements, err = parseStatements(v, kind)
		default:
			err = fmt.Errorf("unknown element")
		}
		if err != nil {
			return nil, invalid("%s: %v", k, err)
		}
	}
	if len(p.Statements) == 0 {
		return nil, invalid("the policy has no Statement")
	}
	if v := p.variable(); v != "" {
		return nil, invalid("%q uses a policy variable (or one of its escapes, such as ${*}), which this server does not substitute: write the value itself", v)
	}
	// A key AWS supplies and the server never does is absent from every
	// request: a Deny that tests it would deny nothing, and an Allow that
	// tests it with a Not... operator would allow whatever it says. An
	// identity policy is the operator's, whom the server can tell so. A
	// CA's resource policy comes through PutPolicy, where AWS takes any
	// key (see README), and may test AWS's keys of principals where that
	// errs on the side of refusing (an Allow on aws:PrincipalOrgID then
	// allows nothing here); but not ACM Private
	// CA's own: its X.509 certificate condition keys (acm-pca:x509Key/...,
	// acm-pca:x509Ext/...) describe the certificate being issued, and
	// AWS's way of allowing only some names in a shared CA, ForAllValues
	// over such a key, is true of a key that is absent: it would allow
	// every certificate.
	for _, st := range p.Statements {
		for _, c := range st.Conditions {
			// In a CA's policy (Allow alone), a key of principals AWS
			// always supplies may be tested only by a condition that is
			// false of an absent key, an Allow that allows nothing here:
			// one that holds of it (StringNotLike, ForAllValues:, Null
			// "true") allowed every key of the accounts named.
			if unsupplied(c.lowerKey) && (kind == Identity || strings.HasPrefix(c.lowerKey, "acm-pca:") || c.holds(nil, false)) {
				return nil, invalid("the condition key %s is one AWS supplies and this server does not (an access key here is no IAM principal; of ACM Private CA's keys it knows acm-pca:TemplateArn, not the X.509 certificate condition keys): every request would lack it", c.Key)
			}
		}
	}
	return p, nil
}

// variable returns a Resource, NotResource or condition value of a 2012-10-17
// policy that holds a policy variable (${...}), or "". IAM substitutes
// them in that version; read as written, they would never match, and a
// Deny that used one would deny nothing. (In 2008-10-17, the default,
// "${" is only characters.)
func (p *Policy) variable() string {
	if p.Version != "2012-10-17" {
		return ""
	}
	for _, st := range p.Statements {
		values := slices.Concat(st.Resources, st.NotResources)
		for _, c := range st.Conditions {
			values = append(values, c.Values...)
		}
		for _, v := range values {
			if strings.Contains(v, "${") {
				return v
			}
		}
	}
	return ""
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// decodeStrict decodes one JSON value, and nothing after it.
func decodeStrict(b []byte, v any) error {
	if err := uniqueNames(b); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// uniqueNames refuses a JSON document with an object that names a
// member twice: Go would keep the last, and {"Effect": "Deny", ...,
// "Effect": "Allow"} would allow, where its writer may read a Deny.
func uniqueNames(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // as the decoding that follows: a number past float64 (1e400) is no error
	// Per open object or array, its names so far (nil for an array), and
	// whether the next string of an object is a name.
	var names []map[string]bool
	var atName []bool
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		top := len(names) - 1
		switch t {
		case json.Delim('{'):
			names, atName = append(names, map[string]bool{}), append(atName, true)
			continue
		case json.Delim('['):
			names, atName = append(names, nil), append(atName, false)
			continue
		case json.Delim('}'), json.Delim(']'):
			names, atName = names[:top], atName[:top]
			top--
		default:
			if top >= 0 && names[top] != nil && atName[top] {
				name := t.(string)
				if names[top][name] {
					return fmt.Errorf("%q is given twice in one object", name)
				}
				names[top][name] = true
				atName[top] = false
				continue
			}
		}
		// A value ended: an object's next string is a name.
		if top >= 0 && names[top] != nil {
			atName[top] = true
		}
		if top < 0 && !d.More() {
			return nil
		}
	}
}

func parseStatements(v json.RawMessage, kind Kind) ([]*Statement, error) {
	var list []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, err
		}
	} else {
		list = []json.RawMessage{v}
	}
	var out []*Statement
	sids := map[string]bool{}
	for i, raw := range list {
		s, err := parseStatement(raw, kind)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %v", i+1, err)
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, fmt.Errorf("statement %d: the Sid %q is used twice", i+1, s.Sid)
			}
			sids[s.Sid] = true
		}
		s.Index = i
		out = append(out, s)
	}
	return out, nil
}

func parseStatement(v json.RawMessage, kind Kind) (*Statement, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	s := &Statement{}
	for k, v := range raw {
		var err error
		switch k {
		case "Sid":
			err = json.Unmarshal(v, &s.Sid)
		case "Effect":
			err = json.Unmarshal(v, &s.Effect)
			if err == nil && s.Effect != Allow && s.Effect != Deny {
				err = fmt.Errorf("%q is neither Allow nor Deny", s.Effect)
			}
		case "Principal":
			if kind == Identity {
				err = fmt.Errorf("a policy attached to an access key names no principal")
				break
			}
			s.Principals, s.AllPrincipals, err = parsePrincipal(v)
		case "NotPrincipal":
			err = fmt.Errorf("NotPrincipal is not supported")
		case "Action":
			s.Actions, err = parseActions(v)
		case "NotAction":
			s.NotActions, err = parseActions(v)
		case "Resource":
			s.Resources, err = parseResources(v)
		case "NotResource":
			s.NotResources, err = parseResources(v)
		case "Condition":
			s.Conditions, err = parseConditions(v)
		default:
			err = fmt.Errorf("unknown element")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
	}
	switch {
	case s.Effect == "":
		return nil, fmt.Errorf("Effect is required")
	case (s.Actions == nil) == (s.NotActions == nil):
		return nil, fmt.Errorf("exactly one of Action and NotAction is required")
	case s.Resources != nil && s.NotResources != nil:
		return nil, fmt.Errorf("Resource and NotResource cannot both be given")
	case s.Resources == nil && s.NotResources == nil && kind == Identity:
		return nil, fmt.Errorf("Resource or NotResource is required")
	case kind == Resource && s.Principals == nil && !s.AllPrincipals:
		return nil, fmt.Errorf("Principal is required in a policy attached to a certificate authority")
	}
	return s, nil
}

// stringList reads a string or a non-empty list of strings.
func stringList(v json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("must be a string or a list of strings")
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("must not be empty")
	}
	return list, nil
}

func parseActions(v json.RawMessage) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if a == "*" {
			continue
		}
		if r, ok := nonASCII(a); ok {
			return nil, fmt.Errorf("%q is not an action: it holds %U, and actions' names are ASCII", a, r)
		}
		// A space or another character no action has would match none,
		// and a Deny of it deny nothing.
		if !actionPattern.MatchString(a) {
			return nil, fmt.Errorf("%q is not an action: write service:Action, such as acm-pca:IssueCertificate, of letters, digits and the wildcards * and ?", a)
		}
	}
	return list, nil
}

// nonASCII returns the first character of s past ASCII, if any. Actions
// and condition keys match regardless of case, and Unicode's case folding
// makes ASCII of some letters (U+212A, the Kelvin sign, is "k"; U+0130 is
// "i"): "acm-pca:Revo\u212AeCertificate" granted RevokeCertificate, and
// "aws:Source\u0130p" tested aws:SourceIp, unseen by a search for them.
// Every action's name and condition key's is ASCII.
func nonASCII(s string) (rune, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return r > unicode.MaxASCII })
	if i < 0 {
		return 0, false
	}
	return []rune(s[i:])[0], true
}

// actionPattern is what an action, or a pattern of actions, is: its
// service's prefix, and its name or a pattern of names.
var actionPattern = regexp.MustCompile(`^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$`)

func parseResources(v json.RawMessage) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		if r == "*" {
			continue
		}
		if strings.Count(r, ":") < 5 || !strings.HasPrefix(r, "arn:") {
			return nil, fmt.Errorf("%q is neither * nor an ARN", r)
		}
		// ARNs compare case and all: one with a space or a control
		// character about it, or with upper case where this server's
		// ARNs have none, would match no resource, and a Deny of it deny
		// nothing.
		if strings.TrimSpace(r) != r || strings.ContainsFunc(r, unicode.IsControl) {
			return nil, fmt.Errorf("%q is not an ARN: it has a space or a control character about it", r)
		}
		// (A policy variable, refused in a 2012-10-17 policy, is said so.)
		parts := strings.SplitN(r, ":", 6)
		if strings.Contains(r, "${") || !strings.EqualFold(parts[2], "acm-pca") {
			continue
		}
		if strings.ContainsFunc(parts[1]+parts[2]+parts[3]+parts[5], unicode.IsUpper) {
			return nil, fmt.Errorf("%q matches no certificate authority: their ARNs are in lower case but for the account", r)
		}
		if account := parts[4]; !strings.ContainsAny(account, "*?") && (len(account) != 12 || strings.Trim(account, "0123456789") != "") {
			return nil, fmt.Errorf("%q matches no certificate authority: its account %q is not 12 digits", r, account)
		}
	}
	return list, nil
}

// parsePrincipal reads the principals of a resource policy's statement:
// accounts of this server, as "AWS": "123456789012" or
// "arn:aws:iam::123456789012:root", or "*".
func parsePrincipal(v json.RawMessage) (accounts []string, all bool, err error) {
	var star string
	if json.Unmarshal(v, &star) == nil {
		if star != "*" {
			return nil, false, fmt.Errorf("must be * or {\"AWS\": accounts}")
		}
		return nil, true, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, false, fmt.Errorf("must be * or {\"AWS\": accounts}")
	}
	for k, v := range m {
		if k != "AWS" {
			return nil, false, fmt.Errorf("%s principals are not supported: name accounts with \"AWS\"", k)
		}
		list, err := stringList(v)
		if err != nil {
			return nil, false, fmt.Errorf("AWS: %v", err)
		}
		for _, p := range list {
			if p == "*" {
				all = true
				continue
			}
			account, ok := AccountOf(p)
			if !ok {
				return nil, false, fmt.Errorf("%q is not an account: use its 12-digit id or arn:aws:iam::<id>:root", p)
			}
			accounts = append(accounts, account)
		}
	}
	if accounts == nil && !all {
		return nil, false, fmt.Errorf("names no principal")
	}
	return accounts, all, nil
}

// AccountOf returns the account a principal names: a 12-digit id, or the
// account's root ARN, arn:<partition>:iam::<id>:root.
func AccountOf(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, "arn:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) != 5 || parts[0] == "" || parts[1] != "iam" || parts[2] != "" || parts[4] != "root" {
			return "", false
		}
		p = parts[3]
	}
	// 12 digits, as openpca.ValidAccountID checks: the domain imports this
	// package, which therefore cannot import the domain.
	if len(p) != 12 || strings.Trim(p, "0123456789") != "" {
		return "", false
	}
	return p, true
}
