package authority_test

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/uuid"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/pki"
)

// hardware are the key stores in hardware a test runs on, each set up
// for the test: a SoftHSM2 token, and local-kms.
func hardware(t *testing.T) map[string]func(t *testing.T) testenv.Option {
	return map[string]func(t *testing.T) testenv.Option{
		"pkcs11": func(t *testing.T) testenv.Option { return testenv.NewSoftHSM(t).Use() },
		"kms":    func(t *testing.T) testenv.Option { return testenv.StartKMS(t).Use(t) },
	}
}

// TestKeyAlgorithmsInHardware makes a CA of every key algorithm the
// hardware stores hold: each key is made in the store and signs the CA's
// CSR there. An algorithm a store does not hold is InvalidArgsException.
func TestKeyAlgorithmsInHardware(t *testing.T) {
	for name, use := range hardware(t) {
		t.Run(name, func(t *testing.T) {
			env := testenv.Start(t, use(t))
			for _, alg := range []types.KeyAlgorithm{types.KeyAlgorithmEcPrime256v1, types.KeyAlgorithmEcSecp384r1, types.KeyAlgorithmEcSecp521r1,
				types.KeyAlgorithmRsa2048, types.KeyAlgorithmRsa3072, types.KeyAlgorithmRsa4096} {
				cfg := testenv.Config(alg, string(alg))
				// KMS signs with the hash of an EC key's size only.
				cfg.SigningAlgorithm = map[types.KeyAlgorithm]types.SigningAlgorithm{types.KeyAlgorithmEcSecp384r1: types.SigningAlgorithmSha384withecdsa,
					types.KeyAlgorithmEcSecp521r1: types.SigningAlgorithmSha512withecdsa}[alg]
				if cfg.SigningAlgorithm == "" {
					cfg.SigningAlgorithm = testenv.Config(alg, "").SigningAlgorithm
				}
				out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
					CertificateAuthorityType: types.CertificateAuthorityTypeRoot, CertificateAuthorityConfiguration: cfg})
				if err != nil {
					t.Fatalf("%s: %v", alg, err)
				}
				arn := *out.CertificateAuthorityArn
				csr := env.CSR(t, arn)
				if err := csr.CheckSignature(); err != nil {
					t.Errorf("%s: the CSR made in the store does not verify: %v", alg, err)
				}
				if got := pki.KeyAlgorithmOf(csr.PublicKey); string(got) != string(alg) {
					t.Errorf("%s: the CSR's key is %s", alg, got)
				}
				d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
				if err != nil {
					t.Fatal(err)
				}
				if d.CertificateAuthority.KeyStorageSecurityStandard != "" {
					t.Errorf("%s: a store declared to meet no standard reports %s", alg, d.CertificateAuthority.KeyStorageSecurityStandard)
				}
			}
			_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
				CertificateAuthorityConfiguration: &types.CertificateAuthorityConfiguration{KeyAlgorithm: types.KeyAlgorithmSm2,
					SigningAlgorithm: types.SigningAlgorithmSm3withsm2, Subject: &types.ASN1Subject{CommonName: aws.String("SM2")}}})
			testenv.WantError(t, err, "InvalidArgsException")
			// ML-DSA: neither SoftHSM2 nor local-kms makes such keys.
			_, err = env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmMlDsa65, "ML-DSA")})
			testenv.WantError(t, err, "InvalidArgsException")
			if name == "kms" { // a hash KMS does not sign with for the curve
				_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
					CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcSecp384r1, "P-384 with SHA-256")})
				testenv.WantError(t, err, "InvalidArgsException")
			}
			// Refused before a key was made: no record of one is left.
			var recorded int
			if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&recorded); err != nil || recorded != 0 {
				t.Errorf("records of keys made, with every CA stored or refused: %d, %v", recorded, err)
			}
			if m := metrics(t, env.URL); !strings.Contains(m, `openpca_certificate_authorities{key_store="`+name+`",status="PENDING_CERTIFICATE"} 6`) {
				t.Errorf("the metrics do not count 6 CAs in the %s store", name)
			}
		})
	}
}

