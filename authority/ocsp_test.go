package authority_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// ocspEnv is a server with a root CA that answers OCSP, and a
// certificate it issued.
type ocspEnv struct {
	env   *testenv.Env
	caARN string
	root  *x509.Certificate
	cert  *x509.Certificate
}

func newOCSPEnv(t testing.TB, opts ...testenv.Option) *ocspEnv {
	t.Helper()
	env := testenv.Start(t, opts...)
	e := &ocspEnv{env: env}
	e.caARN, e.root = revocationCA(t, env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "issued.example"}})
	e.cert, _ = env.Certificate(t, e.caARN, env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &e.caARN, Csr: leaf.CSRPEM}))
	return e
}

// ask sends a request about serial, from the CA's issuer name and key,
// and returns the answer.
func (e *ocspEnv) ask(t testing.TB, serial *big.Int) []byte {
	t.Helper()
	return e.post(t, ocspRequest(t, e.root, serial))
}

func (e *ocspEnv) post(t testing.TB, req []byte) []byte {
	t.Helper()
	body, err := post(e.env.URL+"/ocsp", req)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// ocspRequest builds an OCSP request (RFC 6960, with SHA-1 as RFC 5019
// asks) for any serial, negative and overlong ones included, which
// x509.Certificate cannot hold.
func ocspRequest(t testing.TB, issuer *x509.Certificate, serial *big.Int) []byte {
	t.Helper()
	nameHash, keyHash := issuerHashes(t, issuer)
	return buildOCSPRequest(nameHash, keyHash, serial, nil)
}

// issuerHashes are the SHA-1 hashes of issuer's name and key that a
// CertID names it by.
func issuerHashes(t testing.TB, issuer *x509.Certificate) (name, key []byte) {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	n, k := sha1.Sum(issuer.RawSubject), sha1.Sum(spki.PublicKey.RightAlign())
	return n[:], k[:]
}

// buildOCSPRequest is an unsigned request for one CertID (SHA-1), with
// requestor as its requestorName (a DER GeneralName) unless nil.
func buildOCSPRequest(nameHash, keyHash []byte, serial *big.Int, requestor []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			if requestor != nil {
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(requestor) })
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26})
							b.AddASN1NULL()
						})
						b.AddASN1OctetString(nameHash)
						b.AddASN1OctetString(keyHash)
						b.AddASN1BigInt(serial)
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// certID is the CertID of the single response of an OCSP response.
type certID struct {
	hash              asn1.ObjectIdentifier
	nameHash, keyHash []byte
	serial            *big.Int
}

// responseCertID reads the CertID a successful OCSP response answers; ok
// is false for an error response.
func responseCertID(t testing.TB, der []byte) (id certID, ok bool) {
	t.Helper()
	s := cryptobyte.String(der)
	var resp, bytesField, respBytes, basic, tbs, responderID, responses, single, cid, alg cryptobyte.String
	var responderTag cbasn1.Tag // the responder id is a choice of two tags
	var status int
	var respType asn1.ObjectIdentifier
	var basicDER []byte
	if !s.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.ReadASN1Enum(&status) {
		t.Fatalf("not an OCSP response: %x", der)
	}
	if status != 0 {
		return id, false
	}
	id.serial = new(big.Int)
	if !resp.ReadASN1(&bytesField, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!bytesField.ReadASN1(&respBytes, cbasn1.SEQUENCE) || !respBytes.ReadASN1ObjectIdentifier(&respType) ||
		!respBytes.ReadASN1Bytes(&basicDER, cbasn1.OCTET_STRING) {
		t.Fatalf("malformed responseBytes: %x", der)
	}
	b := cryptobyte.String(basicDER)
	if !b.ReadASN1(&basic, cbasn1.SEQUENCE) || !basic.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !tbs.ReadAnyASN1(&responderID, &responderTag) ||
		!tbs.SkipASN1(cbasn1.GeneralizedTime) || !tbs.ReadASN1(&responses, cbasn1.SEQUENCE) ||
		!responses.ReadASN1(&single, cbasn1.SEQUENCE) || !single.ReadASN1(&cid, cbasn1.SEQUENCE) ||
		!cid.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&id.hash) ||
		!cid.ReadASN1Bytes(&id.nameHash, cbasn1.OCTET_STRING) || !cid.ReadASN1Bytes(&id.keyHash, cbasn1.OCTET_STRING) ||
		!cid.ReadASN1Integer(id.serial) {
		t.Fatalf("malformed BasicOCSPResponse: %x", der)
	}
	if !responses.Empty() {
		t.Fatalf("the response answers more than one certificate")
	}
	return id, true
}

