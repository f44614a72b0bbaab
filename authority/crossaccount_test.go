package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// TestCAPolicyUnsuppliedKeyFailsOpen: a CA's resource policy may not test
// a key AWS always supplies and this server never does (aws:PrincipalArn,
// aws:PrincipalType, aws:userid, ...) where the key's absence makes the
// policy allow more than on AWS. An Allow on an operator that holds of an
// absent key (StringNotLike, ForAllValues:..., Null "true") allowed every
// key of the account it names. The server refused such keys in identity
// policies for this reason; PutPolicy took them, and the CA was shared
// wider than written. An Allow on one that is false of an absent key is
// taken, and allows nothing here.
func TestCAPolicyUnsuppliedKeyFailsOpen(t *testing.T) {
	env := testenv.Start(t)
	b, _ := env.NewAccount(t, accountB)
	ca, _ := env.NewActiveRoot(t, "Shared with a condition")
	allowB := `{"Effect":"Allow","Principal":{"AWS":"` + accountB + `"},"Resource":"` + ca + `","Action":"acm-pca:IssueCertificate"`
	policy := func(statements ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
	}
	for _, c := range []struct {
		name, doc string
		taken     bool
	}{
		// On AWS every principal of B has an ARN under arn:aws:iam::B:,
		// so this allows no one; here it allowed everyone.
		{"Allow, StringNotLike aws:PrincipalArn", policy(allowB + `,"Condition":{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::` + accountB + `:*"}}}`), false},
		{"Allow, ForAllValues aws:PrincipalType", policy(allowB + `,"Condition":{"ForAllValues:StringEquals":{"aws:PrincipalType":"Nobody"}}}`), false},
		{"Allow, StringNotEquals aws:PrincipalType", policy(allowB + `,"Condition":{"StringNotEquals":{"aws:PrincipalType":["User","AssumedRole","Account","FederatedUser"]}}}`), false},
		{"Allow, Null true on aws:userid", policy(allowB + `,"Condition":{"Null":{"aws:userid":"true"}}}`), false},
		// Allows nothing here.
		{"Allow, StringEquals aws:PrincipalOrgID", policy(allowB + `,"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}}`), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: &c.doc})
			if c.taken {
				if err != nil {
					t.Fatalf("PutPolicy: %v", err)
				}
			} else if err == nil {
				t.Errorf("PutPolicy took a condition that AWS decides and that reads here as letting more in")
			} else {
				testenv.WantError(t, err, "InvalidPolicyException")
				return
			}
			leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "b.example"}}).CSRPEM
			_, err = b.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: aws.String(ca), Csr: leaf,
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			if err == nil {
				t.Error("B issued under the policy")
			}
		})
	}
}

// TestUnsharedCAIndistinguishable: to account B, each operation on A's CA
// that is not shared, on one whose policy was deleted, and on an ARN of
// A's account that names no CA, answers alike, so that B learns nothing of
// A's CAs.
func TestUnsharedCAIndistinguishable(t *testing.T) {
	f := newAuthzFixture(t)
	env := f.env
	b, _ := env.NewAccount(t, accountB)
	unshared, _ := env.NewActiveRoot(t, "policy deleted")
	doc := sharePolicyFor(unshared, accountB)
	if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &unshared, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeletePolicy(ctx, &acmpca.DeletePolicyInput{ResourceArn: &unshared}); err != nil {
		t.Fatal(err)
	}
	missing := testenv.MissingCA(f.ca)
	f.serials[missing] = f.serials[f.ca]
	f.serials[unshared] = f.serials[f.ca]
	norm := func(err error, arn string) string {
		if err == nil {
			return "ok"
		}
		s := err.Error()
		s = strings.ReplaceAll(s, arn, "ARN")
		if i := strings.Index(s, "RequestID: "); i >= 0 {
			s = s[:i] + s[i+len("RequestID: ")+36:]
		}
		return s
	}
	for op, call := range f.operations("") {
		if op == "CreateCertificateAuthority" || op == "ListCertificateAuthorities" {
			continue
		}
		got := map[string]string{}
		for name, arn := range map[string]string{"unshared": f.ca, "policy deleted": unshared, "missing": missing} {
			got[name] = norm(call(b, arn), arn)
		}
		if got["unshared"] != got["missing"] || got["policy deleted"] != got["missing"] {
			t.Errorf("%s: %v", op, got)
		}
	}
}
