package awsjson_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/testenv"
)

type response struct {
	status    int
	header    http.Header
	errorType string
	message   string
	body      string
}

func post(t *testing.T, url, target, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", awsjson.ContentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	testenv.Sign(t, req, []byte(body))
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: string(b)}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if res.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error body %q is not JSON: %v", b, err)
		}
		if got := res.Header.Get("X-Amzn-ErrorType"); got != e.Type {
			t.Errorf("X-Amzn-ErrorType %q, __type %q", got, e.Type)
		}
	}
	if res.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("response without x-amzn-RequestId")
	}
	r.errorType, r.message = e.Type, e.Message
	return r
}

const (
	validArn  = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/00000000-0000-0000-0000-000000000000"
	createCfg = `"CertificateAuthorityConfiguration":{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"x"}}`
)

func TestProtocolErrors(t *testing.T) {
	env := testenv.Start(t)
	tests := []struct {
		name, target, body string
		status             int
		errorType          string
		message            []string // each must appear in the message
	}{
		{"no target", "", `{}`, 400, "UnknownOperationException", []string{"X-Amz-Target"}},
		{"unknown operation", "ACMPrivateCA.MakeCoffee", `{}`, 400, "UnknownOperationException", []string{"MakeCoffee"}},
		{"wrong service", "CertificateManager.ListCertificates", `{}`, 400, "UnknownOperationException", nil},
		{"not JSON", "ACMPrivateCA.ListCertificateAuthorities", `{"MaxResults":`, 400, "SerializationException", []string{"not valid JSON"}},
		{"JSON array", "ACMPrivateCA.ListCertificateAuthorities", `[]`, 400, "SerializationException", []string{"object"}},
		{"trailing data", "ACMPrivateCA.ListCertificateAuthorities", `{} {}`, 400, "SerializationException", nil},
		{"half a surrogate pair", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `\ud800"}`, 400, "SerializationException", []string{"surrogate"}},
		{"a surrogate pair's low half first", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `\udc00\ud800"}`, 400, "SerializationException", []string{"surrogate"}},
		{"not UTF-8", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + "\xff\xfe" + `"}`, 400, "SerializationException", []string{"UTF-8"}},
		{"string for integer", "ACMPrivateCA.ListCertificateAuthorities", `{"MaxResults":"5"}`, 400, "SerializationException", []string{"maxResults", "integer"}},
		{"fraction for integer", "ACMPrivateCA.ListCertificateAuthorities", `{"MaxResults":1.5}`, 400, "SerializationException", []string{"maxResults"}},
		{"number for string", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":5}`, 400, "SerializationException", []string{"certificateAuthorityArn", "string"}},
		{"object for list", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":{}}`, 400, "SerializationException", []string{"tags"}},
		{"string for boolean", "ACMPrivateCA.UpdateCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","RevocationConfiguration":{"CrlConfiguration":{"Enabled":"yes"}}}`, 400, "SerializationException", []string{"revocationConfiguration.crlConfiguration.enabled", "boolean"}},
		{"bad base64", "ACMPrivateCA.ImportCertificateAuthorityCertificate", `{"CertificateAuthorityArn":"` + validArn + `","Certificate":"***"}`, 400, "SerializationException", []string{"certificate", "base64"}},
		{"missing required", "ACMPrivateCA.DescribeCertificateAuthority", `{}`, 400, "ValidationException", []string{"1 validation error detected", "Value null at 'certificateAuthorityArn'", "must not be null"}},
		{"missing nested required", "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT","CertificateAuthorityConfiguration":{"KeyAlgorithm":"RSA_2048"}}`, 400, "ValidationException", []string{"2 validation errors detected", "certificateAuthorityConfiguration.signingAlgorithm", "certificateAuthorityConfiguration.subject"}},
		{"too short", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"arn"}`, 400, "ValidationException", []string{"'arn'", "length greater than or equal to 5"}},
		{"too long", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/` + strings.Repeat("a", 200) + `"}`, 400, "ValidationException", []string{"length less than or equal to 200"}},
		{"pattern", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"arn:aws:s3:::bucket"}`, 400, "ValidationException", []string{"regular expression pattern"}},
		{"enum", "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"LEAF",` + createCfg + `}`, 400, "ValidationException", []string{"certificateAuthorityType", "enum value set: [ROOT, SUBORDINATE]"}},
		{"range low", "ACMPrivateCA.ListCertificateAuthorities", `{"MaxResults":0}`, 400, "ValidationException", []string{"maxResults", "greater than or equal to 1"}},
		{"range high", "ACMPrivateCA.DeleteCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","PermanentDeletionTimeInDays":31}`, 400, "ValidationException", []string{"permanentDeletionTimeInDays", "less than or equal to 30"}},
		{"list too long", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":[` + strings.TrimSuffix(strings.Repeat(`{"Key":"k"},`, 51), ",") + `]}`, 400, "ValidationException", []string{"tags", "length less than or equal to 50"}},
		{"list member", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":[{"Key":"ok"},{"Value":"v"}]}`, 400, "ValidationException", []string{"tags.2.member.key"}},
		{"null list member", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":[{"Key":"ok"},null]}`, 400, "ValidationException", []string{"Value null at 'tags.2.member'", "must not be null"}},
		{"required member in another case", "ACMPrivateCA.DescribeCertificateAuthority", `{"certificateAuthorityArn":"` + validArn + `"}`, 400, "ValidationException", []string{"Value null at 'certificateAuthorityArn'"}},
		{"blob too long", "ACMPrivateCA.ImportCertificateAuthorityCertificate", `{"CertificateAuthorityArn":"` + validArn + `","Certificate":"` + strings.Repeat("AAAA", 10923) + `"}`, 400, "ValidationException", []string{"certificate", "less than or equal to 32768"}},
		{"country length", "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT","CertificateAuthorityConfiguration":{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"Country":"USA"}}}`, 400, "ValidationException", []string{"certificateAuthorityConfiguration.subject.country"}},
		{"tag pattern", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":[{"Key":"a*b"}]}`, 400, "ValidationException", []string{"tags.1.member.key", "pattern"}},
		{"pattern with \\u escapes", "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT",` + createCfg + `,"IdempotencyToken":"Ā"}`, 400, "ValidationException", []string{"idempotencyToken", "pattern"}},
		{"semantic error after validation", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `"}`, 400, "ResourceNotFoundException", []string{validArn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, env.URL, tt.target, tt.body)
			if r.status != tt.status || r.errorType != tt.errorType {
				t.Fatalf("got %d %s (%s); want %d %s", r.status, r.errorType, r.message, tt.status, tt.errorType)
			}
			for _, m := range tt.message {
				if !strings.Contains(r.message, m) {
					t.Errorf("message %q does not contain %q", r.message, m)
				}
			}
		})
	}
}

