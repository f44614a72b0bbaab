package authority

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/policy"
)

// ActionPrefix prefixes the actions policies name: acm-pca:<operation>,
// for the API's operations and the audit log's.
const ActionPrefix = "acm-pca:"

// shareable are the actions a CA's policy may grant another account: those
// AWS Private CA documents for cross-account access (its RAM permissions'
// read actions, and IssueCertificate and RevokeCertificate, their write
// actions), and the audit log's checkpoints and proofs, OpenPCA's own, so
// that an auditor's account can check reports against the server.
var shareable = []string{
	"DescribeCertificateAuthority", "GetCertificate", "GetCertificateAuthorityCertificate",
	"ListPermissions", "ListTags", "IssueCertificate", "RevokeCertificate",
	"GetAuditLogCheckpoint", "GetAuditLogConsistencyProof", "GetAuditLogInclusionProof",
}

// Condition keys the server sets (policy lists them all).
const (
	keyTemplateArn    = policy.KeyTemplateArn
	keyTagKeys        = policy.KeyTagKeys
	prefixResourceTag = policy.PrefixResourceTag
	prefixRequestTag  = policy.PrefixRequestTag
)

// conditions are the values of condition keys a request sets itself,
// such as the template of an IssueCertificate, by key in lower case.
type conditions map[string][]string

// requestTags are the condition values of tags a request sets.
func requestTags(tags []openpca.Tag, withValues bool) conditions {
	c := conditions{keyTagKeys: {}}
	for _, t := range tags {
		c[keyTagKeys] = append(c[keyTagKeys], t.Key)
		if withValues {
			c[prefixRequestTag+policy.FoldKey(t.Key)] = []string{t.Value}
		}
	}
	return c
}

// authorize decides whether the caller may perform the request's
// operation on resource: the ARN of ca, or, with ca nil, the resource of
// an operation on no CA (see Decide). A CA of another account that did not
// share it with the caller's is not found, as if it did not exist; other
// refusals are AccessDeniedException, and are logged.
func (s *Service) authorize(ctx context.Context, c openpca.Caller, ca *openpca.CA, resource string, values conditions) error {
	op := openpca.OperationFrom(ctx)
	if op == "" {
		return errors.New("authority: request without an operation")
	}
	return s.authorizeAction(ctx, c, ActionPrefix+op, ca, resource, values)
}

