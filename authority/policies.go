package authority

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/openpca/openpca"
	"github.com/openpca/openpca/policy"
)

// Actions lists every action a policy can name, without its acm-pca:
// prefix: the API's operations, and the audit log's.
func Actions() []string {
	t := reflect.TypeFor[openpca.PrivateCA]()
	actions := []string{openpca.OperationAuditCheckpoint, openpca.OperationAuditConsistency, openpca.OperationAuditInclusion, openpca.OperationAuditReports, openpca.OperationListCertificates}
	for i := range t.NumMethod() {
		actions = append(actions, t.Method(i).Name)
	}
	slices.Sort(actions)
	return actions
}

// maxSharedAccounts bounds the accounts one CA's policy shares it with
// (our choice; AWS documents none): each PutPolicy writes a row per
// account in the transaction every server's writes wait for, and a policy
// of 80 KB names 5,300 (110 ms).
const maxSharedAccounts = 1000

// PutPolicy attaches a resource policy to a CA, replacing the one it had.
// As AWS Private CA documents, such a policy may only allow (never deny),
// only accounts, and only the actions another account may be granted on a
// CA (see shareable), on that CA. The accounts it names then reach the CA
// as far as the policy and their own identity policies both allow.
func (s *Service) PutPolicy(ctx context.Context, in *openpca.PutPolicyRequest) error {
	ca, err := s.updateCA(ctx, in.ResourceArn, nil, func(ca *openpca.CA) error {
		p, err := policy.Parse([]byte(in.Policy), policy.Resource)
		if err != nil {
			return openpca.Errorf(openpca.CodeInvalidPolicy, "The policy is invalid: %v.", err)
		}
		if err := checkPolicyState(ca, s.now()); err != nil {
			return err
		}
		accounts, err := checkCAPolicy(p, ca.ARN)
		if err != nil {
			return err
		}
		// The CA's own account may be named, as on AWS, and grants
		// nothing: it is not a CA shared with the account.
		accounts = slices.DeleteFunc(accounts, func(a string) bool { return a == ca.AccountID })
		if len(accounts) > maxSharedAccounts {
			return openpca.Errorf(openpca.CodeInvalidPolicy, "The policy shares the CA with %d accounts; at most %d are taken.", len(accounts), maxSharedAccounts)
		}
		ca.Policy, ca.SharedWith = in.Policy, accounts
		return nil
	})
	if errors.Is(err, openpca.ErrLimitExceeded) {
		return openpca.Errorf(openpca.CodeInvalidPolicy, "The policies of the account's certificate authorities would hold more than the %d bytes they may hold all together: each is read whenever an account it names lists the certificate authorities shared with it.",
			openpca.MaxAccountPolicySize)
	}
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority policy attached", "ca", ca.ARN, "shared_with", ca.SharedWith)
	}
	return err
}

// GetPolicy returns the resource policy of a CA; ResourceNotFoundException
// if it has none.
func (s *Service) GetPolicy(ctx context.Context, in *openpca.GetPolicyRequest) (*openpca.GetPolicyResponse, error) {
	ca, err := s.findCA(ctx, in.ResourceArn, nil)
	if err != nil {
		return nil, err
	}
	if ca.Policy == "" {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "The certificate authority %s has no policy attached.", ca.ARN)
	}
	return &openpca.GetPolicyResponse{Policy: ca.Policy}, nil
}

// DeletePolicy removes the resource policy of a CA, and with it every
// access it gave other accounts. A CA without a policy is left as it is,
// as AWS does.
//
// AWS lists LockoutPreventedException among its errors; since a CA's
// policy can only give other accounts access, removing it can never lock
// out the CA's own account, and OpenPCA never returns it.
//
// A deleted CA's policy may be removed too (not replaced): the accounts it
// names still reach the CA for its restoration period (up to 30 days),
// and an owner who deleted it to cut it off must be able to end that
// without restoring it first. AWS documents no state that refuses it.
func (s *Service) DeletePolicy(ctx context.Context, in *openpca.DeletePolicyRequest) error {
	ca, err := s.updateCA(ctx, in.ResourceArn, nil, func(ca *openpca.CA) error {
		ca.Policy, ca.SharedWith = "", nil
		return nil
	})
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority policy removed", "ca", ca.ARN)
	}
	return err
}

// checkPolicyState refuses to give a deleted CA a policy.
func checkPolicyState(ca *openpca.CA, now time.Time) error {
	if st := ca.StatusAt(now); st == openpca.CertificateAuthorityStatusDeleted {
		return invalidState("The certificate authority %s is DELETED; restore it to change its policy (DeletePolicy removes it).", ca.ARN)
	}
	return nil
}

