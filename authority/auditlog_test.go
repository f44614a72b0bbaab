package authority_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
)

// getLog sends a GET to the audit log's endpoints, signed with the default
// account's key unless unsigned.
func getLog(t *testing.T, env *testenv.Env, path string, q url.Values, signed bool) (int, string, []byte) {
	t.Helper()
	return testenv.Get(t, env.URL+path+"?"+q.Encode(), signed)
}

// TestAuditLogEndpoints: the checkpoint and proofs of a CA's log are the
// CA account's alone, and bad requests get AWS-shaped errors.
func TestAuditLogEndpoints(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Log Root")
	key := publicKey(t, env)
	ca := url.Values{"certificateAuthorityArn": {caARN}}

	status, _, body := getLog(t, env, server.PathCheckpoint, ca, true)
	if status != http.StatusOK {
		t.Fatalf("checkpoint: %d %s", status, body)
	}
	c, err := auditlog.OpenCheckpoint(body, key)
	if err != nil || c.Size != 3 || c.Origin != auditlog.Origin(caARN) {
		t.Fatalf("checkpoint %+v, %v; want the CSR, the root certificate's and its import's entries", c, err)
	}
	other, _ := env.NewAccount(t, "444455556666")
	out, err := other.CreateCertificateAuthority(t.Context(), &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Other"),
	})
	if err != nil {
		t.Fatal(err)
	}
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tt := range []struct {
		name   string
		path   string
		q      url.Values
		signed bool
		status int
		code   string
	}{
		{"unsigned", server.PathCheckpoint, ca, false, http.StatusForbidden, "MissingAuthenticationTokenException"},
		{"another account's CA", server.PathCheckpoint, q("certificateAuthorityArn", *out.CertificateAuthorityArn), true, http.StatusBadRequest, "ResourceNotFoundException"},
		{"no CA", server.PathCheckpoint, nil, true, http.StatusBadRequest, "ValidationException"},
		{"not an ARN", server.PathCheckpoint, q("certificateAuthorityArn", "nope"), true, http.StatusBadRequest, "InvalidArnException"},
		{"current, not true", server.PathCheckpoint, q("certificateAuthorityArn", caARN, "current", "yes"), true, http.StatusBadRequest, "ValidationException"},
		{"consistency from 0", server.PathConsistency, q("certificateAuthorityArn", caARN, "from", "0", "to", "2"), true, http.StatusBadRequest, "InvalidRequestException"},
		{"consistency past the log", server.PathConsistency, q("certificateAuthorityArn", caARN, "from", "1", "to", "4"), true, http.StatusBadRequest, "InvalidRequestException"},
		{"consistency without to", server.PathConsistency, q("certificateAuthorityArn", caARN, "from", "1"), true, http.StatusBadRequest, "ValidationException"},
		{"inclusion of an unknown serial", server.PathInclusion, q("certificateAuthorityArn", caARN, "serial", "0abc"), true, http.StatusBadRequest, "ResourceNotFoundException"},
		{"inclusion of a bad serial", server.PathInclusion, q("certificateAuthorityArn", caARN, "serial", "xyz"), true, http.StatusBadRequest, "InvalidRequestException"},
	} {
		status, code, body := getLog(t, env, tt.path, tt.q, tt.signed)
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(body, &e)
		if status != tt.status || code != tt.code || e.Type != tt.code || e.Message == "" {
			t.Errorf("%s: %d %s %s, want %d %s", tt.name, status, code, body, tt.status, tt.code)
		}
	}

	status, _, body = getLog(t, env, server.PathConsistency, q("certificateAuthorityArn", caARN, "from", "1", "to", "2"), true)
	if status != http.StatusOK || !strings.Contains(string(body), `"proof":[`) {
		t.Errorf("consistency proof: %d %s", status, body)
	}
}