// requestCertID reads the CertID of the first request of an OCSP request.
func requestCertID(req *ocsp.Request) certID {
	return certID{hash: asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, nameHash: req.IssuerNameHash, keyHash: req.IssuerKeyHash, serial: req.SerialNumber}
}

func (a certID) equal(b certID) bool {
	return a.hash.Equal(b.hash) && bytes.Equal(a.nameHash, b.nameHash) && bytes.Equal(a.keyHash, b.keyHash) && a.serial.Cmp(b.serial) == 0
}

// TestOCSPSerials: a serial RFC 5280 does not allow (not positive, or
// longer than 20 octets) is malformedRequest, and is never signed, logged
// or kept; the longest allowed one is answered.
func TestOCSPSerials(t *testing.T) {
	e := newOCSPEnv(t)
	before := count(logKinds(t, e.env, e.caARN), openpca.KeyUseOCSP)
	huge := new(big.Int).Lsh(big.NewInt(1), 60000*8-9) // a 60,000-octet serial
	for name, serial := range map[string]*big.Int{
		"60,000 octets":       huge,
		"21 octets":           new(big.Int).Lsh(big.NewInt(1), 20*8-1),
		"zero":                big.NewInt(0),
		"negative":            new(big.Int).Neg(e.cert.SerialNumber),
		"negative, 20 octets": new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 150)),
	} {
		if body := e.ask(t, serial); !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
			t.Errorf("%s: %x, want malformedRequest", name, body[:min(len(body), 16)])
		}
	}
	if n := count(logKinds(t, e.env, e.caARN), openpca.KeyUseOCSP) - before; n != 0 {
		t.Errorf("%d OCSP signings logged for malformed serials", n)
	}
	longest := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 20*8-1), big.NewInt(1)) // 20 octets
	if resp, err := ocsp.ParseResponse(e.ask(t, longest), e.root); err != nil || resp.Status != ocsp.Unknown || resp.SerialNumber.Cmp(longest) != 0 {
		t.Errorf("a 20-octet serial: %+v, %v", resp, err)
	}
}