func TestProtocolSuccess(t *testing.T) {
	env := testenv.Start(t)
	// An empty body is an empty input; unknown members are ignored, also
	// those that differ from a known one only in case (encoding/json would
	// take them for it, unchecked).
	for _, body := range []string{``, `{}`, `{"Unknown":1}`, `{"NextToken":null}`, `{"maxResults":-1}`, `{"MaxResults":5,"maxResults":-1}`} {
		r := post(t, env.URL, "ACMPrivateCA.ListCertificateAuthorities", body)
		if r.status != 200 || r.body != `{"CertificateAuthorities":[]}` {
			t.Errorf("body %q: got %d %q", body, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != awsjson.ContentType {
			t.Errorf("Content-Type %q", ct)
		}
	}
	r := post(t, env.URL, "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT",`+createCfg+`}`)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct{ CertificateAuthorityArn string }
	json.Unmarshal([]byte(r.body), &created)
	r = post(t, env.URL, "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"`+created.CertificateAuthorityArn+`"}`)
	var described struct {
		CertificateAuthority map[string]any
	}
	if err := json.Unmarshal([]byte(r.body), &described); err != nil {
		t.Fatal(err)
	}
	// Timestamps are epoch seconds, as numbers.
	if _, ok := described.CertificateAuthority["CreatedAt"].(float64); !ok {
		t.Errorf("CreatedAt is %T, want a number", described.CertificateAuthority["CreatedAt"])
	}
	// Operations without output answer 200 with an empty body.
	r = post(t, env.URL, "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"`+created.CertificateAuthorityArn+`","Tags":[{"Key":"a"}]}`)
	if r.status != 200 || r.body != "" {
		t.Errorf("tag: %d %q", r.status, r.body)
	}

	// Members in another case are dropped at every depth before decoding.
	r = post(t, env.URL, "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT","certificateAuthorityType":"BOGUS",`+createCfg+
		`,"certificateAuthorityConfiguration":null,"Tags":[{"Key":"k","key":""}],"usageMode":"BOGUS"}`)
	if r.status != 200 {
		t.Fatalf("create with members in another case: %d %s %s", r.status, r.errorType, r.message)
	}
	json.Unmarshal([]byte(r.body), &created)
	r = post(t, env.URL, "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"`+created.CertificateAuthorityArn+`"}`)
	if err := json.Unmarshal([]byte(r.body), &described); err != nil {
		t.Fatal(err)
	}
	if ca := described.CertificateAuthority; ca["Type"] != "ROOT" || ca["UsageMode"] != "GENERAL_PURPOSE" {
		t.Errorf("created from members in another case: type %v, usage mode %v", ca["Type"], ca["UsageMode"])
	}
	r = post(t, env.URL, "ACMPrivateCA.ListTags", `{"CertificateAuthorityArn":"`+created.CertificateAuthorityArn+`","maxResults":-1}`)
	if r.status != 200 || r.body != `{"Tags":[{"Key":"k"}]}` {
		t.Errorf("tags: %d %s", r.status, r.body)
	}
}

func TestProtocolLimits(t *testing.T) {
	env := testenv.Start(t)
	r := post(t, env.URL, "ACMPrivateCA.ImportCertificateAuthorityCertificate", `{"Certificate":"`+strings.Repeat("A", awsjson.DefaultMaxBodyBytes)+`"}`)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %s", r.status, r.errorType)
	}
	req, _ := http.NewRequest(http.MethodGet, env.URL, nil)
	testenv.Sign(t, req, nil)
	if r := do(t, req); r.status != 400 || r.errorType != "UnknownOperationException" {
		t.Errorf("GET /: %d %s", r.status, r.errorType)
	}
	res, err := http.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("healthz %d", res.StatusCode)
	}
}

