package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/smithy-go"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/race"
	"github.com/openpca/openpca/internal/testenv"
)

// A request's outcome, as authorization decided it.
const (
	allowed = "allowed" // authorization let it through, whatever came of it after
	denied  = "denied"  // AccessDeniedException
	hidden  = "hidden"  // ResourceNotFoundException for the CA: not shared
)

// outcome classifies what a request got.
func outcome(err error) string {
	var apiErr smithy.APIError
	if err == nil || !errors.As(err, &apiErr) {
		return allowed
	}
	switch {
	case apiErr.ErrorCode() == "AccessDeniedException":
		return denied
	case apiErr.ErrorCode() == "ResourceNotFoundException" && strings.Contains(apiErr.ErrorMessage(), "Could not find Certificate Authority"):
		return hidden
	}
	return allowed
}

// authzFixture is account A's CAs and a certificate, and the inputs every
// operation needs.
type authzFixture struct {
	env                   *testenv.Env
	ca, otherCA, sharedCA string            // A's CAs: sharedCA's policy names B
	serials               map[string]string // of a certificate each CA issued
	csr                   []byte
	bucket                string
}

const (
	accountB  = "222233334444"
	accountC  = "333344445555"
	endEntity = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
	subCA     = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"
)

func sharePolicyFor(caARN, account string) string {
	return `{"Version":"2012-10-17","Statement":[
		{"Sid":"Read","Effect":"Allow","Principal":{"AWS":"` + account + `"},"Resource":"` + caARN + `",
		 "Action":["acm-pca:DescribeCertificateAuthority","acm-pca:GetCertificate","acm-pca:GetCertificateAuthorityCertificate","acm-pca:ListPermissions","acm-pca:ListTags"]},
		{"Sid":"Issue","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Resource":"` + caARN + `","Action":"acm-pca:IssueCertificate",
		 "Condition":{"StringEquals":{"acm-pca:TemplateArn":"` + endEntity + `"}}}]}`
}

