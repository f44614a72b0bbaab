package console_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/witness"
)

// chromium returns the path of Debian's chromium, which .ci/run installs;
// without it the browser tests are skipped, except in CI.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI has no chromium: .ci/run installs Debian's package")
		}
		t.Skip("no chromium to drive")
	}
	return path
}

// screenshots is where the browser tests keep their screenshots: the
// folder OPENPCA_TEST_ARTIFACTS names, else a temporary one (logged).
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OPENPCA_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "openpca-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestConsoleInBrowser drives the console in headless Chromium: sign in,
// see a root and its two subordinates as a tree, find a certificate by its
// serial, revoke it and see it in the next CRL, request an audit report and
// watch it reach SUCCESS, verify the report in the browser, then tamper
// with one row and see the browser name it.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	shots := screenshots(t)
	env := testenv.Start(t)
	bucketDir := filepath.Join(env.Config.DataDir, "s3", "reports")
	if err := os.MkdirAll(bucketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rootARN, _ := env.NewActiveRoot(t, "Console Root")
	var subs []string
	for _, name := range []string{"Issuing CA East", "Issuing CA West"} {
		out, err := env.Client.CreateCertificateAuthority(t.Context(), &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, name), CertificateAuthorityType: types.CertificateAuthorityTypeSubordinate,
			RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("reports")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		arn := *out.CertificateAuthorityArn
		env.ActivateSubordinate(t, rootARN, arn, 3)
		subs = append(subs, arn)
	}
	var serials []string
	for i := range 3 {
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subs[0],
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("service-%d.example", i)}}).CSRPEM})
		serials = append(serials, arn[strings.LastIndex(arn, "/")+1:])
	}
	creds, err := env.Client.Options().Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// Chromium's start takes more than chromedp's 20 s on a loaded
	// machine (CI runs four test packages at once): a minute.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1200, 900),
		chromedp.WSURLReadTimeout(time.Minute))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Sign in, and see the hierarchy.
	var subCount int
	run("signing in", chromedp.Navigate(env.URL+"/console/"),
		chromedp.SendKeys(`input[name=access_key_id]`, creds.AccessKeyID),
		chromedp.SendKeys(`input[name=secret_access_key]`, creds.SecretAccessKey),
		chromedp.Click(`#sign-in`),
		chromedp.WaitVisible(`#ca-tree`),
		chromedp.Evaluate(`document.querySelectorAll('#ca-tree li[data-ca="Console Root"] > ul > li').length`, &subCount),
		shot("console-cas"))
	if subCount != 2 {
		t.Errorf("the root has %d subordinates in the tree, want 2", subCount)
	}

	// At a phone's width, the pages fit: nothing overflows sideways.
	for _, page := range []string{"/console/cas", "/console/ca?arn=" + subs[0], "/console/ca/certificates?arn=" + subs[0], "/console/verify"} {
		var fits bool
		run("a page at a phone's width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(env.URL+page),
			chromedp.Evaluate(`document.documentElement.scrollWidth <= window.innerWidth`, &fits))
		if !fits {
			t.Errorf("%s overflows a phone's width", page)
		}
	}
	run("back to a desktop's width", chromedp.EmulateViewport(1200, 900), chromedp.Navigate(env.URL+"/console/cas"), chromedp.WaitVisible(`#ca-tree`))

	// Find a certificate by its serial, and revoke it.
	var found string
	run("finding a certificate", chromedp.Click(`a[href*="`+subs[0][strings.LastIndex(subs[0], "/")+1:]+`"]`, chromedp.NodeVisible),
		chromedp.WaitVisible(`#search`),
		chromedp.SendKeys(`#search input[name=serial]`, serials[1]),
		chromedp.Submit(`#search input[name=serial]`),
		chromedp.WaitVisible(`#certificates`),
		chromedp.Text(`#certificates`, &found))
	if !strings.Contains(found, serials[1]) || strings.Contains(found, serials[0]) {
		t.Fatalf("the search for %s found:\n%s", serials[1], found)
	}
	var badge string
	run("revoking it", chromedp.Click(`#certificates a`),
		chromedp.WaitVisible(`#revoke`),
		chromedp.SetValue(`#revoke select[name=reason]`, "KEY_COMPROMISE"),
		chromedp.Click(`#revoke button`),
		chromedp.WaitVisible(`#revoked`),
		chromedp.Text(`#revoked`, &badge))
	if !strings.Contains(badge, "KEY_COMPROMISE") {
		t.Errorf("the revoked badge says %q", badge)
	}
	var expiring, revokedBars int
	run("the charts", chromedp.Navigate(env.URL+"/console/ca/charts?arn="+subs[0]),
		chromedp.WaitVisible(`#expiry-chart`),
		chromedp.Evaluate(`document.querySelectorAll('#expiry-chart rect').length`, &expiring),
		chromedp.Evaluate(`document.querySelectorAll('#activity-chart rect.revoked').length`, &revokedBars),
		shot("console-charts"))
	if expiring != 1 || revokedBars != 1 { // two unrevoked certificates expire on one day; one revocation today
		t.Errorf("the charts: %d expiry bars, %d revocation bars", expiring, revokedBars)
	}
	crlPath := filepath.Join(bucketDir, "crl", subs[0][strings.LastIndex(subs[0], "/")+1:]+".crl")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		env.Clock.CatchUp() // the CRL waits for the second after the last CRL's
		if der, err := os.ReadFile(crlPath); err == nil {
			if crl, err := x509.ParseRevocationList(der); err == nil && len(crl.RevokedCertificateEntries) == 1 &&
				fmt.Sprintf("%032x", crl.RevokedCertificateEntries[0].SerialNumber) == serials[1] {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the next CRL does not list the certificate revoked in the console")
		}
	}

	// Request a report, and watch it reach SUCCESS.
	caURL := env.URL + "/console/ca?arn=" + subs[0]
	run("requesting a report", chromedp.Navigate(caURL),
		chromedp.SendKeys(`#request-report input[name=bucket]`, "reports"),
		chromedp.SetValue(`#request-report select[name=format]`, "JSON"),
		chromedp.Click(`#request-report button`),
		chromedp.WaitVisible(`#report-list`))
	// A look may fail while the form's navigation is still under way (the
	// list seen may be the page's before it): the next look tries again.
	var status string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(status, "SUCCESS"); {
		err = chromedp.Run(ctx, chromedp.Sleep(100*time.Millisecond), chromedp.Navigate(caURL), chromedp.Text(`#report-list`, &status))
		if time.Now().After(deadline) {
			t.Fatalf("the report did not reach SUCCESS (%v):\n%s", err, status)
		}
	}

	// Verify it in the browser, then a copy with one row changed.
	reports, _ := filepath.Glob(filepath.Join(bucketDir, "audit-report", "*", "*.json"))
	if len(reports) != 1 {
		t.Fatalf("reports in the bucket: %v", reports)
	}
	report, proof := reports[0], reports[0]+auditlog.ProofSuffix
	var result string
	run("verifying the report", chromedp.Navigate(env.URL+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{report}),
		chromedp.SetUploadFiles(`#proof`, []string{proof}),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#result .ok`),
		chromedp.Text(`#result`, &result))
	if !strings.Contains(result, "Verified: 3 rows") || !strings.Contains(result, "It is report ") || !strings.Contains(result, "Not witnessed") {
		t.Errorf("the verify page says %q", result)
	}
	// With a witness's key, a report no witness cosigned fails; and a
	// report under another report's name fails too, as the CLI's does.
	_, witnessKey, err := witness.NewKey("witness.example/w")
	if err != nil {
		t.Fatal(err)
	}
	run("verifying with a witness's key", chromedp.Navigate(env.URL+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{report}),
		chromedp.SetUploadFiles(`#proof`, []string{proof}),
		chromedp.SendKeys(`#witnesses`, witnessKey),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#problems`),
		chromedp.Text(`#result`, &result))
	if !strings.Contains(result, "not witnessed") {
		t.Errorf("the verify page, with a witness's key, of a report no witness cosigned:\n%s", result)
	}
	renamed := filepath.Join(t.TempDir(), uuid.NewString()+".json")
	b, _ := os.ReadFile(report)
	os.WriteFile(renamed, b, 0o600)
	run("verifying a report under another's name", chromedp.Navigate(env.URL+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{renamed}),
		chromedp.SetUploadFiles(`#proof`, []string{proof}),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#problems`),
		chromedp.Text(`#result`, &result))
	if !strings.Contains(result, "another report was put in its place") {
		t.Errorf("the verify page, of a report under another's name:\n%s", result)
	}
	var rows []map[string]any
	b, _ = os.ReadFile(report)
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 3 {
		t.Fatalf("the report: %v", err)
	}
	rows[1]["subject"] = "CN=forged.example"
	tampered := filepath.Join(t.TempDir(), filepath.Base(report))
	b, _ = json.Marshal(rows)
	os.WriteFile(tampered, b, 0o600)
	run("verifying a tampered copy", chromedp.Navigate(env.URL+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{tampered}),
		chromedp.SetUploadFiles(`#proof`, []string{proof}),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#problems`),
		chromedp.Text(`#result`, &result),
		shot("console-verify-tampered"))
	if !strings.Contains(result, "row 2") || !strings.Contains(result, "forged.example") {
		t.Errorf("the verify page does not name the tampered row:\n%s", result)
	}
	// A server's clock ran an hour ahead when it issued a certificate:
	// the report verifies, with a note that says so, as the CLI's does.
	env.Clock.Advance(time.Hour)
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &subs[1],
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ahead.example"}}).CSRPEM})
	env.Clock.Advance(-time.Hour)
	ahead, err := env.Client.CreateCertificateAuthorityAuditReport(t.Context(), &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &subs[1], S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	if err != nil {
		t.Fatal(err)
	}
	if err := acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	}).Wait(t.Context(), &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &subs[1], AuditReportId: ahead.AuditReportId}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	aheadReport := filepath.Join(bucketDir, *ahead.S3Key)
	run("verifying a report with an entry dated ahead", chromedp.Navigate(env.URL+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{aheadReport}),
		chromedp.SetUploadFiles(`#proof`, []string{aheadReport + auditlog.ProofSuffix}),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#result .ok`),
		chromedp.Text(`#result`, &result))
	if !strings.Contains(result, "Verified: 1 rows") || !strings.Contains(result, "Note: entry") || !strings.Contains(result, "ran ahead") {
		t.Errorf("the verify page, of a report with an entry dated ahead:\n%s", result)
	}

	// The CA page's link downloads the proof file; for a report of an
	// earlier version, the one beside it (its lines, uncompressed).
	var link string
	run("the proof file's link", chromedp.Navigate(caURL), chromedp.AttributeValue(`#report-list a[href*="proof=1"]`, "href", &link, nil))
	download := func(what string) []byte {
		var got []int
		run(what, chromedp.Evaluate(`fetch(`+strconv.Quote(link)+`).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))`, &got,
			func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
		b := make([]byte, len(got))
		for i, v := range got {
			b[i] = byte(v)
		}
		return b
	}
	gz, _ := os.ReadFile(proof)
	if got := download("downloading the proof file"); !bytes.Equal(got, gz) {
		t.Errorf("the proof file's link gave %d bytes, not the %d of %s", len(got), len(gz), proof)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := io.ReadAll(zr)
	os.Remove(proof)
	os.WriteFile(report+auditlog.LegacyProofSuffix, lines, 0o600)
	if got := download("downloading the proof file of an earlier version"); !bytes.Equal(got, lines) {
		t.Errorf("the proof file's link gave %d bytes, not the %d of the earlier version's", len(got), len(lines))
	}
}
