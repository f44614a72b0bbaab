package sigv4

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openpca/openpca"
)

type keys map[string]string

func (k keys) Secret(_ context.Context, id string) (string, error) {
	if s, ok := k[id]; ok {
		return s, nil
	}
	return "", ErrUnknownKey
}

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func verifier() *Verifier {
	return &Verifier{Service: "acm-pca", Region: "us-east-1", Keys: keys{"AKIDOPENPCA": "secret-one"}, Now: func() time.Time { return now }}
}

// signed builds a request signed by the AWS SDK's own signer, with more
// headers as name, value pairs.
func signed(t *testing.T, body, akid, secret, region, service string, at time.Time, headers ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verify runs both steps of a verification, as a server does.
func verify(v *Verifier, r *http.Request, body []byte) (string, error) {
	s, err := v.Begin(r)
	if err != nil {
		return "", err
	}
	return s.Verify(body)
}

func TestVerify(t *testing.T) {
	body := `{"MaxResults":10}`
	tests := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		body   string // what the server receives, if not body
		code   string
		secret string // must not appear in the message
	}{
		{"good", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
		}, "", "", ""},
		{"four minutes old", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now.Add(-4*time.Minute))
		}, "", "", ""},
		{"no Authorization header", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Del("Authorization")
			return r
		}, "", openpca.CodeMissingAuthenticationToken, ""},
		{"malformed header", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDOPENPCA")
			return r
		}, "", openpca.CodeIncompleteSignature, ""},
		{"unknown algorithm", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1))
			return r
		}, "", openpca.CodeIncompleteSignature, ""},
		{"no X-Amz-Date", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Del("X-Amz-Date")
			return r
		}, "", openpca.CodeIncompleteSignature, ""},
		{"unknown key", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDSTRANGER", "secret-one", "us-east-1", "acm-pca", now)
		}, "", openpca.CodeUnrecognizedClient, ""},
		{"wrong secret", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-two", "us-east-1", "acm-pca", now)
		}, "", openpca.CodeInvalidSignature, "secret"},
		{"tampered body", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
		},
			`{"MaxResults":11}`, openpca.CodeInvalidSignature, ""},
		{"tampered signed header", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Set("X-Amz-Target", "ACMPrivateCA.DeleteCertificateAuthority")
			return r
		}, "", openpca.CodeInvalidSignature, ""},
		{"tampered host", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Host = "evil.example"
			return r
		}, "", openpca.CodeInvalidSignature, ""},
		{"wrong region", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "eu-west-1", "acm-pca", now)
		}, "", openpca.CodeInvalidSignature, ""},
		{"wrong service", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm", now)
		}, "", openpca.CodeInvalidSignature, ""},
		{"stale date", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now.Add(-6*time.Minute))
		}, "", openpca.CodeInvalidSignature, ""},
		{"future date", func(t *testing.T) *http.Request {
			return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now.Add(6*time.Minute))
		}, "", openpca.CodeInvalidSignature, ""},
		{"scope date differs from X-Amz-Date", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261123/", "/20261122/", 1))
			return r
		}, "", openpca.CodeInvalidSignature, ""},
		{"session token", func(t *testing.T) *http.Request {
			r := signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
			r.Header.Set("X-Amz-Security-Token", "token")
			return r
		}, "", openpca.CodeUnrecognizedClient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req(t)
			b := tt.body
			if b == "" {
				b = body
			}
			akid, err := verify(verifier(), r, []byte(b))
			code := ""
			if err != nil {
				code = openpca.ErrorCode(err)
			}
			if code != tt.code {
				t.Fatalf("Verify = %q, %v; want code %q", akid, err, tt.code)
			}
			if tt.code == "" && akid != "AKIDOPENPCA" {
				t.Errorf("access key %q", akid)
			}
			if err != nil && (strings.Contains(err.Error(), "secret-one") || strings.Contains(err.Error(), "secret-two")) {
				t.Errorf("the error reveals a secret: %v", err)
			}
		})
	}
}