// keysUnavailable reads openpca_ca_keys_unavailable_total of store.
func keysUnavailable(t *testing.T, env *testenv.Env, store string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^openpca_ca_keys_unavailable_total\{key_store="` + store + `"\} (\d+)$`).FindStringSubmatch(metrics(t, env.URL))
	if m == nil {
		t.Fatalf("no openpca_ca_keys_unavailable_total of the %s store", store)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func metrics(t *testing.T, url string) string {
	t.Helper()
	b, err := httpGet(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLifecycleInHardware runs a CA whose key is in hardware through its
// life: self-signed activation, issuance, revocation, a CRL, OCSP answers
// and an audit report that verifies, every signature made in the store.
func TestLifecycleInHardware(t *testing.T) {
	for name, use := range hardware(t) {
		t.Run(name, func(t *testing.T) {
			env := testenv.Start(t, use(t))
			makeLocalBucket(t, env, "hardware")
			caARN, root := revocationCA(t, env, &types.RevocationConfiguration{
				CrlConfiguration:  &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("hardware")},
				OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
			if err := root.CheckSignatureFrom(root); err != nil {
				t.Fatalf("the self-signed certificate: %v", err)
			}
			leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "hw.example"}})
			cert, _ := env.Certificate(t, caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf.CSRPEM}))
			if err := cert.CheckSignatureFrom(root); err != nil {
				t.Fatalf("the issued certificate: %v", err)
			}
			if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
				CertificateSerial: aws.String(cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(crlListing(t, env, "hardware", caARN, cert.SerialNumber))
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(root); err != nil {
				t.Errorf("the CRL's signature: %v", err)
			}
			req, err := ocsp.CreateRequest(cert, root, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := post(env.URL+"/ocsp", req)
			if resp, perr := ocsp.ParseResponseForCert(body, cert, root); err != nil || perr != nil || resp.Status != ocsp.Revoked {
				t.Errorf("OCSP: %+v, %v, %v", resp, err, perr)
			}
			reportBucket := makeLocalBucket(t, env, "hardware-reports")
			out, err := createReport(env, caARN, "hardware-reports", types.AuditReportResponseFormatJson)
			if err != nil {
				t.Fatal(err)
			}
			if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
				t.Fatal(err)
			}
			report, _ := os.ReadFile(filepath.Join(reportBucket, *out.S3Key))
			proof, _ := os.ReadFile(filepath.Join(reportBucket, *out.S3Key+auditlog.ProofSuffix))
			if v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), publicKey(t, env)); len(v.Problems) > 0 || v.Rows != 3 { // the leaf, the CA's own, its OCSP responder's
				t.Errorf("the audit report: %d rows, %v", v.Rows, v.Problems)
			}
		})
	}
}

// TestTokenKeysStayInside checks what the token says of a CA's key (it
// cannot be extracted, and is sensitive), and that the database holds no
// key material for it, only the key's id.
func TestTokenKeysStayInside(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	env := testenv.Start(t, hsm.Use())
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Inside")
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmRsa2048, "Inside RSA"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot})
	if err != nil {
		t.Fatal(err)
	}
	rsaARN := *out.CertificateAuthorityArn
	rsaID := rsaARN[strings.LastIndex(rsaARN, "/")+1:]
	env.Stop(t)
	var store string
	var handle []byte
	if err := env.DB(t).QueryRow(`SELECT key_store, key_handle FROM certificate_authorities WHERE arn = ?`, arn).Scan(&store, &handle); err != nil {
		t.Fatal(err)
	}
	id := arn[strings.LastIndex(arn, "/")+1:]
	if store != "pkcs11" || string(handle) != id {
		t.Errorf("the CA records key store %q and handle %q, want pkcs11 and its id", store, handle)
	}
	token, err := pkcs11.Open(hsm.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer token.Close()
	// The key signs, and does nothing else a holder of the PIN could use
	// it for; an RSA key, which crypto11 would let decrypt, too.
	want := map[string]bool{"extractable": false, "sensitive": true, "private": true, "sign": true, "decrypt": false, "unwrap": false, "derive": false, "modifiable": false}
	for _, ca := range []*openpca.CA{caRecord(id, arn), caRecord(rsaID, rsaARN)} {
		got, err := token.KeyAttributes(ca)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("the attributes of %s's key: %v (%v); want %v", ca.ARN, got, err, want)
		}
	}
	db, err := os.ReadFile(filepath.Join(env.Config.DataDir, "openpca.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A PKCS #8 private key starts with its version and an algorithm
	// identifier: no such structure is in the database file.
	for _, prefix := range [][]byte{{0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}} {
		if bytes.Contains(db, prefix) {
			t.Error("the database holds what looks like a plain EC private key")
		}
	}
	env.Restart(t)
	// The key keeps working after a restart: the CA activates.
	env.ActivateRoot(t, arn)
}

// caRecord is as much of a CA's record as a key store needs to find its
// key in a token.
func caRecord(id, arn string) *openpca.CA {
	return &openpca.CA{ID: id, ARN: arn, KeyStore: pkcs11.Name, KeyHandle: []byte(id)}
}

// TestKMSKeyDisabledFailsClosed disables the CA's key in KMS: issuance
// fails with a clear InvalidStateException and leaves no certificate,
// and works again once the key is enabled.
func TestKMSKeyDisabledFailsClosed(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t))
	caARN, _ := env.NewActiveRoot(t, "Disabled in KMS")
	keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("KMS keys: %v, %v", keys, err)
	}
	keyID := keys.Keys[0].KeyArn
	issues := func() int { return count(logKinds(t, env, caARN), openpca.KeyUseIssue) }
	before := issues()
	if _, err := k.Client().DisableKey(ctx, &awskms.DisableKeyInput{KeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "refused.example"}}).CSRPEM
	_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidStateException")
	if err == nil || !strings.Contains(err.Error(), "KMS key") {
		t.Errorf("the error does not say what failed: %v", err)
	}
	if n := issues(); n != before {
		t.Errorf("%d issuances recorded while the key was disabled", n-before)
	}
	if _, err := k.Client().EnableKey(ctx, &awskms.EnableKeyInput{KeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf})
}

// TestCreateRetryMakesNoKey: retrying CreateCertificateAuthority with
// its idempotency token returns the CA without making a key in KMS (and
// scheduling it for deletion) each time; nor does a request over the
// account's limit of CAs.
func TestCreateRetryMakesNoKey(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.MaxCAsPerAccount = 1 })
	create := func(token string) (string, error) {
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Retried"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot, IdempotencyToken: aws.String(token)})
		if err != nil {
			return "", err
		}
		return *out.CertificateAuthorityArn, nil
	}
	first, err := create("retried")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if again, err := create("retried"); err != nil || again != first {
			t.Fatalf("the retry made %s (%v), want %s", again, err, first)
		}
	}
	for range 3 {
		_, err := create("over the limit")
		testenv.WantError(t, err, "LimitExceededException")
	}
	if keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{}); err != nil || len(keys.Keys) != 1 {
		t.Errorf("KMS holds %d keys (%v), want the CA's alone", len(keys.Keys), err)
	}
}

// kmsFaults is a proxy in front of local-kms that makes KMS's answers to
// the operations it names fail as a network would: a 503, after the
// operation reached KMS (answerLost) or without it; or, as KMS's own
// answer (a 400 with the exception's __type), the exceptions answer gave
// for an operation's next calls, in turn. While wrongSignatures is set,
// each signature KMS makes has a bit flipped on its way, as a faulty KMS
// or HSM would return it.
type kmsFaults struct {
	mu              sync.Mutex
	answerLost      map[string]bool
	refused         map[string]bool
	exceptions      map[string][]string
	reached         []string // the operations that reached KMS
	wrongSignatures atomic.Bool
	held            map[string]chan struct{} // operations held until their channel closes
}

func startKMSFaults(t *testing.T, k *testenv.KMS) (*kmsFaults, string) {
	f := &kmsFaults{answerLost: map[string]bool{}, refused: map[string]bool{}, exceptions: map[string][]string{}, held: map[string]chan struct{}{}}
	target, _ := url.Parse(k.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		f.mu.Lock()
		refused, lost := f.refused[op], f.answerLost[op]
		var exception string
		if q := f.exceptions[op]; len(q) > 0 {
			exception, f.exceptions[op] = q[0], q[1:]
		} else if !refused {
			f.reached = append(f.reached, op)
		}
		held := f.held[op]
		f.mu.Unlock()
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case exception != "":
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"` + exception + `","message":"answered by the test"}`))
		case refused:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case lost:
			proxy.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case op == "Sign" && f.wrongSignatures.Load():
			answer := httptest.NewRecorder()
			proxy.ServeHTTP(answer, r)
			var out struct{ KeyId, Signature, SigningAlgorithm string }
			if err := json.Unmarshal(answer.Body.Bytes(), &out); err != nil || answer.Code != http.StatusOK {
				t.Errorf("KMS's answer to Sign: %d %s", answer.Code, answer.Body)
				return
			}
			sig, _ := base64.StdEncoding.DecodeString(out.Signature)
			sig[len(sig)-3] ^= 1
			out.Signature = base64.StdEncoding.EncodeToString(sig)
			w.Header().Set("Content-Type", answer.Header().Get("Content-Type"))
			json.NewEncoder(w).Encode(out)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// answer has KMS answer op's next calls with exceptions, in turn.
func (f *kmsFaults) answer(op string, exceptions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exceptions[op] = append(f.exceptions[op], exceptions...)
}

func (f *kmsFaults) set(answerLost, refused []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answerLost, f.refused, f.reached = map[string]bool{}, map[string]bool{}, nil
	for _, op := range answerLost {
		f.answerLost[op] = true
	}
	for _, op := range refused {
		f.refused[op] = true
	}
}