// operations calls each operation of the API on a CA, with inputs it
// accepts when authorization lets it through; template is the template
// IssueCertificate names ("" for the default).
func (f *authzFixture) operations(template string) map[string]func(c *acmpca.Client, ca string) error {
	cert := func(ca string) string { return ca + "/certificate/" + f.serials[ca] }
	return map[string]func(c *acmpca.Client, ca string) error{
		"CreateCertificateAuthority": func(c *acmpca.Client, _ string) error {
			_, err := c.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Made")})
			return err
		},
		"CreateCertificateAuthorityAuditReport": func(c *acmpca.Client, ca string) error {
			_, err := c.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &ca,
				S3BucketName: &f.bucket, AuditReportResponseFormat: types.AuditReportResponseFormatJson})
			return err
		},
		"CreatePermission": func(c *acmpca.Client, ca string) error {
			_, err := c.CreatePermission(ctx, &acmpca.CreatePermissionInput{CertificateAuthorityArn: &ca, Principal: aws.String("acm.amazonaws.com"),
				Actions: []types.ActionType{types.ActionTypeIssueCertificate}})
			return err
		},
		"DeleteCertificateAuthority": func(c *acmpca.Client, ca string) error { // refused: the CA is ACTIVE
			_, err := c.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &ca})
			return err
		},
		"DeletePermission": func(c *acmpca.Client, ca string) error {
			_, err := c.DeletePermission(ctx, &acmpca.DeletePermissionInput{CertificateAuthorityArn: &ca, Principal: aws.String("acm.amazonaws.com")})
			return err
		},
		"DeletePolicy": func(c *acmpca.Client, ca string) error {
			_, err := c.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &ca})
			return err
		},
		"DescribeCertificateAuthority": func(c *acmpca.Client, ca string) error {
			_, err := c.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
			return err
		},
		"DescribeCertificateAuthorityAuditReport": func(c *acmpca.Client, ca string) error {
			_, err := c.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &ca,
				AuditReportId: aws.String("11111111-2222-3333-4444-555555555555")})
			return err
		},
		"GetCertificate": func(c *acmpca.Client, ca string) error {
			_, err := c.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &ca, CertificateArn: aws.String(cert(ca))})
			return err
		},
		"GetCertificateAuthorityCertificate": func(c *acmpca.Client, ca string) error {
			_, err := c.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &ca})
			return err
		},
		"GetCertificateAuthorityCsr": func(c *acmpca.Client, ca string) error {
			_, err := c.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &ca})
			return err
		},
		"GetPolicy": func(c *acmpca.Client, ca string) error {
			_, err := c.GetPolicy(ctx, &acmpca.GetPolicyInput{ResourceArn: &ca})
			return err
		},
		"ImportCertificateAuthorityCertificate": func(c *acmpca.Client, ca string) error { // refused: not a certificate
			_, err := c.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &ca, Certificate: []byte("x")})
			return err
		},
		"IssueCertificate": func(c *acmpca.Client, ca string) error {
			in := &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: f.csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
				Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}}
			if template != "" {
				in.TemplateArn = aws.String(template)
			}
			_, err := c.IssueCertificate(ctx, in)
			return err
		},
		"ListCertificateAuthorities": func(c *acmpca.Client, _ string) error {
			_, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
			return err
		},
		"ListPermissions": func(c *acmpca.Client, ca string) error {
			_, err := c.ListPermissions(ctx, &acmpca.ListPermissionsInput{CertificateAuthorityArn: &ca})
			return err
		},
		"ListTags": func(c *acmpca.Client, ca string) error {
			_, err := c.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &ca})
			return err
		},
		"PutPolicy": func(c *acmpca.Client, ca string) error { // shares with C, whom no case calls as
			_, err := c.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: aws.String(sharePolicyFor(ca, accountC))})
			return err
		},
		"RestoreCertificateAuthority": func(c *acmpca.Client, ca string) error { // refused: not DELETED
			_, err := c.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &ca})
			return err
		},
		"RevokeCertificate": func(c *acmpca.Client, ca string) error {
			_, err := c.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &ca, CertificateSerial: aws.String(f.serials[ca]),
				RevocationReason: types.RevocationReasonSuperseded})
			return err
		},
		"TagCertificateAuthority": func(c *acmpca.Client, ca string) error {
			_, err := c.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca,
				Tags: []types.Tag{{Key: aws.String("touched"), Value: aws.String("yes")}}})
			return err
		},
		"UntagCertificateAuthority": func(c *acmpca.Client, ca string) error {
			_, err := c.UntagCertificateAuthority(ctx, &acmpca.UntagCertificateAuthorityInput{CertificateAuthorityArn: &ca,
				Tags: []types.Tag{{Key: aws.String("touched")}}})
			return err
		},
		"UpdateCertificateAuthority": func(c *acmpca.Client, ca string) error { // ACTIVE again: changes nothing
			_, err := c.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca, Status: types.CertificateAuthorityStatusActive})
			return err
		},
	}
}

func newAuthzFixture(t *testing.T) *authzFixture {
	env := testenv.Start(t, func(c *app.Config) { c.MaxCAsPerAccount = 1000 })
	f := &authzFixture{env: env, bucket: "authz-reports"}
	makeLocalBucket(t, env, f.bucket)
	f.ca, _ = env.NewActiveRoot(t, "A's root")
	f.otherCA, _ = env.NewActiveRoot(t, "A's other root")
	f.sharedCA, _ = env.NewActiveRoot(t, "A's shared root")
	for _, ca := range []string{f.ca, f.sharedCA} {
		if _, err := env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: aws.String(ca),
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pki")}}}); err != nil {
			t.Fatal(err)
		}
	}
	f.csr = testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
	f.serials = map[string]string{}
	for _, ca := range []string{f.ca, f.otherCA, f.sharedCA} {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: f.csr})
		f.serials[ca] = arn[strings.LastIndex(arn, "/")+1:]
	}
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &f.sharedCA, Policy: aws.String(sharePolicyFor(f.sharedCA, accountB))}); err != nil {
		t.Fatal(err)
	}
	return f
}

// state is what a denied request must not change of a CA.
func (f *authzFixture) state(t *testing.T, ca string) string {
	t.Helper()
	d, err := f.env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := f.env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &ca})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.env.Client.GetPolicy(ctx, &acmpca.GetPolicyInput{ResourceArn: &ca})
	perms, _ := f.env.Client.ListPermissions(ctx, &acmpca.ListPermissionsInput{CertificateAuthorityArn: &ca})
	s := fmt.Sprint(d.CertificateAuthority.Status, *d.CertificateAuthority.LastStateChangeAt, len(tags.Tags), len(perms.Permissions))
	if p != nil {
		s += *p.Policy
	}
	return s
}