func TestSignedHeadersMustIncludeHostAndDate(t *testing.T) {
	r := signed(t, "{}", "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", now)
	h := r.Header.Get("Authorization")
	start := strings.Index(h, "SignedHeaders=") + len("SignedHeaders=")
	end := strings.Index(h[start:], ",") + start
	for _, drop := range []string{"host", "x-amz-date"} {
		var kept []string
		for _, sh := range strings.Split(h[start:end], ";") {
			if sh != drop {
				kept = append(kept, sh)
			}
		}
		r.Header.Set("Authorization", h[:start]+strings.Join(kept, ";")+h[end:])
		if _, err := verify(verifier(), r, []byte("{}")); openpca.ErrorCode(err) != openpca.CodeIncompleteSignature {
			t.Errorf("without %s signed: %v", drop, err)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	good := "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/acm-pca/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig
	a, err := ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKeyID != "AKID" || a.Date != "20261123" || a.Region != "us-east-1" || a.Service != "acm-pca" ||
		strings.Join(a.SignedHeaders, ";") != "content-type;host;x-amz-date" || hex.EncodeToString(a.Signature) != sig {
		t.Errorf("parsed %+v", a)
	}
	most := strings.Replace(good, "content-type;host;x-amz-date", "content-type;host;x-amz-date;"+strings.Join(manyHeaders(MaxSignedHeaders-3), ";"), 1)
	if a, err := ParseAuthorization(most); err != nil || len(a.SignedHeaders) != MaxSignedHeaders {
		t.Errorf("%d signed headers: %v", MaxSignedHeaders, err)
	}
	for _, bad := range []string{
		"", "AWS4-HMAC-SHA256", "Basic dXNlcjpwYXNz",
		strings.Replace(good, "Signature="+sig, "Signature=xyz", 1),
		strings.Replace(good, "/aws4_request", "/aws5_request", 1),
		strings.Replace(good, "/20261123/", "/2026-11-23/", 1),
		strings.Replace(good, "content-type;host", "host;content-type", 1),
		strings.Replace(good, "content-type;host", "Content-Type;host", 1),
		strings.Replace(good, "SignedHeaders=content-type;host;x-amz-date, ", "", 1),
		good + ", Signature=" + sig,
		good + ", Extra=1",
		strings.Replace(good, "content-type;host;x-amz-date", "content-type;host;x-amz-date;"+strings.Join(manyHeaders(MaxSignedHeaders-2), ";"), 1),
	} {
		if _, err := ParseAuthorization(bad); openpca.ErrorCode(err) != openpca.CodeIncompleteSignature {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// manyHeaders returns n distinct header names, sorted after x-amz-date.
func manyHeaders(n int) []string {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("x-amz-extra-%04d", i))
	}
	return names
}

// FuzzParseAuthorization checks that any header parses without panicking,
// and that what parses is well formed.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/acm-pca/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
	f.Add("AWS4-HMAC-SHA256 ,,,==")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			if openpca.ErrorCode(err) != openpca.CodeIncompleteSignature {
				t.Fatalf("error without its code: %v", err)
			}
			return
		}
		if a.AccessKeyID == "" || len(a.Signature) != sha256.Size || len(a.SignedHeaders) == 0 || strings.Contains(a.AccessKeyID, "/") {
			t.Fatalf("accepted a malformed header %q as %+v", h, a)
		}
	})
}

// TestHeadersThatMustBeSigned adds headers to a request after the SDK
// signed it, as someone in the path could: the signature still matches
// what it covers, but a header that AWS requires to be signed is not.
func TestHeadersThatMustBeSigned(t *testing.T) {
	tests := []struct {
		header, value string
		code          string
	}{
		{"X-Amz-Target", "ACMPrivateCA.DeleteCertificateAuthority", openpca.CodeIncompleteSignature},
		{"Content-Type", "application/x-amz-json-1.1", openpca.CodeIncompleteSignature},
		{"X-Amz-Meta-Anything", "1", openpca.CodeIncompleteSignature},
		{"x-amz-content-sha256", "UNSIGNED-PAYLOAD", openpca.CodeIncompleteSignature},
		// Headers clients leave unsigned on purpose stay accepted.
		{"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793", ""},
		{"User-Agent", "aws-cli/2.9.19", ""},
		{"Amz-Sdk-Request", "attempt=1; max=3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte("{}"))
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDOPENPCA", SecretAccessKey: "secret-one"},
				r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", now); err != nil {
				t.Fatal(err)
			}
			if _, err := verify(verifier(), r, []byte("{}")); err != nil {
				t.Fatalf("as signed: %v", err)
			}
			r.Header.Set(tt.header, tt.value)
			_, err = verify(verifier(), r, []byte("{}"))
			if code := openpca.ErrorCode(err); (err == nil) != (tt.code == "") || (err != nil && code != tt.code) {
				t.Fatalf("with %s added unsigned: %v, want %q", tt.header, err, tt.code)
			}
			if err != nil && !strings.Contains(err.Error(), http.CanonicalHeaderKey(tt.header)) {
				t.Errorf("the error does not name %s: %v", tt.header, err)
			}
		})
	}
}