// TestKMSKeyMadeWithoutAnswer: a key KMS made for a CA that was not
// created is never left enabled and unknown. A CreateKey whose answer was
// lost is not sent again (KMS would make a second key), but one KMS
// throttled is; a key made whose public key could not be read, nor its
// deletion scheduled, is recorded, and a purge destroys it once KMS
// answers.
func TestKMSKeyMadeWithoutAnswer(t *testing.T) {
	k := testenv.StartKMS(t)
	faults, proxied := startKMSFaults(t, k)
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.KMSEndpoint = proxied })
	keys := func() map[string]kmstypes.KeyState {
		out, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]kmstypes.KeyState{}
		for _, key := range out.Keys {
			d, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: key.KeyArn})
			if err != nil {
				t.Fatal(err)
			}
			states[*key.KeyArn] = d.KeyMetadata.KeyState
		}
		return states
	}
	create := func() error {
		_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "No answer"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot})
		return err
	}

	faults.set([]string{"CreateKey"}, nil)
	if err := create(); err == nil {
		t.Fatal("a CA created when CreateKey had no answer")
	}
	if n := strings.Count(strings.Join(faults.reached, " "), "CreateKey"); n != 1 {
		t.Errorf("CreateKey reached KMS %d times for one CA, each a key; want once", n)
	}
	if n := len(keys()); n != 1 {
		t.Errorf("KMS holds %d keys after a CreateKey without answer, want the one it made", n)
	}

	faults.set(nil, nil)
	faults.answer("CreateKey", "ThrottlingException")
	if err := create(); err != nil {
		t.Errorf("a CA whose CreateKey KMS throttled once: %v, want it created on the retry", err)
	}

	faults.set(nil, []string{"GetPublicKey", "ScheduleKeyDeletion"})
	before := keys()
	if err := create(); err == nil {
		t.Fatal("a CA created when KMS answered CreateKey alone")
	}
	var made string
	for arn := range keys() {
		if _, ok := before[arn]; !ok {
			made = arn
		}
	}
	var recorded int
	if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions WHERE key_handle = ?`, []byte(made)).Scan(&recorded); err != nil || recorded != 1 {
		t.Fatalf("records of the key made, %s: %d, %v; want 1", made, recorded, err)
	}
	// With the audit key's word that it may be destroyed once the grace
	// has passed, without its CA, as the record names it.
	var rec openpca.CA
	var madeAt int64
	if err := env.DB(t).QueryRow(`SELECT ca_id, arn, key_store, key_handle, key_id, made_at, statement FROM key_destructions WHERE key_handle = ?`, []byte(made)).
		Scan(&rec.ID, &rec.ARN, &rec.KeyStore, &rec.KeyHandle, &rec.KeyID, &madeAt, &rec.Destruction); err != nil {
		t.Fatal(err)
	}
	from := time.UnixMicro(madeAt).Add(openpca.KeyMadeGrace)
	if d, err := auditlog.OpenKeyDestruction(rec.Destruction, publicKey(t, env)); err != nil || d.Reason != auditlog.DestructionNeverStored || !d.From.Equal(from) ||
		!d.Until.Equal(from.Add(authority.DestructionWindow)) {
		t.Errorf("the word that the key made may be destroyed: %+v, %v; want one of a CA never stored, from %v for %v", d, err, from, authority.DestructionWindow)
	}
	if err := authority.CheckDestruction(&rec, publicKey(t, env), from); err != nil {
		t.Errorf("the word that the key made may be destroyed, at its time: %v", err)
	}
	faults.set(nil, nil)
	env.Clock.Advance(openpca.KeyMadeGrace + time.Minute)
	env.Restart(t) // the purge runs at start
	for deadline := time.Now().Add(15 * time.Second); keys()[made] != kmstypes.KeyStatePendingDeletion; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the key made without a CA, past the grace: %s", keys()[made])
		}
	}
}

// hold has KMS hold op's calls, as a KMS that hangs, until the returned
// function is called.
func (f *kmsFaults) hold(op string) (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	held := make(chan struct{})
	f.held[op] = held
	return sync.OnceFunc(func() {
		f.mu.Lock()
		delete(f.held, op)
		f.mu.Unlock()
		close(held)
	})
}

// TestKMSCreateKeyHung: a KMS that hangs as it makes a CA's key leaves
// the request a ServiceUnavailableException at its deadline, not a wait
// past it; the key KMS makes once it answers is no CA's: it is recorded,
// and destroyed at once, and the account's turn to create CAs is given
// back only then (an account has two at once), not while KMS still
// makes keys for creations given up on.
func TestKMSCreateKeyHung(t *testing.T) {
	k := testenv.StartKMS(t)
	faults, proxied := startKMSFaults(t, k)
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.KMSEndpoint = proxied })
	releaseCreate, releaseDelete := faults.hold("CreateKey"), faults.hold("ScheduleKeyDeletion")
	defer releaseCreate()
	defer releaseDelete()
	caller := openpca.WithCaller(t.Context(), openpca.Caller{AccountID: env.Config.AccountID, Principal: testenv.AccessKeyID})
	create := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(openpca.WithOperation(caller, "CreateCertificateAuthority"), d)
		defer cancel()
		_, err := env.Service().CreateCertificateAuthority(ctx, &openpca.CreateCertificateAuthorityRequest{CertificateAuthorityType: openpca.CertificateAuthorityTypeRoot,
			CertificateAuthorityConfiguration: &openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1,
				SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa, Subject: &openpca.ASN1Subject{CommonName: "Made While KMS Hangs"}}})
		return err
	}
	answered := make(chan error, 2)
	for range 2 {
		go func() { answered <- create(2 * time.Second) }()
	}
	// Within 15 s: the answers are due at the requests' 2 s deadline,
	// and each call to KMS may take 20 s.
	for range 2 {
		select {
		case err := <-answered:
			if openpca.ErrorCode(err) != openpca.CodeServiceUnavailable {
				t.Errorf("a CA's creation while KMS hangs: %v; want ServiceUnavailableException", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a CA's creation still waits for KMS 13 s past its deadline")
		}
	}
	// KMS makes the keys now: each is recorded before its destruction,
	// which waits, and the account's turns with it.
	releaseCreate()
	records := func() int {
		var n int
		if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(15 * time.Second); records() != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records of the keys KMS made once their requests gave up; want 2", records())
		}
	}
	if err := create(time.Second); err == nil {
		t.Errorf("a CA created while the account's two turns wait for the destruction of keys made for creations given up on: %v", err)
	}
	releaseDelete()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, key := range out.Keys {
			d, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: key.KeyArn})
			if err != nil {
				t.Fatal(err)
			}
			if d.KeyMetadata.KeyState == kmstypes.KeyStatePendingDeletion {
				pending++
			}
		}
		if pending == 2 && len(out.Keys) == 2 && records() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("KMS holds %d keys, %d pending deletion, with %d records of keys to destroy; want the 2 made once their requests gave up, pending deletion, and none", len(out.Keys), pending, records())
		}
	}
	// The turns are the account's again.
	if err := create(time.Minute); err != nil {
		t.Errorf("a CA's creation once KMS answers: %v", err)
	}
}

// TestKeyStoreOutage takes the key store away while clients issue
// certificates, and brings it back: while it is away requests fail with
// ServiceUnavailableException, every certificate a client got is recorded
// and fetched, no failure left one, and issuance resumes.
func TestKeyStoreOutage(t *testing.T) {
	outages := map[string]func(t *testing.T) (testenv.Option, func(), func()){
		"kms": func(t *testing.T) (testenv.Option, func(), func()) {
			k := testenv.StartKMS(t)
			return k.Use(t), func() { k.Stop(t) }, func() { k.Start(t) }
		},
		"pkcs11": func(t *testing.T) (testenv.Option, func(), func()) {
			h := testenv.NewSoftHSM(t)
			away := h.TokenDir + ".away"
			return h.Use(), func() {
					if err := os.Rename(h.TokenDir, away); err != nil {
						t.Fatal(err)
					}
				}, func() {
					if err := os.Rename(away, h.TokenDir); err != nil {
						t.Fatal(err)
					}
				}
		},
	}
	for name, setup := range outages {
		t.Run(name, func(t *testing.T) {
			use, kill, revive := setup(t)
			env := testenv.Start(t, use)
			caARN, _ := env.NewActiveRoot(t, "Outage")
			leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "load.example"}}).CSRPEM
			var mu sync.Mutex
			var issued []string
			failures, successes := 0, 0
			var lastErr error
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						out, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf,
							SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
						mu.Lock()
						if err == nil {
							issued = append(issued, *out.CertificateArn)
							successes++
						} else {
							if code, status := testenv.ErrorCode(err); code != "ServiceUnavailableException" || status != 503 {
								t.Errorf("while the store was away: %v", err)
							}
							failures++
							lastErr = err
						}
						mu.Unlock()
					}
				})
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					mu.Lock()
					ok := cond()
					mu.Unlock()
					if ok {
						return
					}
					if time.Now().After(deadline) {
						close(stop)
						wg.Wait()
						t.Fatalf("waiting for %s: %d successes, %d failures, the last %v", what, successes, failures, lastErr)
					}
				}
			}
			waitFor("issuance", func() bool { return successes >= 20 })
			if n := keysUnavailable(t, env, name); n != 0 {
				t.Errorf("%d CA keys counted unavailable before the store went away", n)
			}
			kill()
			waitFor("failures", func() bool { return failures >= 20 })
			// The CA's key, open since before, failed to sign: the
			// operator's alarm.
			if n := keysUnavailable(t, env, name); n == 0 {
				t.Error("no CA key counted unavailable while the store was away")
			}
			revive()
			resumed := 0
			waitFor("issuance to resume", func() bool {
				if resumed == 0 {
					resumed = successes
				}
				return successes >= resumed+20
			})
			close(stop)
			wg.Wait()
			for _, arn := range issued {
				if _, err := env.Client.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: aws.String(arn)}); err != nil {
					t.Fatalf("a certificate a client got is not there: %v", err)
				}
			}
			// The root's own certificate is the first issuance.
			if n := count(logKinds(t, env, caARN), openpca.KeyUseIssue); n != len(issued)+1 {
				t.Errorf("%d issuances recorded besides the root's own, %d certificates returned", n-1, len(issued))
			}
			t.Logf("%d certificates issued, %d requests refused while the %s store was away", len(issued), failures, name)
		})
	}
}

// TestMissingTokenKey: a CA whose key was deleted from the token fails
// (ServiceUnavailableException), however often it is asked, and the other
// CAs of the token keep signing meanwhile: logging in to the token again,
// to look for the missing key, does not fail their signatures.
func TestMissingTokenKey(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	env := testenv.Start(t, h.Use())
	kept, _ := env.NewActiveRoot(t, "Kept")
	lost, _ := env.NewActiveRoot(t, "Lost")
	token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { token.Close() })
	key, err := token.FindKeyPair([]byte(lost[strings.LastIndex(lost, "/")+1:]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Delete(); err != nil {
		t.Fatal(err)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kept.example"}}).CSRPEM
	issue := func(ca string) error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	for i := range 4 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // past the token's one login a second
		}
		testenv.WantError(t, issue(lost), "ServiceUnavailableException")
		if err := issue(kept); err != nil {
			t.Errorf("round %d: the CA whose key is in the token: %v", i, err)
		}
	}
}

// TestSwappedTokenKey: a key put in the token under a CA's id, beside its
// own or in its place, never signs for the CA, even once the CA's signer
// is open: a signature that fails finds the key again, and takes only the
// CA's own, alone.
func TestSwappedTokenKey(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	env := testenv.Start(t, h.Use())
	ca, _ := env.NewActiveRoot(t, "Swapped")
	id := []byte(ca[strings.LastIndex(ca, "/")+1:])
	token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { token.Close() })
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "swapped.example"}}).CSRPEM
	issue := func() error {
		_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		return err
	}
	if err := issue(); err != nil { // the CA's signer is now open
		t.Fatal(err)
	}
	// Another key beside the CA's, under its id: neither signs, since
	// which private key goes with the CA's public key cannot be told.
	beside, err := token.GenerateECDSAKeyPair(id, elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	env.Stop(t)
	env.Restart(t) // the signer is found anew
	testenv.WantError(t, issue(), "ServiceUnavailableException")
	if err := beside.Delete(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the token's one login a second
	if err := issue(); err != nil {
		t.Fatalf("the CA's key alone again: %v", err)
	}
	key, err := token.FindKeyPair(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := token.GenerateECDSAKeyPair(id, elliptic.P256()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		time.Sleep(1100 * time.Millisecond) // past the token's one login a second
		testenv.WantError(t, issue(), "ServiceUnavailableException")
	}
}

// deletedKMSCA makes a root CA named cn, with its key in KMS, deletes it
// with the shortest restoration period (7 days), stops the server, and
// returns the CA's ARN and its key's handle (the KMS key's ARN).
func deletedKMSCA(t *testing.T, env *testenv.Env, cn string) (arn, handle string) {
	t.Helper()
	arn = env.CreateCA(t, types.CertificateAuthorityTypeRoot, cn)
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn, PermanentDeletionTimeInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	env.Stop(t)
	if err := env.DB(t).QueryRow(`SELECT key_handle FROM certificate_authorities WHERE arn = ?`, arn).Scan(&handle); err != nil {
		t.Fatal(err)
	}
	return arn, handle
}

// TestPurgeWhileKeyStoreAway purges a CA while KMS, which keeps its key,
// cannot be reached: its rows go, and its key is destroyed once KMS is
// back, by a later purge (here, the one at the next start).
func TestPurgeWhileKeyStoreAway(t *testing.T) {
	k := testenv.StartKMS(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	arn, handle := deletedKMSCA(t, env, "Purged Away")
	k.Stop(t)
	env.Clock.Advance(8 * 24 * time.Hour)
	env.Restart(t) // the purge runs at start; KMS does not answer
	env.Stop(t)
	var n int
	if err := env.DB(t).QueryRow(`SELECT count(*) FROM certificate_authorities WHERE arn = ?`, arn).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the CA's row after the purge: %d, %v", n, err)
	}
	k.Start(t)
	env.Restart(t)
	// The key is scheduled for deletion, and then its record goes: the
	// server is stopped only once both are done (a stop between them
	// leaves the record, for the next start to find the key gone).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &handle})
		pending := err == nil && out.KeyMetadata.KeyState == kmstypes.KeyStatePendingDeletion
		if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if pending && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the purged CA's key after KMS came back: %+v, %v; keys still to destroy: %d", out, err, n)
		}
	}
	// Said, with what finds it.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		line := logs.Line("destroyed the key of a CA deleted for good")
		if strings.Contains(line, arn) && strings.Contains(line, handle) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key's destruction is not said, with its CA and handle: %q", line)
		}
	}
}

// TestPurgeOfKeyGoneBefore: a purged CA's key that its store no longer
// holds (deleted by hand, or by another server) is taken as destroyed,
// and said so, with what finds it.
func TestPurgeOfKeyGoneBefore(t *testing.T) {
	k := testenv.StartKMS(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	_, handle := deletedKMSCA(t, env, "Gone Before")
	if _, err := k.Client().ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &handle, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(8 * 24 * time.Hour)
	env.Restart(t) // the purge, at start, destroys the keys in the background
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "is not in its store; it is taken as destroyed"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning of the key taken as destroyed:\n%s", logs.String())
		}
	}
	env.Stop(t)
	if !strings.Contains(logs.String(), handle) {
		t.Errorf("the warning does not name the key's handle %s", handle)
	}
	var n int
	if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&n); err != nil || n != 0 {
		t.Errorf("keys still to destroy: %d, %v", n, err)
	}
}

// TestKMSKeyPolicy: with a key policy configured, each CA key is made
// with it, not with KMS's default.
func TestKMSKeyPolicy(t *testing.T) {
	k := testenv.StartKMS(t)
	const doc = `{"Version":"2012-10-17","Statement":[{"Sid":"ServerSigns","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/openpca"},"Action":["kms:Sign","kms:GetPublicKey","kms:DescribeKey","kms:ScheduleKeyDeletion"],"Resource":"*"}]}`
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.KMSKeyPolicy = doc })
	env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Own policy")
	keys, err := k.Client().ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("KMS keys: %v, %v", keys, err)
	}
	got, err := k.Client().GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: keys.Keys[0].KeyId, PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Policy) != doc {
		t.Errorf("the key's policy is\n%s\nwant\n%s", aws.ToString(got.Policy), doc)
	}
}

// TestKeyOfCANeverStored: a server that stops between making a CA's key
// in KMS and storing the CA leaves the record of the key made (here
// written as it would have); once KeyMadeGrace has passed without its CA,
// a purge destroys the key. A CA created whole leaves no such record.
func TestKeyOfCANeverStored(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t))
	env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Stored")
	// Made as the store makes a CA's key, tagged with its ARN.
	id := uuid.NewString()
	arn := openpca.CAARN("us-east-1", app.DefaultAccountID, id)
	made, err := k.Client().CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify,
		Tags: []kmstypes.Tag{{TagKey: aws.String("openpca:certificate-authority"), TagValue: &arn}}})
	if err != nil {
		t.Fatal(err)
	}
	handle := *made.KeyMetadata.KeyId
	keyID := kmsKeyID(t, k, handle)
	env.Stop(t)
	var n int
	if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("records of keys made, with every CA stored: %d, %v", n, err)
	}
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.RecordKeyMade(ctx, neverStored(t, a, &openpca.CA{ID: id, ARN: arn, KeyStore: kms.Name, KeyHandle: []byte(handle), KeyID: keyID}, env.Clock.Now()), env.Clock.Now())
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	state := func() kmstypes.KeyState {
		out, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &handle})
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyState
	}
	env.Restart(t) // the purge runs at start: the CA may yet be stored
	time.Sleep(500 * time.Millisecond)
	if s := state(); s != kmstypes.KeyStateEnabled {
		t.Fatalf("a key made within the grace: %s", s)
	}
	env.Clock.Advance(openpca.KeyMadeGrace + time.Minute)
	env.Restart(t)
	for deadline := time.Now().Add(15 * time.Second); state() != kmstypes.KeyStatePendingDeletion; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the key of a CA never stored, past the grace: %s", state())
		}
	}
}

// TestTokenKeyRecordedBeforeMade: a token's key is recorded before it is
// made, without its key id (its server may die as the token makes it, or
// the token fail once it has). Past KeyMadeGrace without its CA, a purge
// destroys the one key under its id, and forgets a record whose key was
// never made.
func TestTokenKeyRecordedBeforeMade(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	env := testenv.Start(t, h.Use())
	kept, _ := env.NewActiveRoot(t, "Kept")
	env.Stop(t)
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	made, never := uuid.NewString(), uuid.NewString()
	for _, id := range []string{made, never} {
		ca := neverStored(t, a, &openpca.CA{ID: id, ARN: openpca.CAARN("us-east-1", app.DefaultAccountID, id), KeyStore: pkcs11.Name, KeyHandle: []byte(id)}, env.Clock.Now())
		if err := a.Store.RecordKeyMade(ctx, ca, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { token.Close() })
	// Labelled as the store labels a CA's key.
	if _, err := token.GenerateECDSAKeyPairWithLabel([]byte(made), []byte("openpca "+openpca.CAARN("us-east-1", app.DefaultAccountID, made)), elliptic.P256()); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(openpca.KeyMadeGrace + time.Minute)
	env.Restart(t)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		keys, err := token.FindKeyPairs([]byte(made), nil)
		// The server may destroy the key between the token's listing of
		// it and crypto11's reading of it: a look to take again.
		if err != nil {
			if !strings.Contains(err.Error(), "CKR_OBJECT_HANDLE_INVALID") || time.Now().After(deadline) {
				t.Fatal(err)
			}
			continue
		}
		var recorded int
		if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 && recorded == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("past the grace: %d keys recorded before they were made are in the token, %d records left", len(keys), recorded)
		}
	}
	if keys, err := token.FindKeyPairs([]byte(kept[strings.LastIndex(kept, "/")+1:]), nil); err != nil || len(keys) != 1 {
		t.Errorf("the keys of a CA in service: %d, %v", len(keys), err)
	}
}

// neverStored returns ca with the word of the audit key of a's database
// that its key, made at, may be destroyed once KeyMadeGrace has passed, as
// its server records a key made for a CA it has yet to store.
func neverStored(t *testing.T, a *app.Admin, ca *openpca.CA, at time.Time) *openpca.CA {
	t.Helper()
	signer, vkey, err := auditlog.LoadKey(ctx, a.Store, auditlog.Keys{Sealer: a.Sealer})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Destruction, err = auditlog.NewLog(a.Store, signer, vkey, nil).SignKeyDestruction(auditlog.KeyDestruction{Reason: auditlog.DestructionNeverStored,
		CAID: ca.ID, CAARN: ca.ARN, Store: ca.KeyStore, KeyHandle: ca.KeyHandle, KeyID: ca.KeyID, From: at.Add(openpca.KeyMadeGrace),
		Until: at.Add(openpca.KeyMadeGrace + authority.DestructionWindow)}); err != nil {
		t.Fatal(err)
	}
	return ca
}

// kmsKeyID is the key identifier of a KMS key, as a CA records it.
func kmsKeyID(t *testing.T, k *testenv.KMS, handle string) string {
	t.Helper()
	out, err := k.Client().GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: &handle})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.SubjectKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(id)
}

// TestPurgeDestroysOnlyTheCAsKMSKey: a purge destroys the KMS key its CA
// was made with, disabled or not, and not another key its row names (a
// key ARN repaired by hand, a database restored beside another on the
// same account), which would be a CA's still in service.
func TestPurgeDestroysOnlyTheCAsKMSKey(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t))
	other, _ := env.NewActiveRoot(t, "Still in service")
	disabledARN, disabledHandle := deletedKMSCA(t, env, "Disabled key, deleted")
	if _, err := k.Client().DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &disabledHandle}); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	deleted, _ := deletedKMSCA(t, env, "Deleted")
	db := env.DB(t)
	var otherHandle string
	if err := db.QueryRow(`SELECT key_handle FROM certificate_authorities WHERE arn = ?`, other).Scan(&otherHandle); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE certificate_authorities SET key_handle = ? WHERE arn = ?`, []byte(otherHandle), deleted); err != nil {
		t.Fatal(err)
	}
	state := func(handle string) kmstypes.KeyState {
		out, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &handle})
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyState
	}
	env.Clock.Advance(8 * 24 * time.Hour) // past both deleted CAs' restoration periods
	env.Restart(t)                        // the purge runs at start, and destroys keys in the background
	for deadline := time.Now().Add(15 * time.Second); state(disabledHandle) != kmstypes.KeyStatePendingDeletion; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the disabled key of %s, purged: %s", disabledARN, state(disabledHandle))
		}
	}
	if s := state(otherHandle); s != kmstypes.KeyStateEnabled {
		t.Errorf("the purge of %s, whose row names the key of %s, made it %s", deleted, other, s)
	}
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "still.example"}})
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &other, Csr: leaf.CSRPEM})
}