// TestOCSPAnswersTheCertIDAsked revokes a certificate, asks about the
// negation of its serial, then about the serial: the first is malformed,
// and the answer to the second is the revocation, for exactly the CertID
// asked, so that no kept answer for one CertID is served for another.
func TestOCSPAnswersTheCertIDAsked(t *testing.T) {
	e := newOCSPEnv(t)
	_, err := e.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &e.caARN,
		CertificateSerial: aws.String(e.cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise})
	if err != nil {
		t.Fatal(err)
	}
	if body := e.ask(t, new(big.Int).Neg(e.cert.SerialNumber)); !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
		t.Errorf("the negated serial: %x, want malformedRequest", body)
	}
	for range 2 { // signed, then kept
		req := ocspRequest(t, e.root, e.cert.SerialNumber)
		body := e.post(t, req)
		resp, err := ocsp.ParseResponseForCert(body, e.cert, e.root)
		if err != nil || resp.Status != ocsp.Revoked {
			t.Fatalf("the revoked certificate: %+v, %v", resp, err)
		}
		parsed, err := pki.ParseOCSPRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := responseCertID(t, body); !ok || !got.equal(requestCertID(parsed)) {
			t.Errorf("answered CertID %+v, asked %+v", got, requestCertID(parsed))
		}
	}
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", "CERTIFICATE", e.root.Raw)
	writePEM(t, dir, "leaf.pem", "CERTIFICATE", e.cert.Raw)
	if out, _ := openssl(t, dir, "ocsp", "-issuer", "root.pem", "-cert", "leaf.pem", "-url", e.env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce"); !strings.Contains(out, "leaf.pem: revoked") {
		t.Errorf("openssl ocsp:\n%s", out)
	}
	// RFC 6960 (4.1.1, 4.1.2) lets a client name itself and sign its
	// request, which the server answers as it would unsigned.
	if out, ok := openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "client.key", "-out", "client.pem", "-subj", "/CN=relying party", "-days", "2"); !ok {
		t.Fatal(out)
	}
	if out, _ := openssl(t, dir, "ocsp", "-issuer", "root.pem", "-cert", "leaf.pem", "-url", e.env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce",
		"-signer", "client.pem", "-signkey", "client.key"); !strings.Contains(out, "leaf.pem: revoked") {
		t.Errorf("openssl ocsp -signer:\n%s", out)
	}
	// A request about two certificates is refused whole (RFC 5019 takes
	// one): an answer about the first alone tells nothing of the other.
	if out, _ := openssl(t, dir, "ocsp", "-issuer", "root.pem", "-cert", "leaf.pem", "-serial", "0xbad", "-url", e.env.URL+"/ocsp", "-CAfile", "root.pem", "-no_nonce"); !strings.Contains(out, "malformedrequest") {
		t.Errorf("openssl ocsp about two certificates:\n%s", out)
	}
	name, key := issuerHashes(t, e.root)
	requestor, _ := asn1.Marshal(pkix.Name{CommonName: "relying party"}.ToRDNSequence())
	requestor = append([]byte{0xa4, byte(len(requestor))}, requestor...) // directoryName: [4] EXPLICIT Name
	if resp, err := ocsp.ParseResponseForCert(e.post(t, buildOCSPRequest(name, key, e.cert.SerialNumber, requestor)), e.cert, e.root); err != nil || resp.Status != ocsp.Revoked {
		t.Errorf("a request with a requestorName: %+v, %v", resp, err)
	}
	// A key hash that is no SHA-1 hash names no CA, not even one of an
	// earlier version that kept no key hash.
	for _, key := range [][]byte{{}, key[:19]} {
		if body := e.post(t, buildOCSPRequest(name, key, e.cert.SerialNumber, nil)); !bytes.Equal(body, ocsp.UnauthorizedErrorResponse) {
			t.Errorf("a key hash of %d bytes: %x, want unauthorized", len(key), body)
		}
	}
}