// TestProtocolBounds: what a body costs the server before it is refused
// is bounded by its size, not multiplied by what decoding makes of it; and
// a message repeats little of it.
func TestProtocolBounds(t *testing.T) {
	env := testenv.Start(t)
	tags := func(n int) string { return strings.TrimSuffix(strings.Repeat(`{},`, n), ",") }
	tests := []struct {
		name, target, body string
		errorType          string
		message            string // the message must begin with it
	}{
		{"many violations, ten listed", "ACMPrivateCA.TagCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Tags":[` + tags(5000) + `]}`,
			"ValidationException", "5001 validation errors detected: "},
		{"too many values", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Unknown":[` + tags(20001) + `]}`,
			"SerializationException", "request body has more than 20000 objects"},
		{"commas in strings are not values", "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `","Unknown":"` + strings.Repeat(",[{", 30000) + `"}`,
			"ResourceNotFoundException", "Could not find Certificate Authority"},
		{"a long number", "ACMPrivateCA.ListCertificateAuthorities", `{"MaxResults":` + strings.Repeat("9", 100000) + `}`,
			"SerializationException", "member 'maxResults' must be a 32-bit integer, not '999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, env.URL, tt.target, tt.body)
			if r.errorType != tt.errorType || !strings.HasPrefix(r.message, tt.message) {
				t.Errorf("got %d %s %.300q; want %s %q...", r.status, r.errorType, r.message, tt.errorType, tt.message)
			}
			if len(r.message) > 4096 {
				t.Errorf("a message of %d bytes", len(r.message))
			}
			if n := strings.Count(r.message, "failed to satisfy constraint"); n > 10 {
				t.Errorf("the message lists %d violations", n)
			}
		})
	}
}

// TestDuplicateMembers: of a member given twice, the value checked, the
// last, is the one the operation gets, whole: nothing of the first, which
// was never checked, is merged into it.
func TestDuplicateMembers(t *testing.T) {
	env := testenv.Start(t)
	unchecked := `"CertificateAuthorityConfiguration":{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"` + strings.Repeat("A", 300) + `","Country":"ZZZZ"}},` +
		`"RevocationConfiguration":{"CrlConfiguration":{"Enabled":false,"ExpirationInDays":-30}},`
	checked := createCfg + `,"RevocationConfiguration":{"CrlConfiguration":{"Enabled":false}}`
	r := post(t, env.URL, "ACMPrivateCA.CreateCertificateAuthority", `{"CertificateAuthorityType":"ROOT",`+unchecked+checked+`}`)
	if r.status != http.StatusOK {
		t.Fatalf("CreateCertificateAuthority: %d %s %s", r.status, r.errorType, r.message)
	}
	var created struct{ CertificateAuthorityArn string }
	if err := json.Unmarshal([]byte(r.body), &created); err != nil {
		t.Fatal(err)
	}
	r = post(t, env.URL, "ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"`+created.CertificateAuthorityArn+`"}`)
	if r.status != http.StatusOK || strings.Contains(r.body, "ZZZZ") || strings.Contains(r.body, "AAAA") || strings.Contains(r.body, "ExpirationInDays") {
		t.Errorf("the CA has members of the unchecked copy: %d %s", r.status, r.body)
	}
}