// TestHungToken: a token that stops answering mid-call (a network HSM
// that hangs) leaves each request, an issuance or a CA's creation, a
// ServiceUnavailableException at its deadline, not a wait past it,
// signing nothing after it; the calls given
// up on hold the store's slots no longer than they run, and the server
// still shuts down.
func TestHungToken(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	env := testenv.Start(t, h.Use())
	caARN, _ := env.NewActiveRoot(t, "Hung Root")
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "hung.example"}})
	caller := openpca.WithCaller(t.Context(), openpca.Caller{AccountID: strings.Split(caARN, ":")[4], Principal: testenv.AccessKeyID})
	release := h.Hang(t)
	answered := make(chan error)
	// A request ends at its deadline, or, before it, cancelled: with no
	// cause (its client gone), or with one (a round of work's lease
	// lost).
	ask := func(operation string, cancelled error, call func(context.Context) error) {
		go func() {
			ctx, cancel := context.WithTimeout(openpca.WithOperation(caller, operation), 2*time.Second)
			defer cancel()
			if cancelled != nil {
				var cancelCause context.CancelCauseFunc
				ctx, cancelCause = context.WithCancelCause(ctx)
				time.AfterFunc(time.Second, func() { cancelCause(cancelled) })
			}
			answered <- call(ctx)
		}()
	}
	issue := func(ctx context.Context) error {
		_, err := env.Service().IssueCertificate(ctx, &openpca.IssueCertificateRequest{CertificateAuthorityArn: caARN, Csr: leaf.CSRPEM,
			SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa, Validity: &openpca.Validity{Type: openpca.ValidityPeriodTypeDays, Value: 1}})
		return err
	}
	for range 3 {
		ask("IssueCertificate", nil, issue)
	}
	ask("IssueCertificate", context.Canceled, issue)
	ask("IssueCertificate", errors.New("the lease was lost"), issue)
	ask("CreateCertificateAuthority", nil, func(ctx context.Context) error {
		_, err := env.Service().CreateCertificateAuthority(ctx, &openpca.CreateCertificateAuthorityRequest{CertificateAuthorityType: openpca.CertificateAuthorityTypeRoot,
			CertificateAuthorityConfiguration: &openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1,
				SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa, Subject: &openpca.ASN1Subject{CommonName: "Made While Hung"}}})
		return err
	})
	// Within a minute, a hang's bound: the answer is due at the
	// requests' 2 s deadline.
	for range 6 {
		select {
		case err := <-answered:
			if openpca.ErrorCode(err) != openpca.CodeServiceUnavailable {
				t.Errorf("a request while the token hangs: %v; want ServiceUnavailableException", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a request still waits for the hung token a minute past its deadline")
		}
	}
	// The issuances' signings, past their deadline or their lease,
	// count; that of a client gone does not, and the creation opens no
	// key.
	if n := keysUnavailable(t, env, pkcs11.Name); n != 4 {
		t.Errorf("%d CA keys counted unavailable while the token hung, want 4", n)
	}
	stopped, keysClosed := make(chan struct{}), env.KeyStoresClosed()
	go func() {
		env.Stop(t)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Minute):
		t.Error("the server does not stop while the token hangs")
	}
	// The token's calls return, and its module is unloaded, before the
	// next test loads it with a configuration of its own.
	release()
	<-stopped
	select {
	case <-keysClosed:
	case <-time.After(time.Minute):
		t.Error("the token does not close a minute after its calls return")
	}
}