// CAPolicies reads CAs' stored policies as PutPolicy would take them now.
// What PutPolicy checked when it stored a policy may no longer hold: an
// earlier version, with fewer actions, took a pattern that now matches one
// a CA cannot share (acm-pca:*tAudit* matched only the audit log's actions
// before ListAuditReports), and a policy written to the database by hand
// was never checked. Such a policy is an error, and shares the CA with no
// account.
//
// It keeps what it parsed, and what it checked: Decide reads the CA's
// policy for each request another account makes, and the check runs each
// of the policy's action patterns over every action, 2.9 ms a decision
// for the largest policy PutPolicy takes, against 64 µs with the check
// kept (BenchmarkDecideShared).
type CAPolicies struct {
	parsed  policy.Cache
	checked *lru.Cache[checkedPolicy, error]
}

// checkedPolicy is a policy checked for a CA: its text's SHA-256, not the
// policy, which the cache would keep in memory past policy.Cache's bound.
type checkedPolicy struct {
	sum   [sha256.Size]byte
	caARN string
}

// maxCheckedPolicies bounds the checks CAPolicies keeps, as policy.Cache
// bounds the policies it keeps.
const maxCheckedPolicies = 1000

// NewCAPolicies returns an empty CAPolicies.
func NewCAPolicies() *CAPolicies {
	checked, _ := lru.New[checkedPolicy, error](maxCheckedPolicies)
	return &CAPolicies{checked: checked}
}

