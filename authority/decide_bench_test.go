package authority_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/authority"
)

// BenchmarkDecideShared measures Decide on a request of another account,
// on a CA shared with it by a policy of one statement, and by one as large
// as PutPolicy takes (20 KB of action patterns, each a * before every
// letter of an action), whose check runs every pattern over every action.
func BenchmarkDecideShared(b *testing.B) {
	const arn = "arn:aws:acm-pca:us-east-1:111111111111:certificate-authority/11111111-1111-1111-1111-111111111111"
	var spread strings.Builder
	spread.WriteString(authority.ActionPrefix)
	for _, c := range "GetCertificateAuthorityCertificate" {
		spread.WriteString("*" + string(c))
	}
	for _, bc := range []struct {
		name    string
		pattern string
		n       int // patterns
	}{
		{"policy=small", authority.ActionPrefix + "GetCertificateAuthorityCertificate", 1},
		{"policy=largest", spread.String(), 19000 / (spread.Len() + 3)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			actions := make([]string, bc.n)
			for i := range actions {
				actions[i] = bc.pattern
			}
			doc, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
				"Effect": "Allow", "Principal": map[string]any{"AWS": "222222222222"}, "Action": actions, "Resource": arn}}})
			if err != nil {
				b.Fatal(err)
			}
			ca := &openpca.CA{ARN: arn, AccountID: "111111111111", Policy: string(doc)}
			caller := openpca.Caller{AccountID: "222222222222", Principal: "AKIABENCH"}
			policies := authority.NewCAPolicies()
			values := authority.ConditionValues(caller, ca, "us-east-1", nil, time.Now())
			if v := authority.Decide(policies, caller, authority.ActionPrefix+"GetCertificateAuthorityCertificate", ca, "", values); !v.Allowed {
				b.Fatalf("not allowed: %s", v.Reason)
			}
			for b.Loop() {
				authority.Decide(policies, caller, authority.ActionPrefix+"GetCertificateAuthorityCertificate", ca, "", values)
			}
		})
	}
}