// TestRowsChangedByHand: an operator who can write the database, and not
// the token's PIN or KMS, gets no signature of a CA's key outside that
// key's log. A row copied under another id and ARN (its log with it) does
// not sign with the CA's key, in any key store; nor does a CA moved to
// another account (its account changed, not its ARN); and a record of a
// key to destroy that names a stored CA's key is forgotten, the key left.
// The CA itself signs throughout.
func TestRowsChangedByHand(t *testing.T) {
	stores := hardware(t)
	stores["software"] = func(t *testing.T) testenv.Option { return func(*app.Config) {} }
	for name, use := range stores {
		t.Run(name, func(t *testing.T) {
			env := testenv.Start(t, use(t))
			const otherAccount = "444455556666"
			env.NewAccount(t, otherAccount)
			victim, _ := env.NewActiveRoot(t, "Victim")
			moved, _ := env.NewActiveRoot(t, "Moved")
			leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "by-hand.example"}}).CSRPEM
			issue := func(client *acmpca.Client, ca string) error {
				_, err := client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &ca, Csr: leaf,
					SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
				return err
			}
			idOf := func(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
			p, err := openpca.ParseCAARN(moved)
			if err != nil {
				t.Fatal(err)
			}
			// Moved while its key is open: the row is the one it signs for.
			live, _ := env.NewActiveRoot(t, "Moved while open")
			if err := issue(env.Client, live); err != nil {
				t.Fatal(err)
			}
			db := env.DB(t)
			if _, err := db.Exec(`UPDATE certificate_authorities SET account_id = ?, version = version + 1 WHERE id = ?`, otherAccount, idOf(live)); err != nil {
				t.Fatal(err)
			}
			other, _ := env.NewKey(t, otherAccount)
			testenv.WantError(t, issue(other, strings.Replace(live, p.AccountID, otherAccount, 1)), "ServiceUnavailableException")
			env.Stop(t)
			cloneID := uuid.NewString()
			clone := strings.Replace(victim, idOf(victim), cloneID, 1)
			for _, q := range []string{
				`CREATE TEMP TABLE copied AS SELECT * FROM certificate_authorities WHERE id = ?1`,
				`UPDATE copied SET id = ?2, arn = ?3`,
				`INSERT INTO certificate_authorities SELECT * FROM copied`,
				`INSERT INTO key_use_logs SELECT ?2, size, tree_edge FROM key_use_logs WHERE ca_id = ?1`,
				`INSERT INTO key_uses SELECT ?2, seq, kind, at, serial, record, hashes FROM key_uses WHERE ca_id = ?1`,
				`UPDATE certificate_authorities SET account_id = ?4 WHERE id = ?5`,
				// Under an id no CA has, its ARN the victim's: KMS's tag check
				// at destruction would find it the victim's key.
				`INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id) SELECT ?6, arn, key_store, key_handle, key_id FROM certificate_authorities WHERE id = ?1`,
				// The victim's id as a BLOB and its handle as TEXT, which
				// SQLite compares equal to no TEXT or BLOB column, and which
				// read back as the victim's.
				`INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id) SELECT CAST(id AS BLOB), arn, key_store, CAST(key_handle AS TEXT), key_id FROM certificate_authorities WHERE id = ?1`,
			} {
				if _, err := db.Exec(q, idOf(victim), cloneID, clone, otherAccount, idOf(moved), uuid.NewString()); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			env.Restart(t) // a purge runs at start, and destroys keys in the background
			other, _ = env.NewKey(t, otherAccount)
			testenv.WantError(t, issue(env.Client, clone), "ServiceUnavailableException")
			testenv.WantError(t, issue(other, strings.Replace(moved, p.AccountID, otherAccount, 1)), "ServiceUnavailableException")
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				var records int
				if err := db.QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&records); err != nil {
					t.Fatal(err)
				}
				if records == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the record naming the victim's key is still there")
				}
			}
			env.Stop(t)
			env.Restart(t) // the victim's key opened anew
			if err := issue(env.Client, victim); err != nil {
				t.Errorf("the victim, after its row was copied and its key named for destruction: %v", err)
			}
		})
	}
}