// TestOCSPUnknownBudget exhausts what answers for made-up serials may add
// to a CA's log in an hour: past it they get tryLater, an issued
// certificate is still answered, what was logged stays within the budget,
// and an hour later the budget has refilled.
func TestOCSPUnknownBudget(t *testing.T) {
	const budget = 16 << 10
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPUnknownRate = 1e6; c.OCSPUnknownBudget = budget; c.OCSPSignedByCA = true })
	size := func() (entries, bytes int) {
		a, err := app.OpenAdmin(ctx, e.env.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		uses, err := a.Store.KeyUses(ctx, e.caARN[strings.LastIndex(e.caARN, "/")+1:], 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range uses {
			if u.Kind == openpca.KeyUseOCSP {
				entries++
				bytes += len(u.Record)
			}
		}
		return entries, bytes
	}
	flood := func(base int64) (answered int) {
		for i := int64(0); ; i++ {
			body := e.ask(t, big.NewInt(base+i))
			if bytes.Equal(body, ocsp.TryLaterErrorResponse) {
				return answered
			}
			if resp, err := ocsp.ParseResponse(body, e.root); err != nil || resp.Status != ocsp.Unknown {
				t.Fatalf("a made-up serial: %+v, %v", resp, err)
			}
			answered++
			if answered > budget {
				t.Fatal("the budget never ran out")
			}
		}
	}
	answered := flood(0xbad0000)
	entries, logged := size()
	t.Logf("%d answers for made-up serials within a budget of %d bytes: %d bytes of records", answered, budget, logged)
	if answered == 0 || entries != answered || logged > budget {
		t.Errorf("%d answered, %d logged in %d bytes; want all logged within %d bytes", answered, entries, logged, budget)
	}
	if resp, err := ocsp.ParseResponseForCert(e.ask(t, e.cert.SerialNumber), e.cert, e.root); err != nil || resp.Status != ocsp.Good {
		t.Errorf("an issued certificate past the budget: %+v, %v", resp, err)
	}
	e.env.Clock.Advance(time.Hour)
	if again := flood(0xbad1000); again < answered-1 || again > answered+1 {
		t.Errorf("an hour later, %d answers, want about %d", again, answered)
	}
}

// TestOCSPUnknownBudgetFirst: made-up serials against one CA, past its
// budget, do not use up the server's rate for the others.
func TestOCSPUnknownBudgetFirst(t *testing.T) {
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPUnknownRate = 10; c.OCSPUnknownBudget = 1 << 10; c.OCSPSignedByCA = true })
	answered := 0
	for i := range 30 {
		if !bytes.Equal(e.ask(t, big.NewInt(int64(0xbad000+i))), ocsp.TryLaterErrorResponse) {
			answered++
		}
	}
	if answered == 0 || answered >= 10 {
		t.Fatalf("%d made-up serials of 30 answered within a 1 KiB budget, want some and fewer than the server's 10", answered)
	}
	other, root := revocationCA(t, e.env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	body := e.post(t, ocspRequest(t, root, big.NewInt(0xbad)))
	if resp, err := ocsp.ParseResponse(body, root); err != nil || resp.Status != ocsp.Unknown {
		t.Errorf("a made-up serial of %s, after another CA's flood: %+v, %v", other, resp, err)
	}
}

// TestOCSPUnknownRate checks that made-up serials cannot make the
// responder sign without bound, while issued certificates are still
// answered; the CA's log has the answers its own key signs, and none of a
// delegated responder's.
func TestOCSPUnknownRate(t *testing.T) {
	for _, byCA := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed by the CA %v", byCA), func(t *testing.T) { testOCSPUnknownRate(t, byCA) })
	}
}

func testOCSPUnknownRate(t *testing.T, byCA bool) {
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPUnknownRate = 1; c.OCSPSignedByCA = byCA })
	before := count(logKinds(t, e.env, e.caARN), openpca.KeyUseOCSP)
	unknown, later := 0, 0
	for i := range 5 {
		body := e.ask(t, big.NewInt(int64(0xbad000+i)))
		if bytes.Equal(body, ocsp.TryLaterErrorResponse) {
			later++
			continue
		}
		if resp, err := ocsp.ParseResponse(body, e.root); err != nil || resp.Status != ocsp.Unknown {
			t.Fatalf("OCSP for an unknown serial: %+v, %v", resp, err)
		}
		unknown++
	}
	// At one a second, five requests in a row cannot all be signed.
	if unknown == 0 || later == 0 {
		t.Errorf("%d unknown and %d tryLater answers to 5 made-up serials, want both", unknown, later)
	}
	if resp, err := ocsp.ParseResponseForCert(e.ask(t, e.cert.SerialNumber), e.cert, e.root); err != nil || resp.Status != ocsp.Good {
		t.Errorf("OCSP for an issued certificate past the limit: %+v, %v", resp, err)
	}
	want := 0
	if byCA {
		want = unknown + 1
	}
	if signed := count(logKinds(t, e.env, e.caARN), openpca.KeyUseOCSP) - before; signed != want {
		t.Errorf("%d OCSP signings logged, want %d", signed, want)
	}
}

