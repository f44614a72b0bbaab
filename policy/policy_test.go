package policy

import (
	"strings"
	"testing"
)

const ca = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"

func mustParse(t *testing.T, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return p
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		doc  string
		kind Kind
		want string // in the error
	}{
		{`[]`, Identity, "not a JSON object"},
		{`{"Version":"2012-10-17"}`, Identity, "no Statement"},
		{`{"Version":"2019-01-01","Statement":[]}`, Identity, "not a policy language version"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*"}}`, Identity, "Resource or NotResource is required"},
		{`{"Statement":{"Effect":"allow","Action":"acm-pca:*","Resource":"*"}}`, Identity, "neither Allow nor Deny"},
		{`{"Statement":{"Action":"acm-pca:*","Resource":"*"}}`, Identity, "Effect is required"},
		{`{"Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, "exactly one of Action and NotAction"},
		{`{"Statement":{"Effect":"Allow","Action":"a:x","NotAction":"a:y","Resource":"*"}}`, Identity, "exactly one"},
		{`{"Statement":{"Effect":"Allow","Action":"IssueCertificate","Resource":"*"}}`, Identity, "not an action"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"bucket"}}`, Identity, "neither * nor an ARN"},
		{`{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`, Identity, "must not be empty"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Principal":"*"}}`, Identity, "names no principal"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"}}`, Resource, "Principal is required"},
		{`{"Statement":{"Effect":"Allow","Principal":{"Service":"acm.amazonaws.com"},"Action":"acm-pca:*","Resource":"*"}}`, Resource, "Service principals are not supported"},
		{`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::12345:root"},"Action":"acm-pca:*","Resource":"*"}}`, Resource, "not an account"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}}`, Identity, "not a condition operator"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.300/8"}}}}`, Identity, "not an IP address"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/95"}}}}`, Identity, "at least 96 bits"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/33"}}}}`, Identity, "at least 96 bits"},
		// U+0130 folds to "i": this tested aws:SourceIp.
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:Source\u0130p":"10.0.0.0/8"}}}}`, Identity, "U+0130"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:Tag\u212Aeys":"x"}}}}`, Identity, "U+212A"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}`, Identity, "not a date"},
		// Seconds since 1970 as IAM reads digits: a Deny until "2027"
		// (second 2027) denied nothing.
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2027"}}}}`, Identity, "not a date"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"20270101"}}}}`, Identity, "not a date"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"99999999"}}}}`, Identity, "not a date"},
		// null decoded as "": StringNotEquals of it allowed every request.
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":[null]}}}}`, Identity, "not null"},
		// The Kelvin sign folds to "k": this granted RevokeCertificate.
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:Revo\u212AeCertificate","Resource":"*"}}`, Identity, "U+212A"},
		{"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"acm-pca:Revo\u212AeCertificate\",\"Resource\":\"*\"}}", Identity, "U+212A"},
		{`{"Statement":{"Effect":"Allow","NotAction":"acm-pca:Revo\u212AeCertificate","Resource":"*"}}`, Identity, "U+212A"},
		// An exponent took big.Rat 15 ms to read, at every evaluation.
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericEquals":{"x:n":"1e999999"}}}}`, Identity, "not a number"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericEquals":{"x:n":1e9}}}}`, Identity, "not a number"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericEquals":{"x:n":"1/3"}}}}`, Identity, "not a number"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"Null":{"k":"maybe"}}}}`, Identity, "Null takes true or false"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}`, Identity, "Bool takes true or false"},
		{`{"Statement":[{"Sid":"a","Effect":"Allow","Action":"acm-pca:*","Resource":"*"},{"Sid":"a","Effect":"Deny","Action":"acm-pca:*","Resource":"*"}]}`, Identity, "used twice"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Extra":1}}`, Identity, "unknown element"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"}} {}`, Identity, "data after"},
		{strings.Repeat(" ", MaxSize+1), Identity, "at most"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"acm-pca:Delete*","Resource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:certificate-authority/*"}}`, Identity, "policy variable"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"acm-pca:*","NotResource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:*"}}`, Identity, "policy variable"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/owner":"${aws:userid}"}}}}`, Identity, "policy variable"},
		// Keys the server never supplies: a Deny on them denied nothing.
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/a"}}}}`, Identity, "this server does not"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"x"}}}}`, Identity, "this server does not"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"acm-pca:Frobnicate":"x"}}}}`, Identity, "this server does not"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/":"x"}}}}`, Identity, "this server does not"},
		// In a CA's policy too, ACM Private CA's own: ForAllValues over an
		// absent key is true, and allowed every certificate.
		{`{"Statement":{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"acm-pca:IssueCertificate","Resource":"*","Condition":{"ForAllValues:StringLike":{"acm-pca:x509SAN/dNSName":"*.corp.example"}}}}`, Resource, "this server does not"},
		{`{"Statement":{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"acm-pca:IssueCertificate","Resource":"*","Condition":{"StringNotEquals":{"acm-pca:x509Key/algorithm":"SM2"}}}}`, Resource, "this server does not"},
		// A name given twice: Go would keep the last.
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Effect":"Allow"}}`, Identity, `"Effect" is given twice`},
		{`{"Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"x:k":"a","x:k":"b"}}}]}`, Identity, "given twice"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},"Version":"2008-10-17"}`, Identity, "given twice"},
		// A number past float64 before it stopped the check.
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"x:k":1e400}},"Effect":"Allow"}}`, Identity, "given twice"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceOrgID":"o-1"}}}}`, Identity, "this server does not"},
		// A space, or upper case where ARNs have none, matched nothing:
		// a Deny of it denied nothing.
		{`{"Statement":{"Effect":"Deny","Action":" acm-pca:RevokeCertificate","Resource":"*"}}`, Identity, "not an action"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:RevokeCertificate ","Resource":"*"}}`, Identity, "not an action"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca :RevokeCertificate","Resource":"*"}}`, Identity, "not an action"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:Revoke-Certificate","Resource":"*"}}`, Identity, "not an action"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/* "}}`, Identity, "a space or a control character"},
		{"{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"acm-pca:*\",\"Resource\":\"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/\\u0000*\"}}", Identity, "a space or a control character"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","NotResource":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/01A24B08-*"}}`, Identity, "in lower case"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-east-1:111122223333:Certificate-Authority/*"}}`, Identity, "in lower case"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:ACM-PCA:us-east-1:111122223333:certificate-authority/*"}}`, Identity, "in lower case"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:US-EAST-1:111122223333:certificate-authority/*"}}`, Identity, "in lower case"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:AWS:acm-pca:us-east-1:111122223333:certificate-authority/*"}}`, Identity, "in lower case"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-east-1:11112222333:certificate-authority/*"}}`, Identity, "is not 12 digits"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-east-1::certificate-authority/*"}}`, Identity, "is not 12 digits"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp ":"10.0.0.0/8"}}}}`, Identity, "a space or a control character"},
		{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:Resource Tag/x":"y"}}}}`, Identity, "a space or a control character"},
		// A null or empty operator is no condition at all.
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":null}}`, Identity, "must map condition operators"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":null}}}`, Identity, "names no condition key"},
		{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{}}}}`, Identity, "names no condition key"},
	} {
		_, err := Parse([]byte(tt.doc), tt.kind)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.80s: %v, want an error with %q", tt.doc, err, tt.want)
		}
	}
}

// TestParseTakes: what the checks of TestParseErrors must not refuse.
func TestParseTakes(t *testing.T) {
	for _, doc := range []string{
		`{"Statement":{"Effect":"Deny","Action":["acm-pca:Revoke*","acm-pca:?ssueCertificate","ACM-PCA:issuecertificate"],"Resource":"arn:aws:acm-pca:*:*:certificate-authority/*"}}`,
		`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/01a24b08-96bc-7efd-b897-2b9b77a2005f/certificate/0a1b"}}`,
		`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/cost center":"x y"}}}}`,
	} {
		if _, err := Parse([]byte(doc), Identity); err != nil {
			t.Errorf("%.80s: %v", doc, err)
		}
	}
}

func TestEvaluate(t *testing.T) {
	issue := func(tmpl string) *Request {
		r := &Request{Action: "acm-pca:IssueCertificate", Resource: ca, Account: "111122223333", Context: map[string][]string{}}
		if tmpl != "" {
			r.Context["acm-pca:templatearn"] = []string{tmpl}
		}
		return r
	}
	with := func(r *Request, key string, values ...string) *Request {
		r.Context[strings.ToLower(key)] = values
		return r
	}
	const endEntity = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
	const subCA = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"
	for _, tt := range []struct {
		name   string
		docs   []string
		req    *Request
		want   string // allow, deny (explicit) or implicit
		decide string // the deciding statement
	}{
		{"no statement applies", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:GetCertificate","Resource":"*"}}`}, issue(""), "implicit", ""},
		{"allow", []string{`{"Statement":{"Sid":"Issue","Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"*"}}`}, issue(""), "allow", "Issue"},
		{"actions match regardless of case", []string{`{"Statement":{"Effect":"Allow","Action":"ACM-PCA:issuecertificate","Resource":"*"}}`}, issue(""), "allow", "statement 1"},
		{"action wildcard", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:Issue*","Resource":"*"}}`}, issue(""), "allow", "statement 1"},
		{"action ?", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificat?","Resource":"*"}}`}, issue(""), "allow", "statement 1"},
		{"deny beats allow", []string{
			`{"Statement":{"Sid":"All","Effect":"Allow","Action":"acm-pca:*","Resource":"*"}}`,
			`{"Statement":{"Sid":"NoIssue","Effect":"Deny","Action":"acm-pca:IssueCertificate","Resource":"*"}}`}, issue(""), "deny", "NoIssue"},
		{"NotAction", []string{`{"Statement":{"Effect":"Allow","NotAction":"acm-pca:Delete*","Resource":"*"}}`}, issue(""), "allow", "statement 1"},
		{"NotAction excludes", []string{`{"Statement":{"Effect":"Allow","NotAction":"acm-pca:Issue*","Resource":"*"}}`}, issue(""), "implicit", ""},
		{"resource", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"` + ca + `"}}`}, issue(""), "allow", "statement 1"},
		{"resource wildcard", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:111122223333:certificate-authority/*"}}`}, issue(""), "allow", "statement 1"},
		{"another account's resource", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:444455556666:*"}}`}, issue(""), "implicit", ""},
		{"wildcard does not cross a colon", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:us-*:certificate-authority/*:*"}}`}, issue(""), "implicit", ""},
		{"NotResource", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","NotResource":"` + ca + `"}}`}, issue(""), "implicit", ""},
		{"template condition met", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"*","Condition":{"StringEquals":{"acm-pca:TemplateArn":"` + endEntity + `"}}}}`}, issue(endEntity), "allow", "statement 1"},
		{"template condition not met", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"*","Condition":{"StringEquals":{"acm-pca:TemplateArn":"` + endEntity + `"}}}}`}, issue(subCA), "implicit", ""},
		{"condition keys match regardless of case", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"ACM-PCA:templatearn":"` + endEntity + `"}}}}`}, issue(endEntity), "allow", "statement 1"},
		{"values are ORed", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"acm-pca:TemplateArn":["x","` + subCA + `"]}}}}`}, issue(subCA), "allow", "statement 1"},
		{"conditions are ANDed", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"acm-pca:TemplateArn":"` + endEntity + `"},"Bool":{"aws:SecureTransport":"true"}}}}`},
			with(issue(endEntity), "aws:SecureTransport", "false"), "implicit", ""},
		{"missing key: false", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringLike":{"acm-pca:TemplateArn":"*"}}}}`}, issue(""), "implicit", ""},
		{"missing key, negated: true", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotLike":{"acm-pca:TemplateArn":"*EndEntity*"}}}}`}, issue(""), "deny", "statement 1"},
		{"negated: no value may match", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"acm-pca:TemplateArn":["a","` + subCA + `"]}}}}`}, issue(subCA), "implicit", ""},
		{"IfExists, missing", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEqualsIfExists":{"acm-pca:TemplateArn":"x"}}}}`}, issue(""), "allow", "statement 1"},
		{"IfExists, present", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEqualsIfExists":{"acm-pca:TemplateArn":"x"}}}}`}, issue(subCA), "implicit", ""},
		{"Null true", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"Null":{"aws:RequestTag/team":"true"}}}}`}, issue(""), "allow", "statement 1"},
		{"Null false", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"Null":{"aws:RequestTag/team":"false"}}}}`}, issue(""), "implicit", ""},
		{"ForAllValues, empty set", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}}`}, issue(""), "allow", "statement 1"},
		{"ForAllValues, one not allowed", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}}`},
			with(issue(""), "aws:TagKeys", "team", "owner"), "implicit", ""},
		{"ForAnyValue, empty set", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}}}`}, issue(""), "implicit", ""},
		{"ForAnyValue, one", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["te*"]}}}}`},
			with(issue(""), "aws:TagKeys", "owner", "team"), "allow", "statement 1"},
		{"ForAllValues, negated", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","owner"]}}}}`},
			with(issue(""), "aws:TagKeys", "owner", "secret"), "deny", "statement 1"},
		// Tag keys are one to conditions whatever their case, as
		// aws:ResourceTag/ reads them: a Deny naming "owner" holds "Owner".
		{"aws:TagKeys folded, Deny", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner"]}}}}`},
			with(issue(""), "aws:TagKeys", "team", "Owner"), "deny", "statement 1"},
		{"aws:TagKeys folded, in the policy", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ForAllValues:StringLike":{"aws:TagKeys":["TEAM-*","Owner"]}}}}`},
			with(issue(""), "aws:TagKeys", "team-a", "OWNER"), "allow", "statement 1"},
		{"aws:TagKeys folded, beyond ASCII", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:TagKeys":"Übung"}}}}`},
			with(issue(""), "aws:TagKeys", "übung"), "deny", "statement 1"},
		{"other keys' values as written", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"PKI"}}}}`},
			with(issue(""), "aws:ResourceTag/team", "pki"), "implicit", ""},
		{"StringEqualsIgnoreCase", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"aws:ResourceTag/Team":"PKI"}}}}`},
			with(issue(""), "aws:ResourceTag/team", "pki"), "allow", "statement 1"},
		{"StringNotEqualsIgnoreCase", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEqualsIgnoreCase":{"aws:ResourceTag/Team":"PKI"}}}}`},
			with(issue(""), "aws:ResourceTag/team", "pki"), "implicit", ""},
		{"ArnLike", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"ArnLike":{"acm-pca:TemplateArn":"arn:aws:acm-pca:::template/EndEntity*"}}}}`}, issue(endEntity), "allow", "statement 1"},
		{"ArnNotEquals", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"ArnNotEquals":{"acm-pca:TemplateArn":"` + endEntity + `"}}}}`}, issue(subCA), "deny", "statement 1"},
		{"IpAddress", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.7"]}}}}`},
			with(issue(""), "aws:SourceIp", "10.1.2.3"), "allow", "statement 1"},
		{"NotIpAddress", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`},
			with(issue(""), "aws:SourceIp", "::ffff:192.0.2.7"), "deny", "statement 1"},
		// An IPv4 range written as IPv6 was a prefix that held no address.
		{"IpAddress, IPv4-mapped range", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:127.0.0.0/104"}}}}`},
			with(issue(""), "aws:SourceIp", "127.0.0.1"), "deny", "statement 1"},
		{"IpAddress, IPv4-mapped address as a range", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:192.0.2.7/128"}}}}`},
			with(issue(""), "aws:SourceIp", "::ffff:192.0.2.7"), "deny", "statement 1"},
		{"IpAddress, IPv4-mapped range of 32 bits or fewer, as before", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/8"}}}}`},
			with(issue(""), "aws:SourceIp", "10.1.2.3"), "deny", "statement 1"},
		{"IpAddress, IPv4-mapped range, outside", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:127.0.0.0/104"}}}}`},
			with(issue(""), "aws:SourceIp", "128.0.0.1"), "implicit", ""},
		{"Unicode in a tag key", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/\u30c1\u30fc\u30e0":"pki"}}}}`},
			with(issue(""), "aws:ResourceTag/チーム", "pki"), "allow", "statement 1"},
		{"Unicode in a condition's value", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"\u30c1\u30fc\u30e0"}}}}`},
			with(issue(""), "aws:ResourceTag/team", "チーム"), "allow", "statement 1"},
		{"DateLessThan", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}}}`},
			with(issue(""), "aws:CurrentTime", "2026-11-30T12:00:00Z"), "allow", "statement 1"},
		{"DateGreaterThan", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01"}}}}`},
			with(issue(""), "aws:CurrentTime", "2026-11-30T12:00:00Z"), "implicit", ""},
		{"DateLessThan, seconds since 1970", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"100000000"}}}}`},
			with(issue(""), "aws:CurrentTime", "1973-03-03T09:46:39Z"), "allow", "statement 1"},
		{"NumericLessThan", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericLessThan":{"x:n":10}}}}`},
			with(issue(""), "x:n", "9.5"), "allow", "statement 1"},
		{"NumericLessThan, decimals", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericLessThan":{"x:n":["-.5", "+2."]}}}}`},
			with(issue(""), "x:n", "1.99"), "allow", "statement 1"},
		{"NumericLessThan, a value with an exponent", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"NumericLessThan":{"x:n":10}}}}`},
			with(issue(""), "x:n", "1e-999999"), "implicit", ""},
		{"an unknown key is absent", []string{`{"Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"*","Condition":{"StringEquals":{"other-service:NoSuchKey":"x"}}}}`}, issue(""), "implicit", ""},
		{"Bool", []string{`{"Statement":{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}}`},
			with(issue(""), "aws:SecureTransport", "false"), "deny", "statement 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var named []Named
			for i, d := range tt.docs {
				named = append(named, Named{Name: string(rune('a' + i)), Policy: mustParse(t, d, Identity)})
			}
			d := Evaluate(named, tt.req)
			got := "implicit"
			switch {
			case d.Denied:
				got = "deny"
			case d.Allowed:
				got = "allow"
			}
			if got != tt.want || d.Statement != tt.decide {
				t.Errorf("decision %+v, want %s by %q", d, tt.want, tt.decide)
			}
		})
	}
}

func TestResourcePolicyPrincipals(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Sid":"Read","Effect":"Allow","Principal":{"AWS":["444455556666","arn:aws:iam::777788889999:root"]},"Action":["acm-pca:DescribeCertificateAuthority","acm-pca:GetCertificate"],"Resource":"`+ca+`"}]}`, Resource)
	for account, want := range map[string]bool{"444455556666": true, "777788889999": true, "111122223333": false} {
		d := Evaluate([]Named{{Name: "ca", Policy: p}}, &Request{Action: "acm-pca:GetCertificate", Resource: ca, Account: account})
		if d.Allowed != want {
			t.Errorf("account %s: %+v, want allowed %v", account, d, want)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true}, {"*", "", true}, {"a*", "a", true}, {"*b", "ab", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false}, {"é?", "éa", true}, {"??", "é", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false},
	} {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}

func TestManaged(t *testing.T) {
	ro, ok := Managed("ReadOnly")
	if !ok {
		t.Fatal("no ReadOnly")
	}
	for action, want := range map[string]bool{
		"acm-pca:DescribeCertificateAuthority": true, "acm-pca:ListTags": true, "acm-pca:GetAuditLogCheckpoint": true,
		"acm-pca:IssueCertificate": false, "acm-pca:PutPolicy": false, "acm-pca:CreateCertificateAuthorityAuditReport": false,
	} {
		if d := Evaluate([]Named{{Name: "ReadOnly", Policy: ro}}, &Request{Action: action, Resource: ca}); d.Allowed != want {
			t.Errorf("ReadOnly %s: %+v", action, d)
		}
	}
	if names := ManagedNames(); len(names) != 2 || names[0] != "FullAccess" {
		t.Errorf("managed policies %v", names)
	}
}

// TestKeysAbsentAsOnAWS: an identity policy may test keys AWS too leaves
// out of a request signed with an access key, such as the network
// perimeter IAM's documentation writes with aws:SourceVpc.
func TestKeysAbsentAsOnAWS(t *testing.T) {
	mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"NotIpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"},
		"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-1a2b3c4d"},"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}`, Identity)
}

// FuzzParse: any document parses or is refused with an *Error, and what
// parses can be evaluated.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"acm-pca:*","Resource":"*","Condition":{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]}}}]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotAction":"*","NotResource":"arn:a:b:c:d:e","Condition":{"Null":{"k":"true"},"IpAddress":{"aws:SourceIp":"::1/128"}}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, kind := range []Kind{Identity, Resource} {
			p, err := Parse(doc, kind)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("an error of type %T: %v", err, err)
				}
				continue
			}
			Evaluate([]Named{{Name: "p", Policy: p}}, &Request{Action: "acm-pca:IssueCertificate", Resource: ca, Account: "111122223333",
				Context: map[string][]string{"aws:sourceip": {"10.0.0.1"}, "aws:tagkeys": {"a"}}})
		}
	})
}

// BenchmarkEvaluate decides an IssueCertificate with a three-statement
// policy, as the server does at each request of a key that has one.
func BenchmarkEvaluate(b *testing.B) {
	p, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Sid":"Issue","Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"`+ca+`",
		 "Condition":{"StringEquals":{"acm-pca:TemplateArn":"arn:aws:acm-pca:::template/EndEntityCertificate/V1"}}},
		{"Sid":"Fetch","Effect":"Allow","Action":"acm-pca:GetCertificate","Resource":"`+ca+`"},
		{"Sid":"NoDeletes","Effect":"Deny","Action":"acm-pca:Delete*","Resource":"*"}]}`), Identity)
	if err != nil {
		b.Fatal(err)
	}
	r := &Request{Action: "acm-pca:IssueCertificate", Resource: ca, Account: "111122223333", Context: map[string][]string{
		"acm-pca:templatearn": {"arn:aws:acm-pca:::template/EndEntityCertificate/V1"}, "aws:sourceip": {"127.0.0.1"},
		"aws:currenttime": {"2026-11-30T12:00:00Z"}, "aws:securetransport": {"false"}, "aws:principalaccount": {"111122223333"}}}
	named := []Named{{Name: "issuer", Policy: p}}
	for b.Loop() {
		if d := Evaluate(named, r); !d.Allowed {
			b.Fatal(d)
		}
	}
}

// TestVariablesOf2008 checks that "${" is taken as written in a policy of
// 2008-10-17, the version without variables.
func TestVariablesOf2008(t *testing.T) {
	doc := `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:*:certificate-authority/${x}"}}`
	if _, err := Parse([]byte(doc), Identity); err != nil {
		t.Fatal(err)
	}
}

// TestIpAddressZonedSource: a client's address with an IPv6 zone, as a
// link-local client's connection has (fe80::1%eth0), is in the networks
// that hold the address: netip's Contains is false for any zoned address,
// so a Deny of fe80::/10 denied nothing, and an Allow of it allowed
// nothing.
func TestIpAddressZonedSource(t *testing.T) {
	deny := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Sid":"All","Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Sid":"NotFromLinkLocal","Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"fe80::/10"}}}]}`, Identity)
	for _, addr := range []string{"fe80::1", "fe80::1%eth0", "fe80::fc:ff:fe00:1%2"} {
		r := &Request{Action: "acm-pca:IssueCertificate", Resource: ca, Account: "111122223333", Context: map[string][]string{KeySourceIP: {addr}}}
		if d := Evaluate([]Named{{Name: "p", Policy: deny}}, r); !d.Denied {
			t.Errorf("a request from %s: %+v, want denied by NotFromLinkLocal", addr, d)
		}
	}
}
