package kms

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/openpca/openpca"
)

// TestRefusal: what KMS refuses is told in AWS's terms: a key that cannot
// sign is the CA's state, a key policy KMS refuses is the server's to mend
// (an internal failure, not one a client retries), as are the server's
// rights and a handle that names no key it can use, anything else a KMS
// that cannot be reached. KMS's own words (which name its endpoint) are
// the cause, for the operator's log, not in the client's message.
func TestRefusal(t *testing.T) {
	ca := &openpca.CA{ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-1111-1111-1111-111111111111"}
	for _, tc := range []struct {
		err  error
		code string
	}{
		{&types.DisabledException{Message: aws.String("disabled")}, openpca.CodeInvalidState},
		{&types.InvalidKeyUsageException{Message: aws.String("usage")}, openpca.CodeInvalidArgs},
		{&types.MalformedPolicyDocumentException{Message: aws.String("lockout")}, openpca.CodeInternalFailure},
		// KMS answered: a retry gets the same.
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: kms:Sign", Fault: smithy.FaultClient}, openpca.CodeInternalFailure},
		{&types.InvalidArnException{Message: aws.String("arn")}, openpca.CodeInternalFailure},
		{&types.IncorrectKeyException{Message: aws.String("key")}, openpca.CodeInternalFailure},
		// A quota of KMS's account (its keys): the operator's to raise.
		{&types.LimitExceededException{Message: aws.String("quota")}, openpca.CodeInternalFailure},
		{&smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}, openpca.CodeServiceUnavailable},
		{errors.New("connection refused"), openpca.CodeServiceUnavailable},
	} {
		err := refusal(ca, tc.err)
		if got := openpca.ErrorCode(err); got != tc.code {
			t.Errorf("%T: %s, want %s", tc.err, got, tc.code)
		}
		if e, ok := errors.AsType[*openpca.Error](err); ok && (strings.Contains(e.Message, tc.err.Error()) || !errors.Is(err, tc.err)) {
			t.Errorf("%T: the message %q tells KMS's words, or the cause is lost", tc.err, e.Message)
		}
	}
}

// TestRefused: only an answer of 4xx is KMS's refusal of a CreateKey,
// which made no key. A request with no answer (a timeout: status 0), an
// answer of 200 not read whole, or one of 500 or more may have made one,
// which the error must say.
func TestRefused(t *testing.T) {
	answer := func(status int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("x")}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{answer(400), true},
		{answer(499), true},
		{answer(0), false},
		{answer(200), false}, // its body cut short
		{answer(500), false},
		{answer(503), false},
		{errors.New("connection refused"), false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestAnswerBounded: a KMS whose answer is larger than any the store asks
// for (a master key's unwrapping, here, of 2 MiB) fails the call, having
// read a MiB of it: read whole, an answer of 600 MB took 3 GB of memory.
func TestAnswerBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"KeyId":"k","Plaintext":"%s"}`, strings.Repeat("A", 2<<20))
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	s, err := Open(t.Context(), srv.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unwrap(t.Context(), WrapPrefix+"AAAA"); err == nil || !strings.Contains(err.Error(), "longer than the 1048576 bytes taken") {
		t.Errorf("an answer of 2 MiB: %v", err)
	}
}
