package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
)

// TestPolicyRoundTrip: a CA's policy reads back as it was put; one without
// is ResourceNotFoundException; deleting it twice is fine; a policy that
// does not parse, or grants what a CA may not, is InvalidPolicyException
// and changes nothing.
func TestPolicyRoundTrip(t *testing.T) {
	env := testenv.Start(t)
	ca, _ := env.NewActiveRoot(t, "Shared")
	get := func() (string, error) {
		out, err := env.Client.GetPolicy(ctx, &acmpca.GetPolicyInput{ResourceArn: &ca})
		if err != nil {
			return "", err
		}
		return *out.Policy, nil
	}
	if _, err := get(); err == nil {
		t.Fatal("a CA without a policy has one")
	} else {
		testenv.WantError(t, err, "ResourceNotFoundException")
	}
	doc := sharePolicyFor(ca, accountB)
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(); err != nil || got != doc {
		t.Errorf("GetPolicy = %q, %v", got, err)
	}
	stmt := func(body string) string { return `{"Version":"2012-10-17","Statement":[` + body + `]}` }
	principal := `"Principal":{"AWS":"` + accountB + `"},`
	var many []string
	for i := range 1001 {
		many = append(many, fmt.Sprintf(`"%012d"`, 100000000000+i))
	}
	for name, bad := range map[string]string{
		"1,001 accounts":     stmt(`{"Effect":"Allow","Principal":{"AWS":[` + strings.Join(many, ",") + `]},"Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"not JSON":           "{",
		"deny":               stmt(`{"Effect":"Deny",` + principal + `"Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"any principal":      stmt(`{"Effect":"Allow","Principal":"*","Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"a service":          stmt(`{"Effect":"Allow","Principal":{"Service":"acm.amazonaws.com"},"Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"no principal":       stmt(`{"Effect":"Allow","Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"every action":       stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:*","Resource":"` + ca + `"}`),
		"Get* is too much":   stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:Get*","Resource":"` + ca + `"}`),
		"deletion":           stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:DeleteCertificateAuthority","Resource":"` + ca + `"}`),
		"NotAction":          stmt(`{"Effect":"Allow",` + principal + `"NotAction":"acm-pca:DeleteCertificateAuthority","Resource":"` + ca + `"}`),
		"another resource":   stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:GetCertificate","Resource":"*"}`),
		"an unknown action":  stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:Frobnicate","Resource":"` + ca + `"}`),
		"a partial account":  stmt(`{"Effect":"Allow","Principal":{"AWS":"2222"},"Action":"acm-pca:GetCertificate","Resource":"` + ca + `"}`),
		"unknown conditions": stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:GetCertificate","Resource":"` + ca + `","Condition":{"Sometimes":{"a":"b"}}}`),
		// AWS's X.509 certificate condition keys, which the server does not
		// supply: ForAllValues over an absent key allowed every name.
		"X.509 condition keys": stmt(`{"Effect":"Allow",` + principal + `"Action":"acm-pca:IssueCertificate","Resource":"` + ca + `","Condition":{"ForAllValues:StringLike":{"acm-pca:x509SAN/dNSName":["*.corp.example"]}}}`),
	} {
		_, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: aws.String(bad)})
		if code, _ := testenv.ErrorCode(err); code != "InvalidPolicyException" {
			t.Errorf("%s: %v, want InvalidPolicyException", name, err)
		}
	}
	if got, _ := get(); got != doc {
		t.Errorf("after the refused policies, the CA has %q", got)
	}
	for range 2 {
		if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &ca}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := get(); err == nil {
		t.Error("the deleted policy is still there")
	}
}