// holdBody sends, from the address from, a request that names the
// default key, with headers that pass and a body of n bytes that it never
// sends, and returns a channel that gets the answer's status (0 if the
// connection closed without one).
func holdBody(t *testing.T, url, from string, n int64) <-chan int {
	t.Helper()
	answers := holdBodyAnswer(t, url, from, n)
	status := make(chan int, 1)
	go func() { status <- (<-answers).status }()
	return status
}

// answer is a response's status and body; status 0 for none.
type answer struct {
	status int
	body   string
}

// holdBodyAnswer is holdBody, with the response's body.
func holdBodyAnswer(t *testing.T, url, from string, n int64) <-chan answer {
	t.Helper()
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.Header.Set("Content-Type", awsjson.ContentType)
	req.Header.Set("X-Amz-Target", "ACMPrivateCA.ImportCertificateAuthorityCertificate")
	testenv.Sign(t, req, nil) // over no body: the signature would fail, once the body came
	req.ContentLength = n
	body, never := io.Pipe()
	t.Cleanup(func() { never.Close() })
	req.Body = body
	go req.Write(conn)
	answers := make(chan answer, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			answers <- answer{}
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers <- answer{res.StatusCode, string(body)}
	}()
	return answers
}

// wantRefused waits for n of the answers to be 503, which they must be
// at once.
func wantRefused(t *testing.T, answers []<-chan int, n int) {
	t.Helper()
	all := make(chan int, len(answers))
	for _, a := range answers {
		go func() { all <- <-a }()
	}
	refused := 0
	for timeout := time.After(5 * time.Second); refused < n; refused++ {
		var status int
		select {
		case status = <-all:
		case <-timeout:
		}
		if status == 0 {
			break
		}
		if status != http.StatusServiceUnavailable {
			t.Errorf("a request past its network's share: %d, want 503", status)
		}
	}
	if refused != n {
		t.Errorf("%d of the requests past the network's share were refused at once, want %d", refused, n)
	}
}

// TestBodyBudgetShares: requests that name an access key (whose id is no
// secret) and then hold their bodies back cannot take the body budget
// from other networks' requests, large or small, the key's own included,
// however many addresses of their network they come from: one network
// holds at most an eighth of it, and is refused more at once.
func TestBodyBudgetShares(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	// Where the requests that hold their bodies come from: four addresses
	// of a network other than the client's (127.0.0.1).
	elsewhere := func(i int) string { return fmt.Sprintf("127.0.1.%d", 2+i%4) }
	var large, small []<-chan int
	for i := range 8 { // the default budget, 32 MiB, eight times over
		large = append(large, holdBody(t, env.URL, elsewhere(i), 4<<20))
	}
	for i := range 40 { // the network's share of small bodies, 1 MiB, 2.5 times over
		small = append(small, holdBody(t, env.URL, elsewhere(i), 64<<10))
	}
	// What fits in the network's eighths waits; which is up to the
	// scheduler.
	wantRefused(t, large, 8-1)
	wantRefused(t, small, 40-16)

	// The key's own requests from its own network, and another key's,
	// small and large, get through meanwhile.
	if _, err := env.Client.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("a small request of the key, from its own network: %v", err)
	}
	other, _ := env.NewKey(t, "111122223333")
	if _, err := other.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("a small request of another key: %v", err)
	}
	_, err := other.ImportCertificateAuthorityCertificate(t.Context(), &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(validArn), Certificate: []byte("x"), CertificateChain: bytes.Repeat([]byte("x"), 1<<20)})
	if code, _ := testenv.ErrorCode(err); code == "ServiceUnavailableException" || code == "" {
		t.Errorf("a large request of another key: %v", err)
	}
}

