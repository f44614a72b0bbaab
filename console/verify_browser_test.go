package console_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/chromedp/chromedp"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
)

// verifyPage is the console's verify page in headless Chromium, signed in,
// beside a server whose CAs have each made a JSON report.
type verifyPage struct {
	t       *testing.T
	ctx     context.Context
	url     string
	arns    []string          // the CAs', in the order named
	reports map[string]string // report path by CA ARN
}

// newVerifyPage starts a server with a CA of each name given, each with a
// certificate and a JSON report of its log, and signs in to its console
// in Chromium.
func newVerifyPage(t *testing.T, names ...string) *verifyPage {
	exe := chromium(t)
	env := testenv.Start(t)
	bucketDir := filepath.Join(env.Config.DataDir, "s3", "reports")
	if err := os.MkdirAll(bucketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &verifyPage{t: t, url: env.URL, reports: map[string]string{}}
	for _, name := range names {
		arn, _ := env.NewActiveRoot(t, name)
		env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &arn,
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf." + strings.ToLower(strings.Fields(name)[0]) + ".example"}}).CSRPEM})
		out, err := env.Client.CreateCertificateAuthorityAuditReport(t.Context(), &acmpca.CreateCertificateAuthorityAuditReportInput{
			CertificateAuthorityArn: &arn, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
		if err != nil {
			t.Fatal(err)
		}
		if err := acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
		}).Wait(t.Context(), &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &arn, AuditReportId: out.AuditReportId}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		p.arns = append(p.arns, arn)
		p.reports[arn] = filepath.Join(bucketDir, *out.S3Key)
	}
	creds, err := env.Client.Options().Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Chromium's start may take more than chromedp's 20 s on a loaded
	// machine: the browser tests' wait.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WSURLReadTimeout(time.Minute))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	p.ctx, cancel = chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// Started with the tab's own context: the first Run's context is the
	// browser's, which would close when a step's bound ends.
	if err := chromedp.Run(p.ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := p.bounded()
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Navigate(env.URL+"/console/"),
		chromedp.SendKeys(`input[name=access_key_id]`, creds.AccessKeyID),
		chromedp.SendKeys(`input[name=secret_access_key]`, creds.SecretAccessKey),
		chromedp.Click(`#sign-in`),
		chromedp.WaitVisible(`#ca-tree`)); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	return p
}

// bounded is the page's context for one step (signing in, a report
// verified), within two minutes: a bound for the test's whole run, which
// verifies several reports, timed out on a loaded machine.
func (p *verifyPage) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, 2*time.Minute)
}

// verify verifies a report and proof file on the page, and returns what
// the page says.
func (p *verifyPage) verify(report, proof string) string {
	p.t.Helper()
	ctx, cancel := p.bounded()
	defer cancel()
	var result string
	if err := chromedp.Run(ctx, chromedp.Navigate(p.url+"/console/verify"),
		chromedp.SetUploadFiles(`#report`, []string{report}),
		chromedp.SetUploadFiles(`#proof`, []string{proof}),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#result .ok, #result .error, #result #problems`),
		chromedp.Text(`#result`, &result)); err != nil {
		p.t.Fatalf("verifying %s: %v", report, err)
	}
	return result
}

// rewriteHeader writes a copy of a proof file, in dir, whose header edit
// has changed: the header is the one line of a proof file nothing signs.
func rewriteHeader(t *testing.T, proof, dir string, edit func(h *auditlog.ProofHeader)) string {
	t.Helper()
	gz, err := os.ReadFile(proof)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(zr)
	first, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	var h auditlog.ProofHeader
	if err := json.Unmarshal(first, &h); err != nil {
		t.Fatal(err)
	}
	edit(&h)
	line, err := h.Line()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(line)
	zw.Write(rest)
	zw.Close()
	path := filepath.Join(dir, filepath.Base(proof))
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerifyPageNamesWhatItVerified: the proof file's signed statement of
// which report it is sits in its header, which nothing signs; without it,
// the proof file reads as one of a version before statements. The verify
// page said only "Verified": another CA's report, put in the place of the
// report asked for with its statement taken out, verified with nothing to
// tell it from the report asked for. A report named for its id, whose
// proof file does not sign which report it is, now fails, as in the CLI.
func TestVerifyPageNamesWhatItVerified(t *testing.T) {
	p := newVerifyPage(t, "East Root", "West Root")
	east, west := p.arns[0], p.arns[1]
	// West's report and its proof file, statement taken out, named as
	// East's report (as the bucket's owner can put them in its place).
	dir := t.TempDir()
	asked := filepath.Join(dir, filepath.Base(p.reports[east]))
	b, err := os.ReadFile(p.reports[west])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(asked, b, 0o600); err != nil {
		t.Fatal(err)
	}
	proof := rewriteHeader(t, p.reports[west]+auditlog.ProofSuffix, dir, func(h *auditlog.ProofHeader) { h.Report = "" })
	if err := os.Rename(proof, asked+auditlog.ProofSuffix); err != nil {
		t.Fatal(err)
	}
	result := p.verify(asked, asked+auditlog.ProofSuffix)
	t.Logf("the page says: %s", result)
	if strings.Contains(result, "Verified") || !strings.Contains(result, "does not sign which report it is") {
		t.Errorf("West's report, its statement taken out, under East's report's name: the page does not fail it for its unsigned identity:\n%s", result)
	}
}

// TestVerifyPageShowsServerTextAsCLI: what the proof file's header says
// of why the log is not witnessed is anyone's text (nothing signs the
// header); the page showed it raw, whatever its length, in the verdict's
// paragraph: a right-to-left override in it reverses the warning after it.
// The CLI escapes it and cuts it (audit.Printable), as it does all it
// quotes of the files. And the page took its text "-" for "witnessed, not
// checked": a header that says "-", with no witnessed checkpoint, turned
// the warning that nothing shows the log was witnessed into one that the
// witnesses were not checked.
func TestVerifyPageShowsServerTextAsCLI(t *testing.T) {
	p := newVerifyPage(t, "East Root")
	report := p.reports[p.arns[0]]
	said := "none\u202e" + strings.Repeat("x", 64<<10)
	proof := rewriteHeader(t, report+auditlog.ProofSuffix, t.TempDir(), func(h *auditlog.ProofHeader) { h.NotWitnessed = said })
	result := p.verify(report, proof)
	if !strings.Contains(result, "Verified") {
		t.Fatalf("the page says:\n%.2000s", result)
	}
	if strings.ContainsRune(result, '\u202e') || len(result) > 8<<10 {
		t.Errorf("the page shows the header's notWitnessed raw (%d bytes, right-to-left override %v):\n%.300q", len(result), strings.ContainsRune(result, '\u202e'), result)
	}
	proof = rewriteHeader(t, report+auditlog.ProofSuffix, t.TempDir(), func(h *auditlog.ProofHeader) { h.NotWitnessed, h.WitnessedCheckpoint = "-", "" })
	if result := p.verify(report, proof); !strings.Contains(result, "Not witnessed") || strings.Contains(result, "Witnesses not checked") {
		t.Errorf("a proof file without a witnessed checkpoint, whose header says \"-\":\n%s", result)
	}
	// One with a witnessed checkpoint, without witness keys to check it.
	proof = rewriteHeader(t, report+auditlog.ProofSuffix, t.TempDir(), func(h *auditlog.ProofHeader) { h.WitnessedCheckpoint = h.Checkpoint })
	if result := p.verify(report, proof); !strings.Contains(result, "Witnesses not checked") {
		t.Errorf("a proof file with a witnessed checkpoint, no witness keys given:\n%s", result)
	}
}