// TestSharing: account B lists the CAs shared with it, page by page, uses
// them as far as their policy allows, and loses them when the policy goes.
func TestSharing(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	var shared []string
	for i := range 3 {
		ca, _ := env.NewActiveRoot(t, "Shared "+string(rune('A'+i)))
		doc := sharePolicyFor(ca, accountB)
		if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
			t.Fatal(err)
		}
		shared = append(shared, ca)
	}
	// A policy may name the CA's own account, which shares it with no one.
	own, _ := env.NewActiveRoot(t, "Not shared")
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &own, Policy: aws.String(sharePolicyFor(own, app.DefaultAccountID))}); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts}); err != nil || len(out.CertificateAuthorities) != 0 {
		t.Errorf("the owner lists its own CAs as shared with it: %v, %v", out, err)
	}
	var listed []string
	p := acmpca.NewListCertificateAuthoritiesPaginator(b, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts, MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ca := range page.CertificateAuthorities {
			listed = append(listed, *ca.Arn)
			if *ca.OwnerAccount != app.DefaultAccountID {
				t.Errorf("owner %s", *ca.OwnerAccount)
			}
		}
	}
	if strings.Join(listed, " ") != strings.Join(shared, " ") {
		t.Errorf("B lists %v, want %v", listed, shared)
	}
	bOwn, err := b.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	if err != nil || len(bOwn.CertificateAuthorities) != 0 {
		t.Errorf("B's own CAs: %v, %v", bOwn, err)
	}
	// B issues from a shared CA with the end-entity template, and fetches
	// the certificate; the issuance is recorded as B's.
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "b.example"}}).CSRPEM
	bEnv := &testenv.Env{Client: b}
	cert := bEnv.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &shared[0], Csr: leaf})
	bEnv.Certificate(t, shared[0], cert)
	if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &shared[0]}); err != nil {
		t.Fatal(err)
	}
	_, err = b.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &shared[0]})
	testenv.WantError(t, err, "ResourceNotFoundException")
	if out, _ := b.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts}); len(out.CertificateAuthorities) != 2 {
		t.Errorf("after one policy was deleted, B lists %d shared CAs", len(out.CertificateAuthorities))
	}
	// A CA shared for issuance alone is described to B nowhere, in a list
	// neither; B still issues from it.
	issueOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + accountB + `"},"Resource":"` + shared[1] + `","Action":"acm-pca:IssueCertificate"}]}`
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &shared[1], Policy: &issueOnly}); err != nil {
		t.Fatal(err)
	}
	if out, err := b.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts}); err != nil ||
		len(out.CertificateAuthorities) != 1 || *out.CertificateAuthorities[0].Arn != shared[2] {
		t.Errorf("B lists %v (%v), want only %s", out, err, shared[2])
	}
	// Page by page, no page is empty and no token names it.
	in := &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts, MaxResults: aws.Int32(1)}
	hidden := shared[1][strings.LastIndex(shared[1], "/")+1:]
	for pages := 1; ; pages++ {
		out, err := b.ListCertificateAuthorities(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.CertificateAuthorities) != 1 || *out.CertificateAuthorities[0].Arn != shared[2] || pages > 1 {
			t.Errorf("page %d: %v", pages, out.CertificateAuthorities)
		}
		if out.NextToken == nil {
			break
		}
		if token, _ := base64.RawURLEncoding.DecodeString(*out.NextToken); strings.Contains(string(token), hidden) {
			t.Errorf("page %d's NextToken names the CA B is not shown: %s", pages, token)
		}
		in.NextToken = out.NextToken
	}
	bEnv.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &shared[1], Csr: leaf})
	// Nor does a page end with a token to an empty page: no CA B is shown
	// comes after the last one it lists.
	issueOnly = strings.ReplaceAll(issueOnly, shared[1], shared[2])
	full := sharePolicyFor(shared[1], accountB)
	for ca, doc := range map[string]string{shared[1]: full, shared[2]: issueOnly} {
		if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
			t.Fatal(err)
		}
	}
	in.NextToken = nil
	if out, err := b.ListCertificateAuthorities(ctx, in); err != nil || len(out.CertificateAuthorities) != 1 || *out.CertificateAuthorities[0].Arn != shared[1] || out.NextToken != nil {
		t.Errorf("B lists %v (%v), want only %s and no NextToken", out, err, shared[1])
	}
}

// TestDeletedCAPolicy: the owner of a deleted CA, in its restoration
// period, takes back what its policy shared (another account reached it
// until then), but gives it no new policy.
func TestDeletedCAPolicy(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	ca, _ := env.NewActiveRoot(t, "Shared, then deleted")
	doc := sharePolicyFor(ca, accountB)
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca, Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &ca, PermanentDeletionTimeInDays: aws.Int32(30)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca}); err != nil {
		t.Fatalf("B describes the deleted CA still shared with it: %v", err)
	}
	_, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc})
	testenv.WantError(t, err, "InvalidStateException")
	if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &ca}); err != nil {
		t.Fatalf("DeletePolicy of a deleted CA: %v", err)
	}
	_, err = b.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
	testenv.WantError(t, err, "ResourceNotFoundException")
	if out, err := b.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts}); err != nil || len(out.CertificateAuthorities) != 0 {
		t.Errorf("B lists %v (%v) once the deleted CA's policy is gone", out, err)
	}
}