func policyKey(name, doc string) openpca.KeyPolicy {
	return openpca.KeyPolicy{Name: name, Document: doc}
}

func allowDoc(actions, resource string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"Allow","Effect":"Allow","Action":` + actions + `,"Resource":"` + resource + `"}]}`
}

// authzCase is a key, a CA it acts on, and what it may do there.
type authzCase struct {
	name     string
	account  string // the key's; "" for the CA's own
	policies []openpca.KeyPolicy
	ca       string
	template string // that IssueCertificate names
	want     func(op string) string
}

// TestAuthorizationMatrix calls every operation of the API with keys of
// different policies, of the CA's account and of another, and checks that
// each is let through, denied, or does not find the CA, as IAM's rules and
// the CA's policy say; a request refused changes nothing.
func TestAuthorizationMatrix(t *testing.T) {
	race.Skip(t)
	f := newAuthzFixture(t)
	env := f.env
	env.NewAccount(t, accountB)
	noCA := func(op string) bool { return op == "CreateCertificateAuthority" || op == "ListCertificateAuthorities" }
	always := func(o string) func(string) string { return func(string) string { return o } }
	shared := []string{"DescribeCertificateAuthority", "GetCertificate", "GetCertificateAuthorityCertificate", "ListPermissions", "ListTags", "IssueCertificate"}
	allowAll := policyKey("all", allowDoc(`"acm-pca:*"`, "*"))
	cases := []authzCase{
		{name: "no policy", ca: f.ca, want: always(allowed)},
		{name: "managed FullAccess", policies: []openpca.KeyPolicy{{Name: "FullAccess", Managed: true}}, ca: f.ca, want: always(allowed)},
		{name: "managed ReadOnly", policies: []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}, ca: f.ca, want: func(op string) string {
			if strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
				return allowed
			}
			return denied
		}},
		{name: "resource wildcard", policies: []openpca.KeyPolicy{policyKey("ca", allowDoc(`"acm-pca:*"`, "arn:aws:acm-pca:*:111122223333:certificate-authority/*"))}, ca: f.ca,
			want: func(op string) string {
				if op == "ListCertificateAuthorities" { // its resource is *, which the pattern does not match
					return denied
				}
				return allowed
			}},
		{name: "another CA only", policies: []openpca.KeyPolicy{policyKey("other", allowDoc(`"acm-pca:*"`, f.otherCA))}, ca: f.ca, want: always(denied)},
		{name: "explicit deny beats allow", policies: []openpca.KeyPolicy{allowAll, policyKey("no-writes", `{"Statement":{"Effect":"Deny","NotAction":["acm-pca:Describe*","acm-pca:Get*","acm-pca:List*"],"Resource":"*"}}`)},
			ca: f.ca, want: func(op string) string {
				if strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
					return allowed
				}
				return denied
			}},
		{name: "template condition met", policies: []openpca.KeyPolicy{policyKey("issue", `{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"`+f.ca+`",
			"Condition":{"StringEquals":{"acm-pca:TemplateArn":"`+endEntity+`"}}}}`)}, ca: f.ca, template: endEntity,
			want: func(op string) string { return map[bool]string{true: allowed, false: denied}[op == "IssueCertificate"] }},
		{name: "template condition met by the default", policies: []openpca.KeyPolicy{policyKey("issue", `{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"`+f.ca+`",
			"Condition":{"StringEquals":{"acm-pca:TemplateArn":"`+endEntity+`"}}}}`)}, ca: f.ca,
			want: func(op string) string { return map[bool]string{true: allowed, false: denied}[op == "IssueCertificate"] }},
		{name: "template condition not met", policies: []openpca.KeyPolicy{policyKey("issue", `{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"`+f.ca+`",
			"Condition":{"StringEquals":{"acm-pca:TemplateArn":"`+endEntity+`"}}}}`)}, ca: f.ca, template: subCA, want: always(denied)},
		{name: "tag condition on the CA", policies: []openpca.KeyPolicy{policyKey("team", `{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*",
			"Condition":{"StringEquals":{"aws:ResourceTag/team":"pki"}}}}`)}, ca: f.ca,
			want: func(op string) string { return map[bool]string{true: denied, false: allowed}[noCA(op)] }},
		{name: "another account, not shared", account: accountB, ca: f.ca,
			want: func(op string) string { return map[bool]string{true: allowed, false: hidden}[noCA(op)] }},
		{name: "another account, shared", account: accountB, ca: f.sharedCA, want: func(op string) string {
			if noCA(op) || slices.Contains(shared, op) {
				return allowed
			}
			return denied
		}},
		{name: "another account, shared, template not granted", account: accountB, ca: f.sharedCA, template: subCA, want: func(op string) string {
			if noCA(op) || slices.Contains(shared, op) && op != "IssueCertificate" {
				return allowed
			}
			return denied
		}},
		{name: "another account, shared, its own policy denies", account: accountB, ca: f.sharedCA,
			policies: []openpca.KeyPolicy{allowAll, policyKey("no-issue", `{"Statement":{"Effect":"Deny","Action":"acm-pca:IssueCertificate","Resource":"*"}}`)},
			want: func(op string) string {
				if noCA(op) || slices.Contains(shared, op) && op != "IssueCertificate" {
					return allowed
				}
				return denied
			}},
	}
	// Each operation allowed alone, and denied alone.
	for op := range f.operations("") {
		resource := f.ca
		if noCA(op) {
			resource = "*"
		}
		cases = append(cases,
			authzCase{name: "only " + op, policies: []openpca.KeyPolicy{policyKey("only", allowDoc(`"acm-pca:`+op+`"`, resource))}, ca: f.ca,
				want: func(o string) string { return map[bool]string{true: allowed, false: denied}[o == op] }},
			authzCase{name: "all but " + op, policies: []openpca.KeyPolicy{allowAll, policyKey("not", `{"Statement":{"Effect":"Deny","Action":"acm-pca:`+op+`","Resource":"*"}}`)}, ca: f.ca,
				want: func(o string) string { return map[bool]string{true: denied, false: allowed}[o == op] }})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			account := tc.account
			if account == "" {
				account = app.DefaultAccountID
			}
			client, _ := env.NewKey(t, account, tc.policies...)
			ops := f.operations(tc.template)
			names := slices.Sorted(maps.Keys(ops))
			for _, op := range names {
				want := tc.want(op)
				before := f.state(t, tc.ca)
				err := ops[op](client, tc.ca)
				if got := outcome(err); got != want {
					t.Errorf("%s: %s (%v), want %s", op, got, err, want)
				}
				if want != allowed {
					if after := f.state(t, tc.ca); after != before {
						t.Errorf("%s was refused but changed the CA:\n%s\n%s", op, before, after)
					}
				}
			}
		})
	}
	// The audit log's four and the console's ListCertificates are tested
	// with the console and the audit log's endpoints.
	if len(authority.Actions()) != len(f.operations(""))+5 {
		t.Errorf("the matrix calls %d operations; policies know %d actions, 5 of them OpenPCA's own", len(f.operations("")), len(authority.Actions()))
	}
}

// TestMissingCAs: a key of the CA's account is denied what its policies
// do not allow whether the CA exists or not, so that its answers do not
// tell which CAs exist; a key they allow, or one without policies, finds
// that the CA does not exist.
func TestMissingCAs(t *testing.T) {
	f := newAuthzFixture(t)
	missing := f.ca[:strings.LastIndex(f.ca, "/")+1] + "00000000-0000-7000-8000-000000000000"
	anyCA := "arn:aws:acm-pca:*:" + app.DefaultAccountID + ":certificate-authority/*"
	for _, tc := range []struct {
		name     string
		policies []openpca.KeyPolicy
		want     string
	}{
		{"no policy", nil, hidden},
		{"every CA", []openpca.KeyPolicy{policyKey("all", allowDoc(`"acm-pca:DescribeCertificateAuthority"`, anyCA))}, hidden},
		{"another CA only", []openpca.KeyPolicy{policyKey("other", allowDoc(`"acm-pca:*"`, f.otherCA))}, denied},
		{"tagged CAs only", []openpca.KeyPolicy{policyKey("team", `{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*",
			"Condition":{"StringEquals":{"aws:ResourceTag/team":"pki"}}}}`)}, denied},
		{"denied explicitly", []openpca.KeyPolicy{policyKey("all", allowDoc(`"acm-pca:*"`, "*")),
			policyKey("deny", `{"Statement":{"Effect":"Deny","Action":"acm-pca:DescribeCertificateAuthority","Resource":"`+missing+`"}}`)}, denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := f.env.NewKey(t, app.DefaultAccountID, tc.policies...)
			_, err := client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &missing})
			if got := outcome(err); got != tc.want {
				t.Errorf("a CA that does not exist: %s (%v), want %s", got, err, tc.want)
			}
		})
	}
}

// TestDenialsAreLogged: a denial leaves a log line with the key, the
// action and the resource.
func TestDenialsAreLogged(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	ca, _ := env.NewActiveRoot(t, "Logged")
	reader, key := env.NewReadOnlyKey(t, app.DefaultAccountID)
	_, err := reader.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &ca})
	testenv.WantError(t, err, "AccessDeniedException")
	for _, line := range strings.Split(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "access denied" {
			if l["key"] != key || l["action"] != "acm-pca:DeleteCertificateAuthority" || l["resource"] != ca || l["level"] != "WARN" {
				t.Errorf("denial logged as %v", l)
			}
			return
		}
	}
	t.Errorf("no denial was logged:\n%s", logs.String())
}

// TestTagsAtCreation: tags given to CreateCertificateAuthority need
// acm-pca:TagCertificateAuthority too, with the tags as request tags, as
// on AWS.
func TestTagsAtCreation(t *testing.T) {
	env := testenv.Start(t)
	create := `{"Sid":"Create","Effect":"Allow","Action":"acm-pca:CreateCertificateAuthority","Resource":"*"}`
	restricted := `{"Sid":"CreateAndTag","Effect":"Allow","Action":["acm-pca:CreateCertificateAuthority","acm-pca:TagCertificateAuthority"],"Resource":"*"},
		{"Sid":"NoProd","Effect":"Deny","Action":["acm-pca:CreateCertificateAuthority","acm-pca:TagCertificateAuthority"],"Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"prod"}}}`
	for _, tc := range []struct {
		name   string
		policy string
		tag    string // the team tag given; "" for none
		ok     bool
	}{
		{"no tags, no right to tag", create, "", true},
		{"tags, no right to tag", create, "dev", false},
		{"tags, tagging denied", create + `,{"Sid":"All","Effect":"Allow","Action":"acm-pca:*","Resource":"*"},{"Sid":"NoTags","Effect":"Deny","Action":"acm-pca:TagCertificateAuthority","Resource":"*"}`, "dev", false},
		{"tags the right to tag allows", create + `,{"Sid":"Tag","Effect":"Allow","Action":"acm-pca:TagCertificateAuthority","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"dev"}}}`, "dev", true},
		{"tags the right to tag does not allow", create + `,{"Sid":"Tag","Effect":"Allow","Action":"acm-pca:TagCertificateAuthority","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"dev"}}}`, "prod", false},
		// AWS's example of restricted tagging at creation.
		{"tags a Deny by resource tag refuses", restricted, "prod", false},
		{"tags a Deny by resource tag leaves", restricted, "dev", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := env.NewKey(t, app.DefaultAccountID, policyKey("p", `{"Version":"2012-10-17","Statement":[`+tc.policy+`]}`))
			in := &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Tagged")}
			if tc.tag != "" {
				in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String(tc.tag)}}
			}
			_, err := client.CreateCertificateAuthority(ctx, in)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			testenv.WantError(t, err, "AccessDeniedException")
			if !strings.Contains(err.Error(), "acm-pca:TagCertificateAuthority") && !strings.Contains(err.Error(), "(p, NoProd)") {
				t.Errorf("the denial names neither the tagging nor the Deny: %v", err)
			}
		})
	}
}

