package auth_test

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca/internal/testenv"
)

// escapedPaths are endpoint paths a client may be given (a server behind
// a proxy, under a prefix of its own): the API answers on any path. Each
// has a byte a request sends percent-escaped, which SigV4 encodes once
// more in the canonical request.
var escapedPaths = []string{"/open%20pca", "/pca%C3%A9", "/a%2Fb"}

// TestEscapedEndpointPath: a client whose endpoint's path has a
// percent-escape is signed as AWS's SDKs sign for every service but S3,
// the path encoded twice, and the server takes its requests. Decoded and
// encoded once, the server's canonical request differed from the Go
// SDK's and botocore's, and every such request was InvalidSignature.
func TestEscapedEndpointPath(t *testing.T) {
	env := testenv.Start(t)
	for _, p := range append([]string{"/openpca"}, escapedPaths...) {
		c := testenv.NewClientWith(env.URL+p, env.Transport(), testenv.AccessKeyID, testenv.SecretAccessKey)
		if _, err := c.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
			t.Errorf("Go SDK, endpoint %s: %v", p, err)
		}
	}
	if exec.Command("python3", "-c", "import boto3").Run() != nil {
		t.Log("no boto3: botocore's signature not tried")
		return
	}
	script := `
import sys, boto3, botocore.config
url, key, secret = sys.argv[1:4]
for p in sys.argv[4:]:
    c = boto3.client("acm-pca", endpoint_url=url + p, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                     config=botocore.config.Config(retries={"max_attempts": 1}))
    try:
        c.list_certificate_authorities()
    except Exception as e:
        print(p, e)
`
	out, err := exec.Command("python3", append([]string{"-c", script, env.URL, testenv.AccessKeyID, testenv.SecretAccessKey}, escapedPaths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("botocore: %s %v", out, err)
	}
}

// TestQueryParametersInOrder: the parameters of a signed GET are sorted
// by name, then value, as SigV4 says and the SDKs sign them. Sorted as
// whole name=value strings, a parameter whose name another's begins with
// followed by a digit, '-', '.' or an escape (certificateAuthorityArn and
// certificateAuthorityArn2) came after that other, and the Go SDK's
// signature was refused.
func TestQueryParametersInOrder(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, "ROOT", "Query order")
	for _, extra := range []string{"certificateAuthorityArn2=x", "certificateAuthorityArn-v=x", "certificateAuthorityArn%20=x", "z=1"} {
		status, code, body := env.Get(t, "/audit-log/checkpoint?certificateAuthorityArn="+url.QueryEscape(arn)+"&"+extra)
		if status != 200 {
			t.Errorf("with %s: %d %s %s", extra, status, code, body)
		}
	}
}
