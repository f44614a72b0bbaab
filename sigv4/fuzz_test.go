package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/fuzzhttp"
)

// authCodes are the codes a refused signature may carry.
var authCodes = map[string]bool{
	openpca.CodeMissingAuthenticationToken: true, openpca.CodeIncompleteSignature: true,
	openpca.CodeInvalidSignature: true, openpca.CodeUnrecognizedClient: true,
}

// FuzzVerify reads a request's head as the server does and runs both
// steps of the verification on it and a body: whatever the head (its
// Authorization, X-Amz-Date, path, query, headers), nothing panics, and a
// refusal carries an authentication code. Then the same request, signed
// by the Go SDK, must verify over its body, path and query as sent, and
// not over another body or with another X-Amz-Target.
func FuzzVerify(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: ACMPrivateCA.ListCertificateAuthorities\r\n", []byte("{}"))
	f.Add("GET /audit-log/checkpoint?certificateAuthorityArn=arn%3Aaws%3Aacm-pca%3Aus-east-1%3A111122223333%3Acertificate-authority%2Fx&from=1&from2=1 HTTP/1.1\r\nHost: h\r\n", []byte(nil))
	f.Add("POST /open%20pca/ HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDOPENPCA/20261123/us-east-1/acm-pca/aws4_request, SignedHeaders=host;x-amz-date, Signature="+
		strings.Repeat("0", 64)+"\r\nX-Amz-Date: 20261123T120000Z\r\nX-Amz-Meta-A: 1\r\nX-Amz-Meta-A:  2\t3\r\n", []byte("x"))
	f.Fuzz(func(t *testing.T, head string, body []byte) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + "\r\n")))
		if err != nil || !fuzzhttp.Servable(r) {
			return
		}
		if _, err := verify(verifier(), r, body); err == nil {
			t.Fatalf("a request of the fuzzer's verified:\n%s", head)
		} else if !authCodes[openpca.ErrorCode(err)] {
			t.Fatalf("refused without an authentication code: %v", err)
		}

		for _, h := range []string{"Authorization", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "X-Amz-Date", "Content-Length", "Transfer-Encoding"} {
			r.Header.Del(h)
		}
		r.ContentLength, r.TransferEncoding, r.Close = int64(len(body)), nil, false
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDOPENPCA", SecretAccessKey: "secret-one"},
			r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", now); err != nil {
			return
		}
		var wire bytes.Buffer
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.Write(&wire); err != nil {
			return
		}
		sr, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil || !fuzzhttp.Servable(sr) {
			return
		}
		if _, err := verify(verifier(), sr, body); err != nil {
			t.Fatalf("the SDK's signature refused: %v\n%s", err, head)
		}
		if _, err := verify(verifier(), sr, append(bytes.Clone(body), 'x')); openpca.ErrorCode(err) != openpca.CodeInvalidSignature {
			t.Fatalf("another body: %v", err)
		}
		sr.Header.Set("X-Amz-Target", sr.Header.Get("X-Amz-Target")+"x")
		if _, err := verify(verifier(), sr, body); err == nil {
			t.Fatalf("another X-Amz-Target verified")
		}
	})
}