// FuzzOCSP sends whatever the fuzzer makes to a running responder whose CA
// has issued and revoked certificates. Every answer is an OCSP response;
// a successful one answers exactly the CertID asked, for a request that
// parses and whose serial RFC 5280 allows; nothing else is ever signed.
func FuzzOCSP(f *testing.F) {
	e := newOCSPEnv(f, func(c *app.Config) { c.OCSPUnknownRate = 1e6 })
	_, err := e.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &e.caARN,
		CertificateSerial: aws.String(e.cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonSuperseded})
	if err != nil {
		f.Fatal(err)
	}
	for _, serial := range []*big.Int{e.cert.SerialNumber, new(big.Int).Neg(e.cert.SerialNumber), big.NewInt(1), big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), 200)} {
		f.Add(ocspRequest(f, e.root, serial))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, req []byte) {
		e.checkAnswer(t, req, e.post(t, req))
	})
}

// checkAnswer checks that answer is an OCSP response to request: an error
// response of RFC 6960 (never internalError), or a successful one, for a
// request that parses and names a serial RFC 5280 allows, exactly about its
// CertID, and signed by the CA.
func (e *ocspEnv) checkAnswer(t *testing.T, request, answer []byte) {
	t.Helper()
	if bytes.Equal(answer, ocsp.InternalErrorErrorResponse) {
		t.Fatalf("internalError for %x", request)
	}
	id, ok := responseCertID(t, answer)
	if !ok {
		for _, r := range [][]byte{ocsp.MalformedRequestErrorResponse, ocsp.UnauthorizedErrorResponse, ocsp.TryLaterErrorResponse} {
			if bytes.Equal(answer, r) {
				return
			}
		}
		t.Fatalf("an error response that is none of RFC 6960's: %x", answer)
	}
	parsed, err := pki.ParseOCSPRequest(request)
	if err != nil {
		t.Fatalf("signed an answer to a request that does not parse: %x", request)
	}
	if s := parsed.SerialNumber; s.Sign() <= 0 || s.BitLen() >= 160 {
		t.Fatalf("signed an answer for serial %v", s)
	}
	if !id.equal(requestCertID(parsed)) {
		t.Fatalf("answered CertID %+v, asked %+v", id, requestCertID(parsed))
	}
	if _, err := ocsp.ParseResponse(answer, e.root); err != nil {
		t.Fatalf("the answer does not verify: %v", err)
	}
}

// TestOCSPAfterClockStepsBack: an answer signed while the clock ran a day
// ahead is not served again once it is back: relying parties refuse a
// thisUpdate in the future.
func TestOCSPAfterClockStepsBack(t *testing.T) {
	e := newOCSPEnv(t)
	e.env.Clock.Advance(24 * time.Hour)
	e.ask(t, e.cert.SerialNumber)
	e.env.Clock.Advance(-24*time.Hour + time.Minute)
	got, err := ocsp.ParseResponse(e.ask(t, e.cert.SerialNumber), e.root)
	if err != nil {
		t.Fatal(err)
	}
	if now := e.env.Clock.Now(); got.ThisUpdate.After(now) {
		t.Errorf("at %v, the answer's thisUpdate is %v", now, got.ThisUpdate)
	}
}