// TestKeyDestructionSigned: a purge destroys a CA's key in a token or KMS
// only on the audit key's word for it, which DeleteCertificateAuthority
// gives and RestoreCertificateAuthority takes back. Rows written by hand
// (a CA marked deleted, one restored and then marked deleted, one given
// another deleted CA's word, a record of a key made for a CA never
// stored) have the CAs' rows purged, but not their keys destroyed, and
// the server says so. A CA whose restoration period was cut short by
// hand is purged, and its key destroyed when its word says.
func TestKeyDestructionSigned(t *testing.T) {
	type store struct {
		use   testenv.Option
		alive func(handle string) bool // the key is in its store, and not to be destroyed
	}
	for name, start := range map[string]func(t *testing.T) store{
		"pkcs11": func(t *testing.T) store {
			h := testenv.NewSoftHSM(t)
			token, err := crypto11.Configure(&crypto11.Config{Path: testenv.SoftHSMModule, TokenLabel: h.Label, Pin: h.PIN})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { token.Close() })
			return store{h.Use(), func(handle string) bool {
				keys, err := token.FindKeyPairs([]byte(handle), nil)
				if err != nil {
					t.Fatal(err)
				}
				return len(keys) == 1
			}}
		},
		"kms": func(t *testing.T) store {
			k := testenv.StartKMS(t)
			return store{k.Use(t), func(handle string) bool {
				out, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &handle})
				if err != nil {
					t.Fatal(err)
				}
				return out.KeyMetadata.KeyState == kmstypes.KeyStateEnabled
			}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := start(t)
			var logs testenv.SyncBuffer
			env := testenv.Start(t, s.use, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			deleted := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Deleted")
			byHand, _ := env.NewActiveRoot(t, "Marked deleted by hand")
			restored := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Restored, then marked deleted by hand")
			swapped := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Given the word of another")
			neverStored := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Its row gone, a record of its key made written")
			cutShort := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Its restoration period cut short by hand")
			for arn, days := range map[string]int32{deleted: 7, restored: 7, cutShort: 30} {
				if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn, PermanentDeletionTimeInDays: &days}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := env.Client.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &restored}); err != nil {
				t.Fatal(err)
			}
			env.Stop(t)
			db := env.DB(t)
			handles := map[string]string{}
			for _, arn := range []string{deleted, byHand, restored, swapped, neverStored, cutShort} {
				var handle string
				if err := db.QueryRow(`SELECT key_handle FROM certificate_authorities WHERE arn = ?`, arn).Scan(&handle); err != nil {
					t.Fatal(err)
				}
				handles[arn] = handle
			}
			past := env.Clock.Now().Add(-time.Hour).UnixMicro()
			for _, q := range []string{
				`UPDATE certificate_authorities SET status_before_deletion = status, status = 'DELETED', restorable_until = ?1, version = version + 1 WHERE arn IN (?2, ?3, ?4)`,
				`UPDATE certificate_authorities SET restorable_until = ?1, version = version + 1 WHERE arn = ?7`,
				`UPDATE certificate_authorities SET destruction = (SELECT destruction FROM certificate_authorities WHERE arn = ?5) WHERE arn = ?4`,
				`INSERT INTO key_destructions (ca_id, arn, key_store, key_handle, key_id, made_at) SELECT id, arn, key_store, key_handle, key_id, ?1 FROM certificate_authorities WHERE arn = ?6`,
				`DELETE FROM key_uses WHERE ca_id = (SELECT id FROM certificate_authorities WHERE arn = ?6)`,
				`DELETE FROM key_use_logs WHERE ca_id = (SELECT id FROM certificate_authorities WHERE arn = ?6)`,
				`DELETE FROM certificate_authorities WHERE arn = ?6`,
			} {
				if _, err := db.Exec(q, past, byHand, restored, swapped, deleted, neverStored, cutShort); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			// purged waits for the purge at start to leave the keys to
			// destroy left, and refused of them refused in all.
			purged := func(left, refused int) {
				t.Helper()
				env.Restart(t) // the purge runs at start, and destroys keys in the background
				for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					var records, cas int
					if err := db.QueryRow(`SELECT (SELECT count(*) FROM key_destructions), (SELECT count(*) FROM certificate_authorities)`).Scan(&records, &cas); err != nil {
						t.Fatal(err)
					}
					if records == left && cas == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d CAs and %d keys to destroy left after the purge, want none and %d", cas, records, left)
					}
				}
				if want := "openpca_key_destructions_refused_total " + strconv.Itoa(refused) + "\n"; !strings.Contains(metrics(t, env.URL), want) {
					t.Errorf("the metrics do not say %q", want)
				}
				env.Stop(t)
			}
			env.Clock.Advance(8 * 24 * time.Hour) // past the deleted CA's restoration period
			purged(1, 4)
			if s.alive(handles[deleted]) {
				t.Errorf("the key of %s, deleted, is still in its store", deleted)
			}
			if !s.alive(handles[cutShort]) {
				t.Errorf("the key of %s was destroyed before its restoration period ended", cutShort)
			}
			env.Clock.Advance(23 * 24 * time.Hour) // past its restoration period too, within its word's time
			purged(0, 0)                           // counted since the start
			if s.alive(handles[cutShort]) {
				t.Errorf("the key of %s is still in its store once its restoration period ended", cutShort)
			}
			for _, arn := range []string{byHand, restored, swapped, neverStored} {
				if !s.alive(handles[arn]) {
					t.Errorf("the key of %s was destroyed without the audit key's word for it", arn)
				}
				said := false
				for line := range strings.Lines(logs.String()) {
					said = said || strings.Contains(line, "without the audit key's word") && strings.Contains(line, arn) && strings.Contains(line, handles[arn])
				}
				if !said {
					t.Errorf("the key of %s, kept, is not said so, with its handle", arn)
				}
			}
		})
	}
}