// botocoreSigned builds a request signed by botocore (the AWS CLI's and
// boto3's signer), now, with the header X-Amz-Meta-Note: note.
func botocoreSigned(t *testing.T, body, note string) *http.Request {
	t.Helper()
	script := `
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
body, note = sys.argv[1], sys.argv[2]
r = AWSRequest(method="POST", url="http://127.0.0.1:8080/", data=body, headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "ACMPrivateCA.ListCertificateAuthorities",
    "X-Amz-Meta-Note": note})
SigV4Auth(Credentials("AKIDOPENPCA", "secret-one"), "acm-pca", "us-east-1").add_auth(r)
print(json.dumps(dict(r.headers.items())))
`
	out, err := exec.Command("python3", "-c", script, body, note).Output()
	if err != nil {
		t.Fatalf("botocore: %v", err)
	}
	var headers map[string]string
	if err := json.Unmarshal(out, &headers); err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

// TestHeaderWhiteSpace: SigV4 makes each run of spaces in a signed
// header's value one space, which the Go SDK follows; botocore makes each
// run of any white space one space. A value with a tab or a no-break space
// inside is signed differently by the two, and each must verify; one
// signed for a value that differs elsewhere must not.
func TestHeaderWhiteSpace(t *testing.T) {
	body := `{"MaxResults":10}`
	v := verifier()
	v.Now = time.Now // botocore signs at the present time
	for _, note := range []string{"build 42", "  build   job  42 ", "build\tjob 42", "build\u00a0job 42", "build \t job"} {
		for signer, sign := range map[string]func() *http.Request{
			"Go SDK": func() *http.Request {
				return signed(t, body, "AKIDOPENPCA", "secret-one", "us-east-1", "acm-pca", time.Now(), "X-Amz-Meta-Note", note)
			},
			"botocore": func() *http.Request { return botocoreSigned(t, body, note) },
		} {
			t.Run(fmt.Sprintf("%s/%q", signer, note), func(t *testing.T) {
				r := sign()
				if _, err := verify(v, r, []byte(body)); err != nil {
					t.Errorf("refused: %v", err)
				}
				if got := r.Header.Get("X-Amz-Meta-Note"); got != note {
					t.Errorf("the verification changed the header to %q", got)
				}
				r.Header.Set("X-Amz-Meta-Note", note+"x")
				if _, err := verify(v, r, []byte(body)); openpca.ErrorCode(err) != openpca.CodeInvalidSignature {
					t.Errorf("a changed value: %v, want %s", err, openpca.CodeInvalidSignature)
				}
			})
		}
	}
}

// TestCanonicalPathAndQuery pins the canonical URI and query string to
// SigV4's: the path as sent, each segment URI-encoded once more (AWS's
// own example: /documents%20and%20settings/ is signed as
// /documents%2520and%2520settings/), and the parameters sorted by name,
// then by value.
func TestCanonicalPathAndQuery(t *testing.T) {
	for _, tt := range []struct{ target, uri, query string }{
		{"/", "/", ""},
		{"/documents%20and%20settings/", "/documents%2520and%2520settings/", ""},
		{"/a%2Fb/c", "/a%252Fb/c", ""},
		{"/a:b@c", "/a%3Ab%40c", ""},
		{"/?from2=x&from=1", "/", "from=1&from2=x"},
		{"/?b=2&a=1&a=0&a%20=3", "/", "a=0&a=1&a%20=3&b=2"},
		{"/?k=a+b&k=~", "/", "k=a%20b&k=~"},
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + tt.target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalURI(r.URL); got != tt.uri {
			t.Errorf("%s: canonical URI %s, want %s", tt.target, got, tt.uri)
		}
		if got := canonicalQuery(r.URL.Query()); got != tt.query {
			t.Errorf("%s: canonical query %s, want %s", tt.target, got, tt.query)
		}
	}
}
