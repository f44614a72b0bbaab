package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestSignedPathIsTheRawPath: the canonical path is the path as sent, so
// a signature binds its bytes: paths that decode alike (an escape of an
// unreserved character, an escaped slash, a dot segment) are each their
// own, and one signed does not verify for another.
func TestSignedPathIsTheRawPath(t *testing.T) {
	signed := func(path string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, "http://h"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDOPENPCA", SecretAccessKey: "secret-one"},
			r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Replays the signed head with its request line's path replaced.
	sentAs := func(r *http.Request, path string) *http.Request {
		var wire bytes.Buffer
		if err := r.Write(&wire); err != nil {
			t.Fatal(err)
		}
		head := wire.String()
		line, rest, _ := strings.Cut(head, "\r\n")
		parts := strings.SplitN(line, " ", 3)
		sr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(parts[0] + " " + path + " " + parts[2] + "\r\n" + rest)))
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	for _, tt := range []struct{ signed, sent string }{
		{"/audit-log/checkpoint", "/audit-log/%63heckpoint"},
		{"/audit-log/checkpoint", "/audit-log%2Fcheckpoint"},
		{"/audit-log/checkpoint", "/x/../audit-log/checkpoint"},
		{"/audit-log/checkpoint", "//audit-log/checkpoint"},
		{"/open%20pca/", "/open%2520pca/"},
	} {
		r := signed(tt.signed)
		if _, err := verify(verifier(), sentAs(r, tt.signed), nil); err != nil {
			t.Fatalf("%s as signed: %v", tt.signed, err)
		}
		if _, err := verify(verifier(), sentAs(r, tt.sent), nil); err == nil {
			t.Errorf("signed for %s, verified for %s", tt.signed, tt.sent)
		}
	}
}