// TestSharedCATokens: an idempotency token is its account's own, also on a
// CA shared between accounts. Whoever uses a token first, the other
// account's request with the same token gets a certificate for its own
// CSR, and each account's retry gets back its own certificate.
func TestSharedCATokens(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	ca, _ := env.NewActiveRoot(t, "Shared tokens")
	doc := sharePolicyFor(ca, accountB)
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	accounts := map[string]*testenv.Env{"owner": env, "sharee": {Client: b}}
	for _, order := range [][2]string{{"owner", "sharee"}, {"sharee", "owner"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			token := "deploy-" + order[0]
			arns := map[string]string{}
			for _, who := range []string{order[0], order[1], order[0], order[1]} {
				e := accounts[who]
				arn := e.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, IdempotencyToken: &token,
					Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: who + ".example"}}).CSRPEM})
				if first, ok := arns[who]; ok && arn != first {
					t.Errorf("%s's retry got %s, want its first certificate %s", who, arn, first)
				}
				arns[who] = arn
				if cert, _ := e.Certificate(t, ca, arn); cert.Subject.CommonName != who+".example" {
					t.Errorf("%s got a certificate for %s", who, cert.Subject.CommonName)
				}
			}
			if arns["owner"] == arns["sharee"] {
				t.Errorf("both accounts got %s", arns["owner"])
			}
		})
	}
}

// TestPermissions: permissions for ACM round-trip as AWS shapes them, with
// AWS's errors, and page with the SDK's paginator.
func TestPermissions(t *testing.T) {
	env := testenv.Start(t)
	ca, _ := env.NewActiveRoot(t, "Permissions")
	create := func(principal, source string) error {
		in := &acmpca.CreatePermissionInput{CertificateAuthorityArn: &ca, Principal: &principal,
			Actions: []types.ActionType{types.ActionTypeIssueCertificate, types.ActionTypeGetCertificate, types.ActionTypeListPermissions}}
		if source != "" {
			in.SourceAccount = &source
		}
		_, err := env.Client.CreatePermission(ctx, in)
		return err
	}
	if err := create("acm.amazonaws.com", ""); err != nil {
		t.Fatal(err)
	}
	testenv.WantError(t, create("acm.amazonaws.com", app.DefaultAccountID), "PermissionAlreadyExistsException")
	testenv.WantError(t, create("s3.amazonaws.com", ""), "ValidationException")
	testenv.WantError(t, create("acm.amazonaws.com", accountB), "ValidationException")
	var perms []types.Permission
	p := acmpca.NewListPermissionsPaginator(env.Client, &acmpca.ListPermissionsInput{CertificateAuthorityArn: &ca, MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		perms = append(perms, page.Permissions...)
	}
	if len(perms) != 1 {
		t.Fatalf("%d permissions", len(perms))
	}
	got := perms[0]
	if *got.CertificateAuthorityArn != ca || *got.Principal != "acm.amazonaws.com" || *got.SourceAccount != app.DefaultAccountID ||
		len(got.Actions) != 3 || got.CreatedAt == nil || !strings.Contains(aws.ToString(got.Policy), `"Service":"acm.amazonaws.com"`) {
		t.Errorf("permission %+v", got)
	}
	if _, err := env.Client.DeletePermission(ctx, &acmpca.DeletePermissionInput{CertificateAuthorityArn: &ca, Principal: aws.String("acm.amazonaws.com")}); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.DeletePermission(ctx, &acmpca.DeletePermissionInput{CertificateAuthorityArn: &ca, Principal: aws.String("acm.amazonaws.com")})
	testenv.WantError(t, err, "ResourceNotFoundException")
}

// TestAuditLogAuthorization: the audit log's endpoints answer only those
// the CA's account and its policy let through: a key whose policy lacks
// the action is denied, another account the CA was not shared with does
// not find it, and one it was shared with (with the audit log's actions)
// reads it.
func TestAuditLogAuthorization(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	ca, _ := env.NewActiveRoot(t, "Audited")
	checkpoint := env.URL + server.PathCheckpoint + "?certificateAuthorityArn=" + url.QueryEscape(ca)
	noAudit, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "describe", Document: allowDoc(`"acm-pca:Describe*"`, "*")})
	readOnly, _ := env.NewReadOnlyKey(t, app.DefaultAccountID)
	for _, tt := range []struct {
		name   string
		client *acmpca.Client
		status int
		code   string
	}{
		{"the owner", env.Client, 200, ""},
		{"a read-only key", readOnly, 200, ""},
		{"a key without the action", noAudit, 400, "AccessDeniedException"},
		{"another account", b, 400, "ResourceNotFoundException"},
	} {
		if status, code, body := testenv.GetAs(t, tt.client, checkpoint); status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s %s", tt.name, status, code, body)
		}
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"Auditor","Effect":"Allow","Principal":{"AWS":"` + accountB + `"},"Resource":"` + ca + `",
		"Action":["acm-pca:GetAuditLog*","acm-pca:DescribeCertificateAuthority"]}]}`
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if status, code, body := testenv.GetAs(t, b, checkpoint); status != 200 {
		t.Errorf("another account the audit log was shared with: %d %s %s", status, code, body)
	}
}

// TestSharedRevocation: a CA's policy may give another account
// acm-pca:RevokeCertificate, as AWS Private CA's customer managed
// permissions do ("Write actions: acm-pca:IssueCertificate,
// acm-pca:RevokeCertificate"), and that account then revokes the CA's
// certificates; an account the policy does not give it to still cannot.
func TestSharedRevocation(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	c, _ := env.NewAccount(t, accountC)
	ca, _ := env.NewActiveRoot(t, "Shared for revocation")
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"IssueRevoke","Effect":"Allow","Principal":{"AWS":"` + accountB + `"},"Resource":"` + ca + `",
		 "Action":["acm-pca:IssueCertificate","acm-pca:RevokeCertificate","acm-pca:GetCertificate"]},
		{"Sid":"IssueOnly","Effect":"Allow","Principal":{"AWS":"` + accountC + `"},"Resource":"` + ca + `",
		 "Action":["acm-pca:IssueCertificate","acm-pca:GetCertificate"]}]}`
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &doc}); err != nil {
		t.Fatalf("PutPolicy granting acm-pca:RevokeCertificate: %v", err)
	}
	serial := func(e *testenv.Env) string {
		arn := e.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca,
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM})
		return arn[strings.LastIndex(arn, "/")+1:] // the serial in hex
	}
	revoke := func(client *acmpca.Client, s string) error {
		_, err := client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &ca, CertificateSerial: &s,
			RevocationReason: types.RevocationReasonKeyCompromise})
		return err
	}
	if err := revoke(b, serial(&testenv.Env{Client: b})); err != nil {
		t.Errorf("account B, given RevokeCertificate, revokes: %v", err)
	}
	err := revoke(c, serial(&testenv.Env{Client: c}))
	testenv.WantError(t, err, "AccessDeniedException")
}