// TestAccountPolicySize: the policies of one account's CAs hold a MiB
// at most, all together, since each is read whenever an account it names
// lists the CAs shared with it; a policy replaced counts as its new size,
// and one deleted leaves room.
func TestAccountPolicySize(t *testing.T) {
	env := testenv.Start(t)
	env.NewAccount(t, accountB)
	// Of n KB, by a condition that holds in no request.
	sized := func(ca string, n int) *string {
		return aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + accountB + `"},"Resource":"` + ca + `",
			"Action":"acm-pca:DescribeCertificateAuthority","Condition":{"StringEquals":{"aws:SourceIp":"` + strings.Repeat("x", n*1000) + `"}}}]}`)
	}
	padded := func(ca string) *string { return sized(ca, 78) }
	put := func(ca string, policy *string) error {
		_, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: policy})
		return err
	}
	var cas []string
	for i := range 20 {
		cas = append(cas, env.CreateCA(t, types.CertificateAuthorityTypeRoot, fmt.Sprintf("Policy %d", i)))
	}
	for _, ca := range cas[:13] {
		if err := put(ca, padded(ca)); err != nil {
			t.Fatal(err)
		}
	}
	err := put(cas[13], padded(cas[13]))
	testenv.WantError(t, err, "InvalidPolicyException")
	if !strings.Contains(err.Error(), "more than the 1048576 bytes they may hold all together") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	if err := put(cas[13], aws.String(sharePolicyFor(cas[13], accountB))); err != nil {
		t.Errorf("a small policy beside them: %v", err)
	}
	if err := put(cas[0], padded(cas[0])); err != nil {
		t.Errorf("a policy replaced by one of its size: %v", err)
	}
	if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &cas[1]}); err != nil {
		t.Fatal(err)
	}
	if err := put(cas[13], padded(cas[13])); err != nil {
		t.Errorf("a policy put where one was deleted: %v", err)
	}
	// Put at once on six CAs, beside twelve, they pass the bound no more
	// than one after the other. (Of 63 KB, six at once: the server reads
	// the bodies of only so many large requests from one network.)
	for _, ca := range cas {
		if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &ca}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ca := range cas[:12] {
		if err := put(ca, sized(ca, 63)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, ca := range cas[12:18] {
		wg.Go(func() {
			if err := put(ca, sized(ca, 63)); err != nil && !strings.Contains(err.Error(), "InvalidPolicyException") {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stored := 0
	for _, ca := range cas {
		if out, err := env.Client.GetPolicy(ctx, &acmpca.GetPolicyInput{ResourceArn: &ca}); err == nil {
			stored += len(*out.Policy)
		}
	}
	if stored > openpca.MaxAccountPolicySize || stored < openpca.MaxAccountPolicySize-64_000 {
		t.Errorf("policies put at once hold %d bytes; want at most %d, and within a policy of it", stored, openpca.MaxAccountPolicySize)
	}
}

// TestTagKeyLookalike: a tag key that differs from a protected one in a
// letter whose lowering is ASCII (U+0130, "İ", lowers to "i") is not the
// protected key anywhere: a Deny on aws:TagKeys, which compares without
// case (strings.EqualFold), lets it be set, and then it is not read as
// aws:ResourceTag of the protected key either. It was: the key got round
// the Deny, and then passed the policy that the protected tag gates.
// Keys that differ in ASCII case alone stay one key to conditions.
func TestTagKeyLookalike(t *testing.T) {
	env := testenv.Start(t)
	ca, _ := env.NewActiveRoot(t, "Gated")
	client, _ := env.NewKey(t, app.DefaultAccountID, policyKey("gated", `{"Version":"2012-10-17","Statement":[
		{"Sid":"All","Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Sid":"Protected","Effect":"Deny","Action":["acm-pca:TagCertificateAuthority","acm-pca:UntagCertificateAuthority","acm-pca:CreateCertificateAuthority"],"Resource":"*",
			"Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["environment"]}}},
		{"Sid":"DevOnly","Effect":"Deny","Action":"acm-pca:IssueCertificate","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/environment":"dev"}}}]}`))
	issue := func() error {
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gated.example"}}).CSRPEM
		_, err := client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: csr, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
			Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	tag := func(c *acmpca.Client, key string) error {
		_, err := c.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String(key), Value: aws.String("dev")}}})
		return err
	}
	testenv.WantError(t, issue(), "AccessDeniedException")
	testenv.WantError(t, tag(client, "Environment"), "AccessDeniedException")
	if err := tag(client, "env\u0130ronment"); err != nil {
		t.Fatalf("tagging with a key that is not the protected one: %v", err)
	}
	testenv.WantError(t, issue(), "AccessDeniedException")
	// The CA's account, which the Deny does not hold, tags it as the
	// policy asks, in any ASCII case: then the key issues.
	if err := tag(env.Client, "ENVIRONMENT"); err != nil {
		t.Fatal(err)
	}
	if err := issue(); err != nil {
		t.Errorf("issuing under a CA tagged ENVIRONMENT=dev: %v", err)
	}
	// Beyond ASCII, keys are one as case-insensitive comparison finds
	// them: a Deny on aws:ResourceTag/Übung holds a CA tagged übung.
	deny, _ := env.NewKey(t, app.DefaultAccountID, policyKey("exercise", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Effect":"Deny","Action":"acm-pca:DescribeCertificateAuthority","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Übung":"dev"}}}]}`))
	if err := tag(env.Client, "übung"); err != nil {
		t.Fatal(err)
	}
	_, err := deny.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
	testenv.WantError(t, err, "AccessDeniedException")
}

// TestTagKeysDenyWhateverCase: a Deny on aws:TagKeys written with
// StringEquals, as IAM's examples write it, holds the key in any case.
// AWS compares its values as written; here "Owner" got round a Deny
// naming "owner", and then every aws:ResourceTag/owner condition read it.
func TestTagKeysDenyWhateverCase(t *testing.T) {
	env := testenv.Start(t)
	ca, _ := env.NewActiveRoot(t, "Owned")
	client, _ := env.NewKey(t, app.DefaultAccountID, policyKey("no-owner", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Effect":"Deny","Action":["acm-pca:TagCertificateAuthority","acm-pca:UntagCertificateAuthority","acm-pca:CreateCertificateAuthority"],"Resource":"*",
			"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner"]}}}]}`))
	for _, key := range []string{"owner", "Owner", "OWNER"} {
		_, err := client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String(key), Value: aws.String("mallory")}}})
		testenv.WantError(t, err, "AccessDeniedException")
	}
	if _, err := client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pki")}}}); err != nil {
		t.Errorf("tagging with a key the Deny does not name: %v", err)
	}
}

// TestAlwaysSuppliedKeys: the condition keys AWS puts in every request
// are in this server's too, so that policies that test them decide as on
// AWS: a Deny past an aws:EpochTime denies, a Deny outside the server's
// aws:RequestedRegion leaves its requests alone, and aws:ResourceAccount
// is the CA's account (the caller's on a request on no CA).
func TestAlwaysSuppliedKeys(t *testing.T) {
	env := testenv.Start(t)
	ca, _ := env.NewActiveRoot(t, "Supplied")
	other := "444455556666"
	key, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "perimeter", Document: `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceAccount":"` + app.DefaultAccountID + `"},"Bool":{"aws:PrincipalIsAWSService":"false","aws:ViaAWSService":"false"}}},
		{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}},
		{"Effect":"Deny","Action":"acm-pca:TagCertificateAuthority","Resource":"*","Condition":{"NumericGreaterThan":{"aws:EpochTime":"1700000000"}}},
		{"Effect":"Deny","Action":"acm-pca:UntagCertificateAuthority","Resource":"*","Condition":{"StringEquals":{"aws:ResourceAccount":"` + other + `"}}}]}`})
	if _, err := key.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca}); err != nil {
		t.Errorf("DescribeCertificateAuthority of the key's account's CA, in the server's region: %v", err)
	}
	if _, err := key.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("ListCertificateAuthorities: %v", err)
	}
	_, err := key.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String("k")}}})
	testenv.WantError(t, err, "AccessDeniedException")
	if _, err := key.UntagCertificateAuthority(ctx, &acmpca.UntagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: []types.Tag{{Key: aws.String("k")}}}); err != nil {
		t.Errorf("UntagCertificateAuthority of a CA of the key's own account: %v", err)
	}

	// Another account's key, on the CA shared with it: the resource's
	// account is the CA's.
	env.NewAccount(t, accountB)
	keys := map[string]*acmpca.Client{}
	for _, account := range []string{app.DefaultAccountID, accountB} {
		keys[account], _ = env.NewKey(t, accountB, openpca.KeyPolicy{Name: "theirs", Document: `{"Statement":{"Effect":"Allow","Action":"acm-pca:DescribeCertificateAuthority","Resource":"*",
			"Condition":{"StringEquals":{"aws:ResourceAccount":"` + account + `"}}}}`})
	}
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: aws.String(sharePolicyFor(ca, accountB))}); err != nil {
		t.Fatal(err)
	}
	for account, b := range keys {
		_, err := b.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca})
		if want := account == app.DefaultAccountID; (err == nil) != want {
			t.Errorf("another account's key allowed on aws:ResourceAccount %s: %v, want allowed %v", account, err, want)
		}
	}
}