// TestBodyMustKeepComing: a body that does not come is cut off, and its
// room in the budget given back, after the grace, whatever size it
// announced: a large one's pace counts the bytes it sent, not those it
// announced (4 MiB held its room 35 s without a byte).
func TestBodyMustKeepComing(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	for _, size := range []int64{100, 4 << 20} {
		trickle := holdBodyAnswer(t, env.URL, "127.0.0.1", size)
		select {
		case a := <-trickle:
			if a.status != http.StatusBadRequest && a.status != 0 {
				t.Errorf("a body of %d bytes that never came: %d", size, a.status)
			}
			// Not Go's error, which names the server's address and port
			// (behind a load balancer, its private address).
			if a.status != 0 && (strings.Contains(a.body, "127.0.0.1") || !strings.Contains(a.body, "did not arrive")) {
				t.Errorf("a body of %d bytes that never came: %s", size, a.body)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("a body of %d bytes that never came still holds its room after 20 s", size)
		}
	}
}

// slow is a service whose listing takes longer than a body's read
// deadline, unless its request is cancelled.
type slow struct{ openpca.Unimplemented }

func (slow) ListCertificateAuthorities(ctx context.Context, _ *openpca.ListCertificateAuthoritiesRequest) (*openpca.ListCertificateAuthoritiesResponse, error) {
	select {
	case <-time.After(5 * time.Second):
		return &openpca.ListCertificateAuthoritiesResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestSlowOperation: an operation that takes longer than its body's read
// deadline is answered, and so is the next request on its connection.
func TestSlowOperation(t *testing.T) {
	t.Parallel()
	h := &awsjson.Handler{
		Service:  slow{},
		Envelope: awsjson.NewEnvelope(awsjson.StaticAuthenticator{AccountID: "111122223333"}, slog.New(slog.DiscardHandler), nil, awsjson.Options{}),
		Logger:   slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := range 2 { // one connection, kept alive
		if r := post(t, srv.URL, "ACMPrivateCA.ListCertificateAuthorities", `{}`); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s %s", i, r.status, r.errorType, r.message)
		}
	}
}

// TestRequestTimeout: a request that outlasts its bound (a dependency
// that stopped answering) is answered ServiceUnavailableException, which
// clients retry, at the bound, not when the dependency gives up.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	h := &awsjson.Handler{
		Service: slow{},
		Envelope: awsjson.NewEnvelope(awsjson.StaticAuthenticator{AccountID: "111122223333"}, slog.New(slog.DiscardHandler), nil,
			awsjson.Options{RequestTimeout: 200 * time.Millisecond}),
		Logger: slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	r := post(t, srv.URL, "ACMPrivateCA.ListCertificateAuthorities", `{}`)
	if r.status != http.StatusServiceUnavailable || r.errorType != "ServiceUnavailableException" || !strings.Contains(r.message, "200ms") {
		t.Errorf("%d %s %s", r.status, r.errorType, r.message)
	}
	if waited := time.Since(start); waited >= 5*time.Second {
		t.Errorf("answered after %v, when the operation ended", waited)
	}
}

// deaf is a service whose operation does not heed its context, and then
// fails on its own.
type deaf struct{ openpca.Unimplemented }

func (deaf) ListCertificateAuthorities(context.Context, *openpca.ListCertificateAuthoritiesRequest) (*openpca.ListCertificateAuthoritiesResponse, error) {
	time.Sleep(500 * time.Millisecond)
	return nil, errors.New("database disk image is malformed")
}

// TestClientHungUp: a request that failed only because its client hung
// up is no internal failure: not logged at ERROR, not counted as a 500,
// and a client that only closed its sending half reads a 503, which it
// retries (not an empty 200, which the SDKs take for success). A request
// that failed on its own is an internal failure, its client gone or not.
func TestClientHungUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		service  openpca.PrivateCA
		halfOpen bool // the client closes only its sending half, and reads
		status   int  // of the outcome
		code     string
		answer   int // what the half-open client reads
		logged   bool
	}{
		{"hung up", slow{}, false, awsjson.StatusClientClosed, awsjson.CodeClientClosed, 0, false},
		{"half closed", slow{}, true, awsjson.StatusClientClosed, awsjson.CodeClientClosed, http.StatusServiceUnavailable, false},
		{"hung up, then failed on its own", deaf{}, false, http.StatusInternalServerError, openpca.CodeInternalFailure, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testenv.SyncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			outcomes := make(chan awsjson.Outcome, 1)
			srv := httptest.NewServer(&awsjson.Handler{
				Service: tc.service,
				Envelope: awsjson.NewEnvelope(awsjson.StaticAuthenticator{AccountID: "111122223333"}, logger,
					func(_ *http.Request, o awsjson.Outcome) { outcomes <- o }, awsjson.Options{}),
				Logger: logger,
			})
			defer srv.Close()
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", awsjson.ContentType)
			req.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
			testenv.Sign(t, req, []byte(`{}`))
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := req.Write(conn); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if tc.halfOpen {
				conn.(*net.TCPConn).CloseWrite()
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				res, err := http.ReadResponse(bufio.NewReader(conn), req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != tc.answer || res.Header.Get("X-Amzn-ErrorType") != openpca.CodeServiceUnavailable {
					t.Errorf("the half-open client read %d %q, want %d %s", res.StatusCode, res.Header.Get("X-Amzn-ErrorType"), tc.answer, openpca.CodeServiceUnavailable)
				}
			} else {
				conn.Close()
			}
			if o := <-outcomes; o.Status != tc.status || o.Code != tc.code {
				t.Errorf("the outcome: %d %s, want %d %s", o.Status, o.Code, tc.status, tc.code)
			}
			if logged := strings.Contains(logs.String(), "level=ERROR"); logged != tc.logged {
				t.Errorf("logged at ERROR: %v, want %v:\n%s", logged, tc.logged, logs.String())
			}
		})
	}
}