// TestOCSPSignedOnce: a certificate's status is signed once for every
// server of the database and across restarts (each signing stays in the
// CA's log), and again when it changes or the answer ages.
func TestOCSPSignedOnce(t *testing.T) {
	e := newOCSPEnv(t)
	// Requests at once share one signing: a second would differ (ECDSA
	// signatures are random).
	answers := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			body, err := post(e.env.URL+"/ocsp", ocspRequest(t, e.root, e.cert.SerialNumber))
			if err != nil {
				t.Error(err)
			}
			answers[i] = body
		})
	}
	wg.Wait()
	first := answers[0]
	for _, a := range answers {
		if !bytes.Equal(a, first) {
			t.Fatal("16 requests at once had the status signed more than once")
		}
	}
	e.env.Restart(t) // a server without the first's cache
	if again := e.ask(t, e.cert.SerialNumber); !bytes.Equal(again, first) {
		t.Error("the status was signed again after a restart")
	}
	_, err := e.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &e.caARN,
		CertificateSerial: aws.String(e.cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise})
	if err != nil {
		t.Fatal(err)
	}
	revoked := e.ask(t, e.cert.SerialNumber)
	if got, err := ocsp.ParseResponse(revoked, e.root); err != nil || got.Status != ocsp.Revoked {
		t.Fatalf("after the revocation: %+v, %v", got, err)
	}
	e.env.Restart(t)
	if again := e.ask(t, e.cert.SerialNumber); !bytes.Equal(again, revoked) {
		t.Error("the revoked status was signed again after a restart")
	}
	e.env.Clock.Advance(13 * time.Hour) // past the refresh, half the answer's life
	e.env.Restart(t)
	aged := e.ask(t, e.cert.SerialNumber)
	if got, err := ocsp.ParseResponse(aged, e.root); err != nil || !got.ThisUpdate.Equal(e.env.Clock.Now().Truncate(time.Second)) {
		t.Errorf("an answer past its refresh was not signed again: %+v, %v", got, err)
	}
}

// TestOCSPClientHungUp: an OCSP request whose client hung up while its
// answer waited to be written is not logged as an error (anyone could
// write such lines, as fast as they hang up).
func TestOCSPClientHungUp(t *testing.T) {
	var logs testenv.SyncBuffer
	e := newOCSPEnv(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	// The database's write lock, held: a fresh answer's write waits.
	conn, err := e.env.DB(t).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.env.URL+"/ocsp", bytes.NewReader(ocspRequest(t, e.root, e.cert.SerialNumber)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("answered %d while the database's write lock was held", res.StatusCode)
	}
	time.Sleep(200 * time.Millisecond) // for the server to see its client gone
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	e.ask(t, e.cert.SerialNumber) // answered, once the lock is given back
	if strings.Contains(logs.String(), "answering an OCSP request") {
		t.Errorf("an OCSP request whose client hung up was logged as an error:\n%s", logs.String())
	}
}

// TestOCSPSigners: answers signed with the server's processors (by a
// responder's key, or a CA's in software) wait for one of its OCSP
// signers, and are tryLater past a second without one, so that a flood of
// them (anyone who knows serials may send one) leaves the other
// processors to the API; answers a CA signs in KMS do not wait for them,
// so that a slow or hung key store holds back no other CA's answers. Those
// wait for one of their key store's slots (two: the default), of which no
// CA takes more than one, so that a flood of them leaves the store's
// quota to issuance, and one slow key leaves the other CAs theirs.
func TestOCSPSigners(t *testing.T) {
	for _, byCA := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed by the CA %v", byCA), func(t *testing.T) { testOCSPSigners(t, byCA) })
	}
}