// TestDeletionOfARowNamedForAnother: a CA whose row was given another
// CA's ARN and KMS key by hand (the other's own row hidden from the
// purge's look by SQLite's types: its ARN a BLOB, its handle TEXT) is not
// deleted, and no word is signed that its key, the other's, may be
// destroyed: the deletion is a ServiceUnavailableException, and the other
// CA's key stays. A CA whose purge leaves its key (KeepKey, as a restore
// marks a copy's) is deleted without a word, which a copy beside the
// servers it was restored from would otherwise hand them.
func TestDeletionOfARowNamedForAnother(t *testing.T) {
	k := testenv.StartKMS(t)
	env := testenv.Start(t, k.Use(t))
	victim, _ := env.NewActiveRoot(t, "In service")
	doomed := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Given the ARN and key of the one in service")
	kept := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Its key kept by its purge")
	idOf := func(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
	db := env.DB(t)
	var handle, keyID string
	if err := db.QueryRow(`SELECT CAST(key_handle AS TEXT), key_id FROM certificate_authorities WHERE id = ?`, idOf(victim)).Scan(&handle, &keyID); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE certificate_authorities SET arn = CAST(arn AS BLOB), key_handle = CAST(key_handle AS TEXT), version = version + 1 WHERE id = ?1`,
		`UPDATE certificate_authorities SET arn = ?3, key_handle = CAST(?4 AS BLOB), key_id = ?5, version = version + 1 WHERE id = ?2`,
		`UPDATE certificate_authorities SET keep_key = TRUE, version = version + 1 WHERE id = ?6`,
	} {
		if _, err := db.Exec(q, idOf(victim), idOf(doomed), victim, handle, keyID, idOf(kept)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	del := func(arn string) error {
		_, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn, PermanentDeletionTimeInDays: aws.Int32(7)})
		return err
	}
	testenv.WantError(t, del(doomed), "ServiceUnavailableException")
	if err := del(kept); err != nil {
		t.Fatal(err)
	}
	var words int
	if err := db.QueryRow(`SELECT count(*) FROM certificate_authorities WHERE destruction IS NOT NULL`).Scan(&words); err != nil || words != 0 {
		t.Errorf("words that a key may be destroyed: %d, %v; want none", words, err)
	}
	env.Clock.Advance(8 * 24 * time.Hour)
	env.Restart(t) // the purge, at start
	env.Stop(t)
	out, err := k.Client().DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &handle})
	if err != nil || out.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
		t.Errorf("the key of the CA in service: %+v, %v", out, err)
	}
}

// TestTokenKeyOfARowMovedAndDeleted: a CA in service whose row was moved
// by hand to another account, and deleted there through the API, has a
// word signed for its key under that account's ARN; the token's key is
// labelled with the CA's own ARN, and the purge leaves it.
func TestTokenKeyOfARowMovedAndDeleted(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, testenv.NewSoftHSM(t).Use(), func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	const otherAccount = "444455556666"
	env.NewAccount(t, otherAccount)
	victim, _ := env.NewActiveRoot(t, "In service")
	moved := strings.Replace(victim, app.DefaultAccountID, otherAccount, 1)
	if _, err := env.DB(t).Exec(`UPDATE certificate_authorities SET account_id = ?, arn = ?, status = 'DISABLED', version = version + 1 WHERE arn = ?`, otherAccount, moved, victim); err != nil {
		t.Fatal(err)
	}
	other, _ := env.NewKey(t, otherAccount)
	if _, err := other.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &moved, PermanentDeletionTimeInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(8 * 24 * time.Hour)
	env.Restart(t) // the purge, at start, destroys keys in the background
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "it is not the key of "+moved); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no error of the key left:\n%s", logs.String())
		}
	}
	env.Stop(t)
	h := env.Config.PKCS11
	token, err := crypto11.Configure(&crypto11.Config{Path: h.Module, TokenLabel: h.TokenLabel, Pin: h.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer token.Close()
	if keys, err := token.FindKeyPairs([]byte(victim[strings.LastIndex(victim, "/")+1:]), nil); err != nil || len(keys) != 1 {
		t.Errorf("the key of the CA in service: %d, %v", len(keys), err)
	}
}

// TestAuditTokenAwayAtCreation: with the audit key in the token, a token
// that hangs as a CA's creation begins fails it
// (ServiceUnavailableException) before its key is made, and leaves no
// record of a key made without the audit key's word, which a purge would
// take for one written by hand.
func TestAuditTokenAwayAtCreation(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	env := testenv.Start(t, h.Use(), func(c *app.Config) { c.AuditKeyStore = pkcs11.Name })
	release := h.Hang(t)
	_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Token away"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot})
	release()
	testenv.WantError(t, err, "ServiceUnavailableException")
	var records int
	if err := env.DB(t).QueryRow(`SELECT count(*) FROM key_destructions`).Scan(&records); err != nil || records != 0 {
		t.Errorf("records of keys made: %d, %v; want none, as none was made", records, err)
	}
}