// failing is a service whose operations fail in ways clients must never
// see in detail.
type failing struct{ openpca.Unimplemented }

func (failing) ListCertificateAuthorities(context.Context, *openpca.ListCertificateAuthoritiesRequest) (*openpca.ListCertificateAuthoritiesResponse, error) {
	panic("secret panic text")
}

func (failing) DescribeCertificateAuthority(context.Context, *openpca.DescribeCertificateAuthorityRequest) (*openpca.DescribeCertificateAuthorityResponse, error) {
	return nil, errors.New("database is on fire at /var/secret")
}

func (failing) ListTags(context.Context, *openpca.ListTagsRequest) (*openpca.ListTagsResponse, error) {
	return nil, &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The key store cannot be reached; retry later.", Cause: errors.New("dial tcp 10.9.8.7:443: connection refused")}
}

// TestCausesAreLogged: an error's cause, a dependency's words, is in the
// server's log and not in the client's answer.
func TestCausesAreLogged(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewServer(&awsjson.Handler{Service: failing{}, Envelope: awsjson.NewEnvelope(awsjson.StaticAuthenticator{AccountID: "111122223333"}, logger, nil, awsjson.Options{}), Logger: logger})
	defer srv.Close()
	r := post(t, srv.URL, "ACMPrivateCA.ListTags", `{"CertificateAuthorityArn":"`+validArn+`"}`)
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "10.9.8.7") {
		t.Errorf("%d %s", r.status, r.body)
	}
	if !strings.Contains(logs.String(), "10.9.8.7") {
		t.Errorf("the cause was not logged: %s", logs.String())
	}
}