func testOCSPSigners(t *testing.T, byCA bool) {
	k := testenv.StartKMS(t)
	k.Credentials(t)
	// A CA in software; then, the server's store for new keys turned to
	// KMS, one there.
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPSignedByCA = byCA; c.OCSPSigners = 2 })
	e.env.Config.KeyStore, e.env.Config.KMSEndpoint = "kms", k.URL
	e.env.Restart(t)
	kmsARN, kmsRoot := revocationCA(t, e.env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	issue := func(arn string) *x509.Certificate {
		leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "signers.example"}})
		cert, _ := e.env.Certificate(t, arn, e.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &arn, Csr: leaf.CSRPEM}))
		return cert
	}
	// ask returns the status cert's CA, root, answers for it.
	ask := func(cert, root *x509.Certificate) string {
		t.Helper()
		answer := e.post(t, ocspRequest(t, root, cert.SerialNumber))
		if bytes.Equal(answer, ocsp.TryLaterErrorResponse) {
			return "tryLater"
		}
		resp, err := ocsp.ParseResponseForCert(answer, cert, root)
		if err != nil {
			t.Fatal(err)
		}
		return pki.OCSPStatusName(resp.Status)
	}
	// Each CA's responder (if it has one) issued before.
	for _, c := range []struct{ cert, root *x509.Certificate }{{e.cert, e.root}, {issue(kmsARN), kmsRoot}} {
		if got := ask(c.cert, c.root); got != "good" {
			t.Fatalf("before: %s", got)
		}
	}
	softLeaf, kmsLeaf := issue(e.caARN), issue(kmsARN)
	release := authority.HoldOCSPSigners(e.env.Service())
	if got := ask(softLeaf, e.root); got != "tryLater" {
		t.Errorf("the software CA's answer with every signer busy: %s, want tryLater", got)
	}
	want := "tryLater" // its responder's key is in memory
	if byCA {
		want = "good"
	}
	if got := ask(kmsLeaf, kmsRoot); got != want {
		t.Errorf("the KMS CA's answer with every signer busy: %s, want %s", got, want)
	}
	release()
	for _, c := range []struct{ cert, root *x509.Certificate }{{softLeaf, e.root}, {kmsLeaf, kmsRoot}} {
		if got := ask(c.cert, c.root); got != "good" {
			t.Errorf("once the signers are free: %s", got)
		}
	}
	if byCA {
		// Its answers take one of the KMS store's slots instead. Each
		// certificate below is asked about once answered, so that none is
		// served as kept.
		other, otherRoot := revocationCA(t, e.env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
		kmsLeaf, otherLeaf := issue(kmsARN), issue(other)
		held := []func(){authority.HoldOCSPStoreSigner(e.env.Service(), "kms", "another"), authority.HoldOCSPStoreSigner(e.env.Service(), "kms", "a third")}
		if got := ask(kmsLeaf, kmsRoot); got != "tryLater" {
			t.Errorf("the KMS CA's answer with every slot of its store taken: %s, want tryLater", got)
		}
		if got := ask(issue(e.caARN), e.root); got != "good" {
			t.Errorf("the software CA's answer with every slot of the KMS store taken: %s", got)
		}
		for _, release := range held {
			release()
		}
		release = authority.HoldOCSPStoreSigner(e.env.Service(), "kms", path.Base(kmsARN))
		if got := ask(kmsLeaf, kmsRoot); got != "tryLater" {
			t.Errorf("the KMS CA's answer with its share of the store's slots taken: %s, want tryLater", got)
		}
		if got := ask(otherLeaf, otherRoot); got != "good" {
			t.Errorf("another KMS CA's answer with the first's share taken: %s", got)
		}
		release()
		if got := ask(kmsLeaf, kmsRoot); got != "good" {
			t.Errorf("the KMS CA's answer once its slot is free: %s", got)
		}
		return
	}
	// A responder's key is made on a slot of its own, apart from the
	// signers. The first answers of a new CA whose key waits there, behind
	// other CAs' keys, are signed by the CA meanwhile, rather than wait or
	// be tryLater, and the answers of a CA that has its responder are not
	// held up either; once the key is made, the responder signs.
	arn, root := revocationCA(t, e.env, &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: aws.Bool(true)}})
	leaf := issue(arn)
	release = authority.HoldOCSPKeySlot(e.env.Service())
	if got := ask(issue(e.caARN), e.root); got != "good" {
		t.Errorf("an answer of a CA that has its responder, while another's key waits: %s", got)
	}
	signer := func(cert *x509.Certificate) string {
		t.Helper()
		resp, err := ocsp.ParseResponseForCert(e.post(t, ocspRequest(t, root, cert.SerialNumber)), cert, root)
		switch {
		case err != nil:
			t.Fatal(err)
		case resp.Status != ocsp.Good:
			t.Errorf("status %d", resp.Status)
		case resp.Certificate != nil:
			return "its responder"
		}
		return "the CA"
	}
	if got := signer(leaf); got != "the CA" {
		t.Errorf("the first answer of a CA whose responder's key waits for its slot was signed by %s, want the CA", got)
	}
	release()
	for end := time.Now().Add(30 * time.Second); signer(issue(arn)) != "its responder"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no responder signs within 30 s of its key's slot given back")
		}
	}
}