// TestCAPoliciesKeepsChecks: CAPolicies keeps what it checked of a CA's
// policy for that CA alone, and for that text alone: the same policy read
// for another CA (whose ARN is not its Resource), or a policy changed to
// grant what a CA cannot share, is checked again, and refused, after a
// policy that passed.
func TestCAPoliciesKeepsChecks(t *testing.T) {
	const arnA = "arn:aws:acm-pca:us-east-1:111111111111:certificate-authority/11111111-1111-1111-1111-111111111111"
	const arnB = "arn:aws:acm-pca:us-east-1:111111111111:certificate-authority/22222222-2222-2222-2222-222222222222"
	doc := func(action string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Resource":"` + arnA + `","Action":"acm-pca:` + action + `"}]}`
	}
	policies := authority.NewCAPolicies()
	for _, c := range []struct {
		name, doc, arn string
		ok             bool
	}{
		{"passes", doc("IssueCertificate"), arnA, true},
		{"passes again", doc("IssueCertificate"), arnA, true},
		{"read for another CA", doc("IssueCertificate"), arnB, false},
		{"grants what no CA shares", doc("DeleteCertificateAuthority"), arnA, false},
		{"refused again", doc("DeleteCertificateAuthority"), arnA, false},
		{"the first, for its CA", doc("IssueCertificate"), arnA, true},
	} {
		p, err := policies.Parse(c.doc, c.arn)
		if ok := err == nil && p != nil; ok != c.ok {
			t.Errorf("%s: policy %v, error %v; want passed %v", c.name, p != nil, err, c.ok)
		}
	}
}