// authorizeAction is authorize, for an action other than the request's
// operation that the request also needs.
func (s *Service) authorizeAction(ctx context.Context, c openpca.Caller, action string, ca *openpca.CA, resource string, values conditions) error {
	v := Decide(s.policies, c, action, ca, resource, ConditionValues(c, ca, s.region, values, s.now()))
	switch {
	case v.NotShared:
		if v.UnreadablePolicy != nil {
			// The caller learns nothing of it; the operator must.
			s.logger.WarnContext(ctx, "a certificate authority's policy is no longer one this version takes: it is shared with no account until it is put again (PutPolicy) or deleted", "ca", ca.ARN, "account", c.AccountID, "error", v.UnreadablePolicy)
		}
		return caNotFound(ca.ARN)
	case !v.Allowed:
		if !openpca.DenialUnlogged(ctx) {
			s.logger.WarnContext(ctx, "access denied", "key", c.Principal, "account", c.AccountID, "action", v.Action, "resource", v.Resource, "reason", v.Reason)
		}
		return openpca.Errorf(openpca.CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s", c.Principal, v.Action, v.Resource, v.Reason)
	}
	return nil
}

// Verdict is what Decide decided, and why.
type Verdict struct {
	Action, Resource string
	Allowed          bool
	// NotShared is set when the CA is another account's, which has not
	// shared it with the caller's account at all.
	NotShared bool
	// UnreadablePolicy is why the CA's policy is not one this version
	// takes, when it is not (NotShared is set then).
	UnreadablePolicy error
	// Reason says why, as AWS words its denials ("because no
	// identity-based policy allows the ... action"), or which statement
	// allowed.
	Reason string
}

// Decide decides whether caller c may perform action on resource (the ARN
// of ca, or, with ca nil, the resource of an operation on no CA), with the
// condition keys' values in context (see ConditionValues). As IAM decides
// across accounts: on another account's CA, the CA's policy must allow it
// for the caller's account; and the caller's identity policies, if it has
// any, must allow it too. An explicit Deny in them wins. A caller without
// identity policies may do anything its account may.
func Decide(policies *CAPolicies, c openpca.Caller, action string, ca *openpca.CA, resource string, context map[string][]string) Verdict {
	if ca != nil {
		resource = ca.ARN
	}
	v := Verdict{Action: action, Resource: resource}
	r := &policy.Request{Action: action, Resource: resource, Account: c.AccountID, Context: context}
	if ca != nil && ca.AccountID != c.AccountID {
		var p *policy.Policy
		var err error
		if ca.Policy != "" {
			p, err = policies.Parse(ca.Policy, ca.ARN)
		}
		if err != nil {
			// Fails closed: a policy an earlier version stored and this
			// one no longer takes shares the CA with no account.
			v.NotShared, v.UnreadablePolicy = true, err
			v.Reason = fmt.Sprintf("because the policy of %s is no longer one this version takes (%v), and shares it with no account", ca.ARN, err)
			return v
		}
		if p == nil || !p.Names(c.AccountID) {
			v.NotShared, v.Reason = true, "because "+ca.ARN+" is not shared with account "+c.AccountID
			return v
		}
		d := policy.Evaluate([]policy.Named{{Name: "the policy of " + ca.ARN, Policy: p}}, r)
		if !d.Allowed {
			v.Reason = fmt.Sprintf("because no resource-based policy allows the %s action", action)
			return v
		}
		v.Reason = fmt.Sprintf("allowed by %s (%s)", d.Policy, d.Statement)
	}
	if c.Policies == nil {
		v.Allowed = true
		if v.Reason == "" {
			v.Reason = "allowed: the key has no policy, and may do everything in its account"
		}
		return v
	}
	switch d := policy.Evaluate(c.Policies, r); {
	case d.Denied:
		v.Reason = fmt.Sprintf("with an explicit deny in an identity-based policy (%s, %s)", d.Policy, d.Statement)
	case !d.Allowed:
		v.Reason = fmt.Sprintf("because no identity-based policy allows the %s action", action)
	default:
		v.Allowed = true
		v.Reason = strings.TrimPrefix(v.Reason+"; ", "; ") + fmt.Sprintf("allowed by %s (%s)", d.Policy, d.Statement)
	}
	return v
}

// ConditionValues are the values of the condition keys for a request of
// c on ca (nil for none) at now, to a server of region ("" if not known),
// with the request's own values. The resource's account is the CA's, or
// the caller's for a request on no CA (one that creates or lists the
// caller's own).
func ConditionValues(c openpca.Caller, ca *openpca.CA, region string, values map[string][]string, now time.Time) map[string][]string {
	m := map[string][]string{
		policy.KeyCurrentTime:           {now.UTC().Format(time.RFC3339)},
		policy.KeyEpochTime:             {strconv.FormatInt(now.Unix(), 10)},
		policy.KeyPrincipalAccount:      {c.AccountID},
		policy.KeySecureTransport:       {fmt.Sprint(c.SecureTransport)},
		policy.KeyResourceAccount:       {c.AccountID},
		policy.KeyPrincipalIsAWSService: {"false"},
		policy.KeyViaAWSService:         {"false"},
	}
	if region != "" {
		m[policy.KeyRequestedRegion] = []string{region}
	}
	if c.SourceIP != "" {
		m[policy.KeySourceIP] = []string{c.SourceIP}
	}
	if ca != nil {
		m[policy.KeyResourceAccount] = []string{ca.AccountID}
		for _, t := range ca.Tags {
			m[prefixResourceTag+policy.FoldKey(t.Key)] = []string{t.Value}
		}
	}
	for k, v := range values {
		m[k] = v
	}
	return m
}
