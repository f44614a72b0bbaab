package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// This file checks Evaluate against a reference: a second, deliberately
// naive reading of IAM's documented rules (deny beats allow, NotAction,
// IfExists, Null, ForAllValues on an empty set, ...), written apart from
// the evaluator and sharing none of its code, over policies and requests
// made from the fuzzer's bytes.

// refGlob compiles a pattern with IAM's wildcards to a regular expression.
func refGlob(pattern string, fold bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)")
	if fold {
		b.WriteString("(?i)")
	}
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func refARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	p, a := strings.SplitN(pattern, ":", 6), strings.SplitN(arn, ":", 6)
	if len(p) != 6 || len(a) != 6 {
		return false
	}
	for i := range p {
		if !refGlob(p[i], false).MatchString(a[i]) {
			return false
		}
	}
	return true
}

type refStatement struct {
	Effect            string
	Action, NotAction []string
	Resource, NotRes  []string
	Conditions        []refCondition
}

type refCondition struct {
	Op, Key string
	Values  []string
}

// refHolds is IAM's documented meaning of one condition.
func refHolds(c refCondition, ctx map[string][]string) bool {
	values, present := ctx[strings.ToLower(c.Key)]
	present = present && len(values) > 0
	op := c.Op
	if op == "Null" {
		for _, v := range c.Values {
			if (v == "true") == !present {
				return true
			}
		}
		return false
	}
	set := ""
	if s, rest, ok := strings.Cut(op, ":"); ok {
		set, op = s, rest
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	if ifExists && !present {
		return true
	}
	negated := strings.Contains(op, "Not")
	one := func(v string) bool { // whether v matches one of the policy's values
		for _, p := range c.Values {
			switch strings.Replace(op, "Not", "", 1) {
			case "StringEquals":
				if v == p {
					return true
				}
			case "StringLike":
				if refGlob(p, false).MatchString(v) {
					return true
				}
			case "Bool":
				if strings.EqualFold(v, p) {
					return true
				}
			}
		}
		return false
	}
	switch set {
	case "ForAllValues":
		for _, v := range values {
			if one(v) == negated {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, v := range values {
			if one(v) != negated {
				return true
			}
		}
		return false
	}
	if !present {
		return negated
	}
	matched := false
	for _, v := range values {
		matched = matched || one(v)
	}
	return matched != negated
}

func refApplies(s refStatement, action, resource string, ctx map[string][]string) bool {
	anyOf := func(patterns []string, f func(string) bool) bool {
		for _, p := range patterns {
			if f(p) {
				return true
			}
		}
		return false
	}
	actionMatch := func(p string) bool { return p == "*" || refGlob(p, true).MatchString(action) }
	resourceMatch := func(p string) bool { return refARN(p, resource) }
	if s.Action != nil && !anyOf(s.Action, actionMatch) || s.NotAction != nil && anyOf(s.NotAction, actionMatch) {
		return false
	}
	if s.Resource != nil && !anyOf(s.Resource, resourceMatch) || s.NotRes != nil && anyOf(s.NotRes, resourceMatch) {
		return false
	}
	for _, c := range s.Conditions {
		if !refHolds(c, ctx) {
			return false
		}
	}
	return true
}

// byteSource hands out choices from the fuzzer's bytes, then zeros.
type byteSource struct{ b []byte }

func (s *byteSource) pick(n int) int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0]) % n
	s.b = s.b[1:]
	return v
}

func (s *byteSource) subset(pool []string, min int) []string {
	var out []string
	for len(out) < min || (len(out) < 3 && s.pick(2) == 1) {
		out = append(out, pool[s.pick(len(pool))])
	}
	return out
}

var (
	refActions   = []string{"acm-pca:IssueCertificate", "acm-pca:GetCertificate", "acm-pca:Issue*", "acm-pca:*", "*", "acm-pca:?etCertificate", "ACM-PCA:getcertificate"}
	refResources = []string{"*", ca, "arn:aws:acm-pca:*:111122223333:certificate-authority/*", "arn:aws:acm-pca:*:999999999999:*", "arn:*:acm-pca:us-?ast-1:*:*"}
	refOps       = []string{"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIfExists", "StringNotLikeIfExists",
		"ForAllValues:StringEquals", "ForAnyValue:StringEquals", "ForAllValues:StringNotEquals", "ForAnyValue:StringNotLike",
		"ForAllValues:StringLikeIfExists", "Null", "Bool"}
	refKeys   = []string{"k:one", "k:set", "K:SET"}
	refValues = []string{"x", "y", "x*", "?", "true"}
)

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("deny beats allow; NotAction; IfExists; ForAllValues on an empty set"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{b: data}
		var named []Named
		var ref []refStatement
		for p := range 1 + src.pick(3) {
			var stmts []any
			for range 1 + src.pick(3) {
				s := refStatement{Effect: []string{"Allow", "Deny"}[src.pick(2)]}
				doc := map[string]any{"Effect": s.Effect}
				if src.pick(3) == 0 {
					s.NotAction = src.subset(refActions, 1)
					doc["NotAction"] = s.NotAction
				} else {
					s.Action = src.subset(refActions, 1)
					doc["Action"] = s.Action
				}
				if src.pick(4) == 0 {
					s.NotRes = src.subset(refResources, 1)
					doc["NotResource"] = s.NotRes
				} else {
					s.Resource = src.subset(refResources, 1)
					doc["Resource"] = s.Resource
				}
				conds := map[string]map[string][]string{}
				for range src.pick(3) {
					c := refCondition{Op: refOps[src.pick(len(refOps))], Key: refKeys[src.pick(len(refKeys))]}
					if c.Op == "Null" || c.Op == "Bool" {
						c.Values = []string{[]string{"true", "false"}[src.pick(2)]}
					} else {
						c.Values = src.subset(refValues, 1)
					}
					if conds[c.Op] == nil {
						conds[c.Op] = map[string][]string{}
					}
					if _, dup := conds[c.Op][c.Key]; dup {
						continue
					}
					conds[c.Op][c.Key] = c.Values
					s.Conditions = append(s.Conditions, c)
				}
				if len(conds) > 0 {
					doc["Condition"] = conds
				}
				stmts = append(stmts, doc)
				ref = append(ref, s)
			}
			b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
			parsed, err := Parse(b, Identity)
			if err != nil {
				t.Fatalf("a valid policy was refused: %v\n%s", err, b)
			}
			named = append(named, Named{Name: fmt.Sprint(p), Policy: parsed})
		}
		action := []string{"acm-pca:IssueCertificate", "acm-pca:GetCertificate", "acm-pca:DeleteCertificateAuthority"}[src.pick(3)]
		resource := []string{ca, "arn:aws:acm-pca:eu-west-1:999999999999:certificate-authority/x"}[src.pick(2)]
		ctx := map[string][]string{}
		for _, key := range []string{"k:one", "k:set"} {
			switch src.pick(3) {
			case 1:
				ctx[key] = []string{refValues[src.pick(len(refValues))]}
			case 2:
				ctx[key] = src.subset(append(refValues, "z"), 0)
			}
		}

		var allow, deny bool
		for _, s := range ref {
			if refApplies(s, action, resource, ctx) {
				allow = allow || s.Effect == "Allow"
				deny = deny || s.Effect == "Deny"
			}
		}
		d := Evaluate(named, &Request{Action: action, Resource: resource, Context: ctx})
		if d.Denied != deny || d.Allowed != (allow && !deny) {
			t.Fatalf("Evaluate = %+v; the reference: allow %v, deny %v\naction %s resource %s context %v\nstatements %+v", d, allow, deny, action, resource, ctx, ref)
		}
	})
}