func TestInternalFailuresRevealNothing(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := &awsjson.Handler{
		Service:  failing{},
		Envelope: awsjson.NewEnvelope(awsjson.StaticAuthenticator{AccountID: "111122223333"}, logger, nil, awsjson.Options{}),
		Logger:   logger,
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tt := range []struct{ target, body string }{
		{"ACMPrivateCA.ListCertificateAuthorities", `{}`},
		{"ACMPrivateCA.DescribeCertificateAuthority", `{"CertificateAuthorityArn":"` + validArn + `"}`},
	} {
		r := post(t, srv.URL, tt.target, tt.body)
		if r.status != 500 || r.errorType != "InternalFailure" {
			t.Errorf("%s: %d %s", tt.target, r.status, r.errorType)
		}
		if strings.Contains(r.body, "secret") || strings.Contains(r.body, "goroutine") {
			t.Errorf("%s: response reveals internals: %s", tt.target, r.body)
		}
		if id := r.header.Get("x-amzn-RequestId"); !strings.Contains(r.message, id) {
			t.Errorf("%s: message %q lacks the request id %s", tt.target, r.message, id)
		}
	}
	if !strings.Contains(logs.String(), "secret panic text") || !strings.Contains(logs.String(), "database is on fire") {
		t.Errorf("internal failures were not logged: %s", logs.String())
	}
}

// TestAccountRequestRate: past its rate, an account's requests are
// ThrottlingException (400), which the SDK retries until they pass;
// another account's are not held back.
func TestAccountRequestRate(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.AccountRequestRate = 3 })
	other, _ := env.NewAccount(t, "444455556666")
	once := acmpca.New(env.Client.Options(), func(o *acmpca.Options) { o.RetryMaxAttempts = 1 })
	list := func(c *acmpca.Client) error {
		_, err := c.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{})
		return err
	}
	throttled := 0
	for range 10 {
		if err := list(once); err != nil {
			testenv.WantError(t, err, "ThrottlingException")
			throttled++
		}
	}
	if throttled == 0 || throttled == 10 {
		t.Errorf("%d of 10 requests at once throttled at 3 a second, want some", throttled)
	}
	if err := list(other); err != nil {
		t.Errorf("another account: %v", err)
	}
	// The SDK's standard retryer takes ThrottlingException for one to
	// retry. Its default backoff is random from nothing up, so three
	// attempts can all fall within one request's share of the rate; a
	// backoff of that share (a third of a second) and a little more makes
	// each retry find a token.
	backoffs := 0
	retrying := acmpca.New(env.Client.Options(), func(o *acmpca.Options) {
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
				backoffs++
				return 400 * time.Millisecond, nil
			})
		})
	})
	for range 6 {
		if err := list(retrying); err != nil {
			t.Errorf("with the SDK's retries: %v", err)
		}
	}
	if backoffs == 0 {
		t.Error("6 requests at once past 3 a second were never retried")
	}
}

// TestSourceIPThroughProxy: aws:SourceIp is the client's address that a
// trusted proxy forwards, and the connection's when the proxy is not
// trusted, whatever X-Forwarded-For says; aws:SecureTransport is true
// when a trusted proxy says it got the request over TLS.
func TestSourceIPThroughProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies string
		allowed bool
	}{
		{"no proxy trusted", "", false},
		{"the proxy trusted", "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxies, err := clientaddr.Parse(tc.proxies)
			if err != nil {
				t.Fatal(err)
			}
			env := testenv.Start(t, func(c *app.Config) { c.TrustedProxies = proxies })
			key, _ := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "from-the-office", Document: `{"Statement":{"Effect":"Allow",
				"Action":"acm-pca:ListCertificateAuthorities","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"},"Bool":{"aws:SecureTransport":"true"}}}}`})
			through := func(addr, proto string) error {
				c := acmpca.New(key.Options(), func(o *acmpca.Options) {
					o.HTTPClient = &http.Client{Transport: testenv.Forwarded(env.Transport(), addr, proto)}
				})
				_, err := c.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{})
				return err
			}
			if err := through("203.0.113.7", "https"); (err == nil) != tc.allowed {
				t.Errorf("a client at 203.0.113.7 through the proxy: %v, want allowed %v", err, tc.allowed)
			}
			if err := through("203.0.113.7", "http"); err == nil {
				t.Error("a client at 203.0.113.7 over plain HTTP through the proxy was allowed")
			}
			if err := through("198.51.100.9", "https"); err == nil {
				t.Error("a client at 198.51.100.9 through the proxy was allowed")
			}
		})
	}
}