// TestOCSPMetrics: /metrics counts OCSP answers, to POST, GET and HEAD and
// those answered 304, by what they say, error responses among them, and
// times them; one whose client went first is abandoned, whatever it says
// (a client can end its request at will, which the responder then fails).
func TestOCSPMetrics(t *testing.T) {
	e := newOCSPEnv(t, func(c *app.Config) { c.OCSPUnknownRate = 1 })
	second := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "revoked.example"}})
	revoked, _ := e.env.Certificate(t, e.caARN, e.env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &e.caARN, Csr: second.CSRPEM}))
	if _, err := e.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &e.caARN,
		CertificateSerial: aws.String(revoked.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	other := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "another issuer"}})
	otherCA, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another issuer"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}, &x509.Certificate{Subject: pkix.Name{CommonName: "another issuer"}}, other.Key.Public(), other.Key)
	if err != nil {
		t.Fatal(err)
	}
	otherRoot, _ := x509.ParseCertificate(otherCA)
	getPath := "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(ocspRequest(t, e.root, e.cert.SerialNumber)))
	do := func(method, etag string, want int) string {
		req, _ := http.NewRequest(method, e.env.URL+getPath, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s with If-None-Match %q: %d, want %d", method, etag, res.StatusCode, want)
		}
		return res.Header.Get("ETag")
	}
	e.ask(t, e.cert.SerialNumber)
	do(http.MethodHead, "", http.StatusOK)
	do(http.MethodGet, do(http.MethodGet, "", http.StatusOK), http.StatusNotModified)
	e.ask(t, revoked.SerialNumber)
	e.post(t, []byte("not a request"))
	e.post(t, ocspRequest(t, otherRoot, big.NewInt(7)))
	// At one a second, two made-up serials in a row: one unknown, then
	// tryLater.
	e.ask(t, big.NewInt(0xbad001))
	e.ask(t, big.NewInt(0xbad002))
	// Clients that end their requests as soon as they are sent: the
	// server sees them go, and the responder fails those it was still
	// answering. Each is revoked or abandoned.
	for range 20 {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.env.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /ocsp/%s HTTP/1.1\r\nHost: x\r\n\r\n", url.PathEscape(base64.StdEncoding.EncodeToString(ocspRequest(t, e.root, revoked.SerialNumber))))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}

	m := metrics(t, e.env.URL)
	want := map[string]int{"good": 4, "revoked": 1, "unknown": 1, "tryLater": 1, "malformedRequest": 1, "unauthorized": 1, "internalError": 0, "abandoned": 0}
	got := map[string]int{}
	total := 0
	for _, match := range regexp.MustCompile(`(?m)^openpca_ocsp_responses_total\{response="([^"]*)"\} (\d+)$`).FindAllStringSubmatch(m, -1) {
		if _, known := want[match[1]]; !known {
			t.Errorf("openpca_ocsp_responses_total{response=%q}: no answer says that", match[1])
		}
		got[match[1]], _ = strconv.Atoi(match[2])
		total += got[match[1]]
	}
	if got["revoked"]+got["abandoned"] != want["revoked"]+20 {
		t.Errorf("revoked %d and abandoned %d answers, want %d in all", got["revoked"], got["abandoned"], want["revoked"]+20)
	}
	got["revoked"], got["abandoned"] = want["revoked"], 0
	for said, w := range want {
		if got[said] != w {
			t.Errorf("openpca_ocsp_responses_total{response=%q} = %d, want %d", said, got[said], w)
		}
	}
	if !strings.Contains(m, fmt.Sprintf("\nopenpca_ocsp_response_duration_seconds_count %d\n", total)) {
		t.Errorf("the responder's answers timed, want %d:\n%s", total, regexp.MustCompile(`(?m)^openpca_ocsp_response_duration_seconds_(count|sum).*$`).FindAllString(m, -1))
	}
}
