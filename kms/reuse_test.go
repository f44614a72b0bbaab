package kms_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/pki"
)

// TestCreateKeyAnsweredWithAnotherKey: a KMS that answers a CreateKey with
// a key made before, another CA's (broken, or hostile), has the CA's
// creation fail, and the other key left alone. Held by two CAs, the key
// was destroyed with the first of them purged, under the other still in
// service. A purge of a CA whose row names another CA's key leaves it too.
func TestCreateKeyAnsweredWithAnotherKey(t *testing.T) {
	k := testenv.StartKMS(t)
	k.Credentials(t)
	honest, err := kms.Open(t.Context(), k.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	first := &openpca.CA{ID: "11111111-1111-1111-1111-111111111111", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-1111-1111-1111-111111111111",
		Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1, SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa}}
	handle, key, err := honest.GenerateKey(t.Context(), first, openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	firstARN := string(handle)
	ski, err := pki.SubjectKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	// The KMS that answers every CreateKey with the first key.
	target, _ := url.Parse(k.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.Header.Get("X-Amz-Target") != "TrentService.CreateKey" || res.StatusCode != http.StatusOK {
			return nil
		}
		var out map[string]map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			return err
		}
		res.Body.Close()
		out["KeyMetadata"]["Arn"], out["KeyMetadata"]["KeyId"] = firstARN, firstARN[strings.LastIndex(firstARN, "/")+1:]
		b, _ := json.Marshal(out)
		res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		res.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	lying, err := kms.Open(t.Context(), srv.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	second := &openpca.CA{ID: "22222222-2222-2222-2222-222222222222", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/22222222-2222-2222-2222-222222222222",
		Config: first.Config}
	if h, _, err := lying.GenerateKey(t.Context(), second, openpca.KeyAlgorithmEcPrime256v1); h != nil || err == nil || !strings.Contains(err.Error(), "it is left alone") {
		t.Errorf("a CreateKey answered with another CA's key: handle %s, %v", h, err)
	}
	// A row of the second CA that names the first's key, as the server
	// stored before: its purge leaves the key.
	second.KeyHandle, second.KeyID = handle, hex.EncodeToString(ski)
	if err := honest.DestroyKey(t.Context(), second); err == nil {
		t.Error("the purge of a CA whose row names another CA's key destroyed it")
	}
	out, err := k.Client().DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: &firstARN})
	if err != nil || out.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Errorf("the first CA's key: %v, %v", out, err)
	}
}

// TestNewKeyTagsShownLate: a new key whose tags KMS does not show at
// first (it is eventually consistent: NotFoundException for a key just
// made) is asked about again, and the CA gets it; it was refused, and its
// key left made and unrecorded.
func TestNewKeyTagsShownLate(t *testing.T) {
	k := testenv.StartKMS(t)
	k.Credentials(t)
	target, _ := url.Parse(k.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService.ListResourceTags" && refused.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"NotFoundException","message":"not yet"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s, err := kms.Open(t.Context(), srv.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	ca := &openpca.CA{ID: "33333333-3333-3333-3333-333333333333", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/33333333-3333-3333-3333-333333333333",
		Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1, SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa}}
	if handle, key, err := s.GenerateKey(t.Context(), ca, openpca.KeyAlgorithmEcPrime256v1); err != nil || handle == nil || key == nil {
		t.Errorf("a key whose tags showed late: %s, %v", handle, err)
	}
	if refused.Load() < 2 {
		t.Errorf("the tags were read %d times", refused.Load())
	}
}
