package awsjson_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/internal/testenv"
)

// FuzzAPI sends whatever the fuzzer makes, as the body of any operation,
// to a running server on a real SQLite store: decoding, validation against
// the model and the operations themselves. Every answer is 200 with a JSON
// body (or none), or an AWS error with its code in __type and the
// X-Amzn-ErrorType header; never an internal failure, and never a hang.
func FuzzAPI(f *testing.F) {
	env := testenv.Start(f, func(c *app.Config) { c.InsecureNoAuth = true })
	caARN, _ := env.NewActiveRoot(f, "Fuzz Root")
	csr := testenv.NewLeaf(f, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM // a blob: base64 in JSON
	ops := awsjson.OperationNames()
	seeds := map[string]any{
		"CreateCertificateAuthority": map[string]any{"CertificateAuthorityType": "ROOT", "CertificateAuthorityConfiguration": map[string]any{
			"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": map[string]any{"CommonName": "x"}},
			"Tags": []any{map[string]any{"Key": "k", "Value": "v"}}},
		"IssueCertificate": map[string]any{"CertificateAuthorityArn": caARN, "Csr": csr, "SigningAlgorithm": "SHA256WITHECDSA",
			"Validity": map[string]any{"Type": "DAYS", "Value": 1}, "ApiPassthrough": map[string]any{"Extensions": map[string]any{
				"SubjectAlternativeNames": []any{map[string]any{"DnsName": "a.example"}}}}},
		"ListCertificateAuthorities": map[string]any{"MaxResults": 1, "ResourceOwner": "SELF"},
		"UpdateCertificateAuthority": map[string]any{"CertificateAuthorityArn": caARN, "RevocationConfiguration": map[string]any{
			"OcspConfiguration": map[string]any{"Enabled": true}}},
		"RevokeCertificate":       map[string]any{"CertificateAuthorityArn": caARN, "CertificateSerial": "01", "RevocationReason": "UNSPECIFIED"},
		"TagCertificateAuthority": map[string]any{"CertificateAuthorityArn": caARN, "Tags": []any{map[string]any{"Key": "k"}}},
	}
	for i, op := range ops {
		body := `{"CertificateAuthorityArn":"` + caARN + `"}`
		if s, ok := seeds[op]; ok {
			b, err := json.Marshal(s)
			if err != nil {
				f.Fatal(err)
			}
			body = string(b)
		}
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(0), []byte(`{"a":[[[[[[[[[[{}]]]]]]]]]]}`))
	client := &http.Client{Timeout: 30 * time.Second, Transport: env.Transport()}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		op := ops[int(which)%len(ops)]
		req, _ := http.NewRequest(http.MethodPost, env.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", openpca.TargetPrefix+"."+op)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == http.StatusOK {
			if len(out) > 0 && !json.Valid(out) {
				t.Fatalf("%s answered 200 with a body that is not JSON: %q", op, out)
			}
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Type == "" || e.Type != res.Header.Get("X-Amzn-ErrorType") {
			t.Fatalf("%s answered %d with %q", op, res.StatusCode, out)
		}
		if res.StatusCode >= 500 || strings.Contains(e.Message, "internal error") {
			t.Fatalf("%s for %q: %d %s: %s", op, body, res.StatusCode, e.Type, e.Message)
		}
	})
}