// Parse returns caARN's stored policy, doc, parsed and checked.
func (c *CAPolicies) Parse(doc, caARN string) (*policy.Policy, error) {
	p, err := c.parsed.Parse(doc, policy.Resource)
	if err != nil {
		return nil, err
	}
	k := checkedPolicy{sha256.Sum256([]byte(doc)), caARN}
	err, ok := c.checked.Get(k)
	if !ok {
		_, err = checkCAPolicy(p, caARN)
		c.checked.Add(k, err)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkCAPolicy checks what a CA's policy may say, and returns the
// accounts it names.
func checkCAPolicy(p *policy.Policy, caARN string) ([]string, error) {
	invalid := func(s *policy.Statement, format string, args ...any) error {
		return openpca.Errorf(openpca.CodeInvalidPolicy, "The policy is invalid: %s: %s.", s.Name(), fmt.Sprintf(format, args...))
	}
	actions := Actions()
	var accounts []string
	for _, s := range p.Statements {
		switch {
		case s.Effect != policy.Allow:
			return nil, invalid(s, "a certificate authority's policy may only Allow")
		case s.AllPrincipals:
			return nil, invalid(s, "the principal must name accounts; * is not allowed")
		case s.NotActions != nil:
			return nil, invalid(s, "NotAction is not allowed: name the actions")
		case s.NotResources != nil || s.Resources == nil:
			return nil, invalid(s, "the Resource must be the certificate authority, %s", caARN)
		}
		for _, r := range s.Resources {
			if r != caARN {
				return nil, invalid(s, "the Resource must be the certificate authority, %s, not %s", caARN, r)
			}
		}
		for _, pattern := range s.Actions {
			matched := actionsOf(actions, pattern)
			if len(matched) == 0 {
				return nil, invalid(s, "%s is not an action of this service", pattern)
			}
			for _, a := range matched {
				if !slices.Contains(shareable, a) {
					return nil, invalid(s, "%s would grant %s%s, which a certificate authority cannot give another account; it may give %s%s",
						pattern, ActionPrefix, a, ActionPrefix, strings.Join(shareable, ", "+ActionPrefix))
				}
			}
		}
		for _, a := range s.Principals {
			if !slices.Contains(accounts, a) {
				accounts = append(accounts, a)
			}
		}
	}
	slices.Sort(accounts)
	return accounts, nil
}

// actionsOf returns the actions, of actions, that pattern matches.
func actionsOf(actions []string, pattern string) []string {
	var matched []string
	for _, a := range actions {
		if pattern == "*" || policy.MatchFold(pattern, ActionPrefix+a) {
			matched = append(matched, a)
		}
	}
	return matched
}

// CheckKeyPolicy refuses an access key's policy with an action, or a
// pattern of actions, that names none of this server's: another
// service's, or a misspelt one, which would grant nothing, and of which a
// Deny would deny nothing.
func CheckKeyPolicy(p *policy.Policy) error {
	actions := Actions()
	for _, s := range p.Statements {
		for _, pattern := range slices.Concat(s.Actions, s.NotActions) {
			if len(actionsOf(actions, pattern)) == 0 {
				return fmt.Errorf("%s: %s is no action of this server, whose actions are %s<Operation>, such as %sIssueCertificate", s.Name(), pattern, ActionPrefix, ActionPrefix)
			}
		}
	}
	return nil
}

// PermissionPrincipal is the only principal a permission can be given to,
// as AWS allows: AWS Certificate Manager.
const PermissionPrincipal = "acm.amazonaws.com"

// maxPermissions bounds the permissions of one CA; with one principal and
// one source account, a CA has at most one.
const maxPermissions = 10

// CreatePermission gives ACM permissions on a CA. This server has no ACM
// behind it, so the permission grants nothing; it is kept as given, for
// the tools that manage permissions.
func (s *Service) CreatePermission(ctx context.Context, in *openpca.CreatePermissionRequest) error {
	ca, source, err := s.permissionCA(ctx, in.CertificateAuthorityArn, in.Principal, in.SourceAccount)
	if err != nil {
		return err
	}
	var actions []openpca.ActionType
	for _, a := range in.Actions {
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	err = s.store.CreatePermission(ctx, &openpca.CAPermission{CAID: ca.ID, Principal: in.Principal, SourceAccount: source, Actions: actions, CreatedAt: s.now().UTC()}, maxPermissions)
	switch {
	case errors.Is(err, openpca.ErrConflict):
		return openpca.Errorf(openpca.CodePermissionAlreadyExists, "The permission for %s on %s already exists; delete it to change it.", in.Principal, ca.ARN)
	case errors.Is(err, openpca.ErrLimitExceeded):
		return openpca.Errorf(openpca.CodeLimitExceeded, "The certificate authority %s has %d permissions, the most it can have.", ca.ARN, maxPermissions)
	}
	return err
}

// DeletePermission removes a permission of ACM on a CA.
func (s *Service) DeletePermission(ctx context.Context, in *openpca.DeletePermissionRequest) error {
	ca, source, err := s.permissionCA(ctx, in.CertificateAuthorityArn, in.Principal, in.SourceAccount)
	if err != nil {
		return err
	}
	err = s.store.DeletePermission(ctx, ca.ID, in.Principal, source)
	if errors.Is(err, openpca.ErrNotFound) {
		return openpca.Errorf(openpca.CodeResourceNotFound, "The certificate authority %s gave %s no permission for account %s.", ca.ARN, in.Principal, source)
	}
	return err
}

// permissionCA finds the CA of a permission request and checks its
// principal and source account; the source account defaults to the CA's.
func (s *Service) permissionCA(ctx context.Context, arn, principal, source string) (*openpca.CA, string, error) {
	ca, err := s.findCA(ctx, arn, nil)
	if err != nil {
		return nil, "", err
	}
	if principal != PermissionPrincipal {
		return nil, "", openpca.Errorf(openpca.CodeValidation, "Principal must be %s, the only principal permissions can be given to, not %q.", PermissionPrincipal, principal)
	}
	if source == "" {
		source = ca.AccountID
	}
	if source != ca.AccountID {
		return nil, "", openpca.Errorf(openpca.CodeValidation, "SourceAccount must be %s, the account of %s: permissions serve ACM in the CA's own account.", ca.AccountID, ca.ARN)
	}
	if st := ca.StatusAt(s.now()); st == openpca.CertificateAuthorityStatusDeleted {
		return nil, "", invalidState("The certificate authority %s is DELETED.", ca.ARN)
	}
	return ca, source, nil
}

// MaxPermissionsPerPage is the most permissions ListPermissions returns
// at once.
const MaxPermissionsPerPage = 1000

// ListPermissions lists the permissions of a CA, by principal and source
// account. Each carries, as Policy, the policy it stands for: an Allow of
// its actions on the CA to ACM, for the source account.
func (s *Service) ListPermissions(ctx context.Context, in *openpca.ListPermissionsRequest) (*openpca.ListPermissionsResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	var after openpca.PermissionCursor
	if in.NextToken != "" && (!decodeNextToken(in.NextToken, "ListPermissions/"+ca.ID, &after) || after.Principal == "") {
		return nil, openpca.Errorf(openpca.CodeInvalidNextToken, "The NextToken is not one this server returned for this list.")
	}
	limit := int(in.MaxResults)
	if limit <= 0 || limit > MaxPermissionsPerPage {
		limit = MaxPermissionsPerPage
	}
	list, err := s.store.ListPermissions(ctx, ca.ID, after, limit+1)
	if err != nil {
		return nil, err
	}
	out := &openpca.ListPermissionsResponse{Permissions: []openpca.Permission{}}
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		out.NextToken = encodeNextToken("ListPermissions/"+ca.ID, openpca.PermissionCursor{Principal: last.Principal, SourceAccount: last.SourceAccount})
	}
	for _, p := range list {
		out.Permissions = append(out.Permissions, openpca.Permission{
			CertificateAuthorityArn: ca.ARN, CreatedAt: openpca.NewTimestamp(p.CreatedAt), Principal: p.Principal,
			SourceAccount: p.SourceAccount, Actions: p.Actions, Policy: permissionPolicy(ca.ARN, p),
		})
	}
	return out, nil
}

// permissionPolicy is the policy a permission stands for.
func permissionPolicy(caARN string, p *openpca.CAPermission) string {
	actions := make([]string, len(p.Actions))
	for i, a := range p.Actions {
		actions[i] = ActionPrefix + string(a)
	}
	b, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid": "acm-permission", "Effect": "Allow", "Principal": map[string]any{"Service": p.Principal},
			"Action": actions, "Resource": caARN,
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": p.SourceAccount}},
		}},
	})
	return string(b)
}
