package authority_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/server"
)

// issued is what a test knows of a certificate it had issued.
type issued struct {
	arn      string
	cert     *x509.Certificate
	template string
	revoked  types.RevocationReason
}

// auditFixture activates a root, issues leaves (one revoked) and returns
// what the report must list, in issue order.
func auditFixture(t *testing.T, env *testenv.Env) (string, []issued) {
	t.Helper()
	rootARN, root := env.NewActiveRoot(t, "Audit Root")
	list := []issued{{arn: rootARN + "/certificate/" + fmt.Sprintf("%032x", root.SerialNumber), cert: root, template: tmplPrefix + "RootCACertificate/V1"}}
	for i, subject := range []pkix.Name{
		{CommonName: "a.example", Organization: []string{"Example, Inc."}, Country: []string{"US"}},
		{CommonName: `quote "b"`, OrganizationalUnit: []string{"Ops"}},
		{CommonName: "c.example", ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{2, 5, 4, 5}, Value: "42"}}},
	} {
		env.Clock.Advance(time.Second)
		tmpl := tmplPrefix + "EndEntityCertificate/V1"
		if i == 2 {
			tmpl = tmplPrefix + "EndEntityServerAuthCertificate/V1"
		}
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, TemplateArn: aws.String(tmpl),
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: subject}).CSRPEM})
		c, _ := env.Certificate(t, rootARN, arn)
		list = append(list, issued{arn: arn, cert: c, template: tmpl})
	}
	env.Clock.Advance(time.Second)
	serial := list[2].arn[strings.LastIndex(list[2].arn, "/")+1:]
	if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &rootARN,
		CertificateSerial: &serial, RevocationReason: types.RevocationReasonAffiliationChanged}); err != nil {
		t.Fatal(err)
	}
	list[2].revoked = types.RevocationReasonAffiliationChanged
	return rootARN, list
}

// wantRows is what a report must say of each certificate.
func wantRows(t *testing.T, list []issued) []map[string]string {
	var rows []map[string]string
	for _, c := range list {
		subject, err := pki.FormatSubject(c.cert.RawSubject)
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{
			"awsAccountId": app.DefaultAccountID, "certificateArn": c.arn, "serial": pki.FormatSerial(c.cert.SerialNumber),
			"subject": subject, "notBefore": c.cert.NotBefore.UTC().Format(audit.TimeLayout), "notAfter": c.cert.NotAfter.UTC().Format(audit.TimeLayout),
			"templateArn": c.template,
		}
		if c.revoked != "" {
			row["revocationReason"] = string(c.revoked)
		}
		rows = append(rows, row)
	}
	return rows
}

// checkRows compares report rows with what was issued; issuedAt and
// revokedAt must be times in the report's format, in order.
func checkRows(t *testing.T, got, want []map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d:\n%v", len(got), len(want), got)
	}
	timeRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$`)
	prev := ""
	for i := range want {
		g := got[i]
		if !timeRE.MatchString(g["issuedAt"]) || g["issuedAt"] < prev {
			t.Errorf("row %d issuedAt %q is not a time after the row before", i, g["issuedAt"])
		}
		prev = g["issuedAt"]
		if (want[i]["revocationReason"] != "") != timeRE.MatchString(g["revokedAt"]) {
			t.Errorf("row %d revokedAt %q", i, g["revokedAt"])
		}
		for k, v := range want[i] {
			if g[k] != v {
				t.Errorf("row %d %s = %q, want %q", i, k, g[k], v)
			}
		}
		for k, v := range g {
			if v == "" && k != "requestedByServicePrincipal" && k != "revokedAt" && k != "revocationReason" {
				t.Errorf("row %d has no %s", i, k)
			}
		}
	}
}

func makeLocalBucket(t testing.TB, env *testenv.Env, name string) string {
	t.Helper()
	dir := filepath.Join(env.Config.DataDir, "s3", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func createReport(env *testenv.Env, caARN, bucket string, format types.AuditReportResponseFormat) (*acmpca.CreateCertificateAuthorityAuditReportOutput, error) {
	return env.Client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &caARN, S3BucketName: &bucket, AuditReportResponseFormat: format})
}

func waitReport(t *testing.T, env *testenv.Env, caARN, id string) error {
	t.Helper()
	return acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	}).Wait(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: &id}, 30*time.Second)
}

func TestAuditReportLocal(t *testing.T) {
	env := testenv.Start(t)
	caARN, list := auditFixture(t, env)
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	dir := makeLocalBucket(t, env, "audit-bucket")
	want := wantRows(t, list)

	out, err := createReport(env, caARN, "audit-bucket", types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	id := *out.AuditReportId
	if !regexp.MustCompile(`^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$`).MatchString(id) {
		t.Errorf("report id %q is not a lowercase UUID", id)
	}
	if *out.S3Key != "audit-report/"+caID+"/"+id+".json" {
		t.Errorf("S3 key %s", *out.S3Key)
	}
	if err := waitReport(t, env, caARN, id); err != nil {
		t.Fatalf("AuditReportCreated waiter: %v", err)
	}
	d, err := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: &id})
	if err != nil {
		t.Fatal(err)
	}
	if d.AuditReportStatus != types.AuditReportStatusSuccess || *d.S3BucketName != "audit-bucket" || *d.S3Key != *out.S3Key || d.CreatedAt.Sub(env.Clock.Now()).Abs() > time.Second {
		t.Errorf("described %s %s %s %v", d.AuditReportStatus, *d.S3BucketName, *d.S3Key, d.CreatedAt)
	}
	b, err := os.ReadFile(filepath.Join(dir, *out.S3Key))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("the JSON report does not parse: %v\n%s", err, b)
	}
	checkRows(t, rows, want)
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "audit-report", caID, ".tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// A second report inside the window is refused, and says when.
	_, err = createReport(env, caARN, "audit-bucket", types.AuditReportResponseFormatCsv)
	testenv.WantError(t, err, "RequestInProgressException")
	if !strings.Contains(err.Error(), "next one can be created after") {
		t.Errorf("message %q does not say when", err)
	}
	env.Clock.Advance(31 * time.Minute)
	out, err = createReport(env, caARN, "audit-bucket", types.AuditReportResponseFormatCsv)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, *out.S3Key))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(records[0], ",") != strings.Join(audit.Fields, ",") {
		t.Errorf("CSV header %v", records[0])
	}
	rows = nil
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, f := range audit.Fields {
			row[f] = rec[i]
		}
		rows = append(rows, row)
	}
	checkRows(t, rows, want)
}

func TestAuditReportErrors(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Errors")
	otherARN, _ := env.NewActiveRoot(t, "Other")
	pending := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Pending")
	makeLocalBucket(t, env, "reports")
	tests := []struct {
		name, arn, bucket string
		format            types.AuditReportResponseFormat
		code              string
	}{
		{"certificate ARN", caARN + "/certificate/0a", "reports", "JSON", "InvalidArnException"},
		{"unknown CA", testenv.MissingCA(caARN), "reports", "JSON", "ResourceNotFoundException"},
		{"pending CA", pending, "reports", "JSON", "InvalidStateException"},
		{"missing bucket", caARN, "no-such-bucket", "JSON", "ResourceNotFoundException"},
		{"invalid bucket name", caARN, "Bad_Bucket", "JSON", "InvalidArgsException"},
		{"bucket name too short", caARN, "ab", "JSON", "ValidationException"},
		{"unknown format", caARN, "reports", "XML", "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := createReport(env, tt.arn, tt.bucket, tt.format)
			testenv.WantError(t, err, tt.code)
		})
	}
	out, err := createReport(env, caARN, "reports", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	describe := func(ca, id string) error {
		_, err := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &ca, AuditReportId: &id})
		return err
	}
	testenv.WantError(t, describe(otherARN, *out.AuditReportId), "ResourceNotFoundException")
	testenv.WantError(t, describe(caARN, "00000000-0000-0000-0000-000000000000"), "ResourceNotFoundException")
	testenv.WantError(t, describe(caARN, "not-a-report-id"), "ValidationException")
	testenv.WantError(t, describe(caARN+"/certificate/01", *out.AuditReportId), "InvalidArnException")

	// DISABLED CAs report; DELETED ones do not.
	env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &otherARN, Status: types.CertificateAuthorityStatusDisabled})
	if _, err := createReport(env, otherARN, "reports", "CSV"); err != nil {
		t.Errorf("a DISABLED CA: %v", err)
	}
	env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &otherARN})
	env.Clock.Advance(time.Hour)
	_, err = createReport(env, otherARN, "reports", "CSV")
	testenv.WantError(t, err, "InvalidStateException")
}

func TestAuditReportConcurrentRequests(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Racing")
	makeLocalBucket(t, env, "reports")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = createReport(env, caARN, "reports", "JSON") })
	}
	wg.Wait()
	testenv.WantOneWinner(t, errs, "RequestInProgressException")
}

// TestAuditReportWhileTheCAChanges: a report written while its CA issues,
// revokes and is tagged succeeds, and lists what was logged before it was
// asked for. Run under the race detector, it is where a report's worker
// and the requests that write to its CA meet.
func TestAuditReportWhileTheCAChanges(t *testing.T) {
	env := testenv.Start(t)
	caARN, list := auditFixture(t, env)
	dir := makeLocalBucket(t, env, "changing")
	out, err := createReport(env, caARN, "changing", types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	// Writes go on while the report is written (a few dozen at most).
	creating := func() bool {
		d, err := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
		return err == nil && d.AuditReportStatus == types.AuditReportStatusCreating
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := 0; j < 3 || j < 10 && creating(); j++ {
				_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
					Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)},
					Csr:      testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("meanwhile-%d-%d.example", i, j)}}).CSRPEM})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		serial := list[1].arn[strings.LastIndex(list[1].arn, "/")+1:]
		if _, err := env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
			CertificateSerial: &serial, RevocationReason: types.RevocationReasonSuperseded}); err != nil {
			t.Error(err)
		}
		if _, err := env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &caARN,
			Tags: []types.Tag{{Key: aws.String("changed"), Value: aws.String("meanwhile")}}}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, *out.S3Key))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	listed := map[string]bool{}
	for _, row := range rows {
		listed[row["certificateArn"]] = true
	}
	for _, c := range list {
		if !listed[c.arn] {
			t.Errorf("the report does not list %s, issued before it was asked for", c.arn)
		}
	}
}

func noWorkers(c *app.Config) { c.ReportWorkers = 0 }

// TestAuditReportResumesAfterRestart: a report left CREATING when the
// server stopped is finished by the next start, and what its unfinished
// writes left in the bucket is gone.
func TestAuditReportResumesAfterRestart(t *testing.T) {
	env := testenv.Start(t, noWorkers)
	caARN, list := auditFixture(t, env)
	dir := makeLocalBucket(t, env, "reports")
	out, err := createReport(env, caARN, "reports", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
	if d.AuditReportStatus != types.AuditReportStatusCreating {
		t.Fatalf("status %s before any worker ran", d.AuditReportStatus)
	}
	// The temporary file of a generation the server died in.
	partial := filepath.Join(dir, filepath.Dir(*out.S3Key), ".tmp-"+filepath.Base(*out.S3Key)+"-1234")
	if err := os.MkdirAll(filepath.Dir(partial), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partial, []byte(`[{"partial`), 0o600); err != nil {
		t.Fatal(err)
	}
	env.Config.ReportWorkers = app.DefaultReportWorkers
	env.Restart(t)
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an unfinished write's temporary file outlived the generation: %v", err)
	}
	var rows []map[string]string
	b, _ := os.ReadFile(filepath.Join(dir, *out.S3Key))
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	checkRows(t, rows, wantRows(t, list))
}

// TestAuditReportReadBack: a report's object replaced or removed after
// the report was finished (the late write, or removal, of a server that
// held it before, and stalled as its writes were on the way) is found at
// the report's read-back, and both are written again, to prove the
// report, twice at most (a server that kept writing its own would have
// them written for good); objects as written are left as they are.
func TestAuditReportReadBack(t *testing.T) {
	for _, tc := range []struct {
		replaced string
		removed  bool
	}{{"", false}, {"report", false}, {"proof file", false}, {"report", true}, {"proof file", true}} {
		replaced := tc.replaced
		verb := map[bool]string{false: "replaced", true: "removed"}[tc.removed]
		t.Run(verb+": "+cmp.Or(replaced, "nothing"), func(t *testing.T) {
			var logs testenv.SyncBuffer
			env := testenv.Start(t, func(c *app.Config) {
				c.AuditReportLease = time.Second // read-backs looked for every 333 ms
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			caARN, list := auditFixture(t, env)
			dir := makeLocalBucket(t, env, "reports")
			out, err := createReport(env, caARN, "reports", types.AuditReportResponseFormatJson)
			if err != nil {
				t.Fatal(err)
			}
			if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
				t.Fatal(err)
			}
			paths := map[string]string{"report": filepath.Join(dir, *out.S3Key), "proof file": filepath.Join(dir, *out.S3Key+auditlog.ProofSuffix)}
			files := map[string]os.FileInfo{}
			for name, path := range paths {
				if files[name], err = os.Stat(path); err != nil {
					t.Fatal(err)
				}
			}
			stale := []byte("a late write")
			tamper := func() {
				t.Helper()
				err := os.WriteFile(paths[replaced], stale, 0o600)
				if tc.removed {
					err = os.Remove(paths[replaced])
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if replaced != "" {
				tamper()
			}
			env.Clock.Advance(3 * time.Minute) // past the first read-back
			if replaced == "" {
				time.Sleep(2 * time.Second)
				for name, path := range paths {
					if now, err := os.Stat(path); err != nil || !os.SameFile(now, files[name]) {
						t.Errorf("the %s, read back as written, was written again (%v)", name, err)
					}
				}
				return
			}
			// Replaced again after each writing again: written again at
			// the next read-back (20 minutes on, then one more 2 minutes
			// after the last), twice, and then left.
			for rewrite := 1; rewrite <= 2; rewrite++ {
				var problems []audit.Problem
				for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					report, _ := os.ReadFile(paths["report"])
					proof, _ := os.ReadFile(paths["proof file"])
					v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), publicKey(t, env))
					if problems = v.Problems; len(problems) == 0 && v.Rows == len(wantRows(t, list)) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the %s %s after the report was finished: the report does not verify 15 s after read-back %d: %v", replaced, verb, rewrite, problems)
					}
				}
				tamper()
				env.Clock.Advance(30 * time.Minute)
			}
			for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "another server keeps writing them"); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the third replacement is not read back, or not logged:\n%s", logs.String())
				}
			}
			if b, err := os.ReadFile(paths[replaced]); tc.removed && !os.IsNotExist(err) || !tc.removed && (err != nil || !bytes.Equal(b, stale)) {
				t.Errorf("the %s was written again a third time (%v)", replaced, err)
			}
		})
	}
}

// TestAuditReportFailureFreesWindow: a report that cannot be written ends
// FAILED, with nothing left in the bucket, and a new report may be made
// at once.
func TestAuditReportFailureFreesWindow(t *testing.T) {
	env := testenv.Start(t, noWorkers)
	caARN, _ := env.NewActiveRoot(t, "Failing")
	dir := makeLocalBucket(t, env, "reports")
	out, err := createReport(env, caARN, "reports", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	// A folder where the report must go: the final rename fails.
	if err := os.MkdirAll(filepath.Join(dir, *out.S3Key, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	env.Config.ReportWorkers = app.DefaultReportWorkers
	env.Restart(t)
	if err := waitReport(t, env, caARN, *out.AuditReportId); err == nil {
		t.Fatal("the waiter succeeded on a report that cannot be written")
	}
	d, _ := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
	if d.AuditReportStatus != types.AuditReportStatusFailed {
		t.Fatalf("status %s, want FAILED", d.AuditReportStatus)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Join(dir, *out.S3Key)), ".tmp-*")); len(leftovers) > 0 {
		t.Errorf("a failed report left %v", leftovers)
	}
	// Its proof file was written whole; a failed report leaves neither.
	// They go once its end is recorded, by the server that held it (one
	// that held it before and stalled may land a write of its own).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(dir, *out.S3Key+auditlog.ProofSuffix))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a failed report left its proof file a minute after it failed: %v", err)
		}
	}
	again, err := createReport(env, caARN, "reports", "JSON")
	if err != nil {
		t.Fatalf("a FAILED report used up the window: %v", err)
	}
	if err := waitReport(t, env, caARN, *again.AuditReportId); err != nil {
		t.Fatal(err)
	}
}

// TestAuditReportBucketGivenAway: a report asked for while its bucket
// was the account's, whose bucket the operator gives to another account
// before it is written, fails and writes nothing there; what a generation
// of it wrote before the server stopped (here, both objects whole) is
// removed: the report of one account's CA, in another's bucket, verified.
func TestAuditReportBucketGivenAway(t *testing.T) {
	env := testenv.Start(t, noWorkers)
	env.NewAccount(t, "222233334444")
	caARN, _ := env.NewActiveRoot(t, "Given Away")
	dir := makeLocalBucket(t, env, "reports")
	out, err := createReport(env, caARN, "reports", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	env.Stop(t)
	for _, key := range []string{*out.S3Key, *out.S3Key + auditlog.ProofSuffix} {
		path := filepath.Join(dir, key)
		if err := errors.Join(os.MkdirAll(filepath.Dir(path), 0o700), os.WriteFile(path, []byte("the account's report"), 0o600)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "222233334444", CreatedAt: time.Now()})
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	env.Config.ReportWorkers = app.DefaultReportWorkers
	env.Restart(t)
	if err := waitReport(t, env, caARN, *out.AuditReportId); err == nil {
		t.Fatal("a report was written to a bucket given to another account")
	}
	if written, _ := filepath.Glob(filepath.Join(dir, "audit-report", "*", "*")); len(written) > 0 {
		t.Errorf("the other account's bucket holds %v", written)
	}
}

// TestAuditReportS3 sends reports to a real S3-compatible server.
func TestAuditReportS3(t *testing.T) {
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "pca-reports")
	env := testenv.Start(t, s3.Use(t, s3.AccessKey, s3.SecretKey))
	caARN, list := auditFixture(t, env)
	want := wantRows(t, list)

	out, err := createReport(env, caARN, "pca-reports", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	report := s3.Get(t, "pca-reports", *out.S3Key)
	if err := json.Unmarshal(report, &rows); err != nil {
		t.Fatal(err)
	}
	checkRows(t, rows, want)
	// Its proof file is beside it, and proves it.
	proof := s3.Get(t, "pca-reports", *out.S3Key+auditlog.ProofSuffix)
	if v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), publicKey(t, env)); len(v.Problems) > 0 || v.Rows != len(want) {
		t.Errorf("the report does not verify against its proof file: %d rows, %v", v.Rows, v.Problems)
	}

	_, err = createReport(env, caARN, "no-such-bucket", "JSON")
	testenv.WantError(t, err, "ResourceNotFoundException")

	// The S3 server is down while the report is generated: FAILED. Once
	// it is back, a new report succeeds at once.
	env.Stop(t)
	env.Config.ReportWorkers = 0
	env.Clock.Advance(31 * time.Minute)
	env.Restart(t)
	out, err = createReport(env, caARN, "pca-reports", "CSV")
	if err != nil {
		t.Fatal(err)
	}
	s3.Stop(t)
	env.Config.ReportWorkers = app.DefaultReportWorkers
	env.Restart(t)
	err = waitReport(t, env, caARN, *out.AuditReportId)
	if err == nil {
		t.Fatal("a report succeeded with the S3 server down")
	}
	d, _ := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
	if d.AuditReportStatus != types.AuditReportStatusFailed {
		t.Fatalf("status %s with the S3 server down, want FAILED", d.AuditReportStatus)
	}
	_, err = createReport(env, caARN, "pca-reports", "CSV")
	testenv.WantError(t, err, "RequestFailedException")
	s3.Start(t)
	out, err = createReport(env, caARN, "pca-reports", "CSV")
	if err != nil {
		t.Fatalf("after the S3 server came back: %v", err)
	}
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(strings.NewReader(string(s3.Get(t, "pca-reports", *out.S3Key)))).ReadAll()
	if err != nil || len(records) != len(want)+1 {
		t.Fatalf("CSV report: %d records, %v", len(records), err)
	}
}

// faultyS3 starts an S3 server with the bucket pca-reports, and a server
// that writes to it through fault, which answers a request itself when it
// returns true.
func faultyS3(t *testing.T, fault func(http.ResponseWriter, *http.Request) bool, opts ...testenv.Option) (*testenv.S3, *testenv.Env) {
	t.Helper()
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "pca-reports")
	target, err := url.Parse(s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	faulty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fault(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(faulty.Close)
	return s3, testenv.Start(t, append([]testenv.Option{s3.Use(t, s3.AccessKey, s3.SecretKey), func(c *app.Config) { c.S3Endpoint = faulty.URL }}, opts...)...)
}

// TestAuditReportS3Faults: connections to the S3 server cut while a
// report's objects are written, more often than the S3 client retries,
// do not fail the report: it is generated again, and verifies.
func TestAuditReportS3Faults(t *testing.T) {
	var cuts atomic.Int32
	s3, env := faultyS3(t, func(w http.ResponseWriter, r *http.Request) bool {
		// The S3 client tries each request three times: six cuts fail
		// the first generation's writes of the report and its proof.
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/audit-report/") && cuts.Add(1) <= 6 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		return false
	})
	caARN, list := auditFixture(t, env)
	out, err := createReport(env, caARN, "pca-reports", types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatalf("a report whose writes were cut %d times: %v", cuts.Load(), err)
	}
	report, proof := s3.Get(t, "pca-reports", *out.S3Key), s3.Get(t, "pca-reports", *out.S3Key+auditlog.ProofSuffix)
	if v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), publicKey(t, env)); len(v.Problems) > 0 || v.Rows != len(wantRows(t, list)) {
		t.Errorf("the report: %d rows, %v", v.Rows, v.Problems)
	}
}

// TestAuditReportReadBackRetried: a report whose writing again, at its
// read-back, meets faults of S3 past the S3 client's retries is tried
// again at the next looks, and then proves the report: it was let be,
// a pair that fails to verify under a report that says SUCCESS.
func TestAuditReportReadBackRetried(t *testing.T) {
	var cutting atomic.Bool
	var cuts atomic.Int32
	s3, env := faultyS3(t, func(w http.ResponseWriter, r *http.Request) bool {
		if cutting.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/audit-report/") {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				cuts.Add(1)
				conn.Close()
				return true
			}
		}
		return false
	}, func(c *app.Config) { c.AuditReportLease = time.Second })
	caARN, list := auditFixture(t, env)
	out, err := createReport(env, caARN, "pca-reports", types.AuditReportResponseFormatJson)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReport(t, env, caARN, *out.AuditReportId); err != nil {
		t.Fatal(err)
	}
	proofKey := *out.S3Key + auditlog.ProofSuffix
	if _, err := s3.Client().PutObject(t.Context(), &awss3.PutObjectInput{Bucket: aws.String("pca-reports"), Key: &proofKey, Body: strings.NewReader("a late write")}); err != nil {
		t.Fatal(err)
	}
	cutting.Store(true)
	env.Clock.Advance(3 * time.Minute) // past the first read-back
	for deadline := time.Now().Add(30 * time.Second); cuts.Load() < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the report's writing again met %d cuts", cuts.Load())
		}
	}
	time.Sleep(time.Second) // the writing again fails
	cutting.Store(false)
	env.Clock.Advance(2 * time.Minute) // past its retry
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		report, _ := s3.TryGet(t, "pca-reports", *out.S3Key)
		proof, _ := s3.TryGet(t, "pca-reports", proofKey)
		v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), publicKey(t, env))
		if len(v.Problems) == 0 && v.Rows == len(wantRows(t, list)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report, its writing again failed once: %v", v.Problems)
		}
	}
}

// TestAuditReportS3Hangs: a store that takes a request and never answers
// fails a report's request in the bucket check's time (RequestFailed),
// not when the S3 client gives up, minutes on, past a CLI's read timeout.
func TestAuditReportS3Hangs(t *testing.T) {
	var hang atomic.Bool
	_, env := faultyS3(t, func(_ http.ResponseWriter, r *http.Request) bool {
		if !hang.Load() {
			return false
		}
		<-r.Context().Done()
		return true
	})
	caARN, _ := auditFixture(t, env)
	hang.Store(true)
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	_, err := env.Client.CreateCertificateAuthorityAuditReport(rctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &caARN, S3BucketName: aws.String("pca-reports"), AuditReportResponseFormat: types.AuditReportResponseFormatJson})
	if _, ok := errors.AsType[*types.RequestFailedException](err); !ok {
		t.Errorf("a report to a store that never answers: %v, want RequestFailedException", err)
	}
}

// TestAuditReportS3Forbidden: a bucket the server's credentials cannot
// write to is refused when the report is requested, and when a CA's CRLs
// are to go there (ValidationException, as AWS answers).
func TestAuditReportS3Forbidden(t *testing.T) {
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "locked")
	env := testenv.Start(t, s3.Use(t, s3.AccessKey, "not-the-secret"))
	caARN, _ := env.NewActiveRoot(t, "Forbidden")
	_, err := createReport(env, caARN, "locked", "JSON")
	testenv.WantError(t, err, "InvalidArgsException")
	if !strings.Contains(err.Error(), "Permission error") {
		t.Errorf("message %q", err)
	}
	_, err = env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("locked")}}})
	testenv.WantError(t, err, "ValidationException")
	if !strings.Contains(err.Error(), "Permission error with your S3 bucket 'locked'") {
		t.Errorf("message %q", err)
	}
}

// publicKey returns the server's audit public key, from its endpoint.
func publicKey(t *testing.T, env *testenv.Env) string {
	t.Helper()
	res, err := http.Get(env.URL + server.PathPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("public key: %d %v", res.StatusCode, err)
	}
	return strings.TrimSpace(string(b))
}

// TestBucketOwnership: a bucket belongs to one account. Another account
// that names it, for an audit report or for CRLs, is refused exactly as
// if it did not exist; a folder given to no account belongs to the default
// account; the operator gives a bucket to an account with openpca buckets
// create.
func TestBucketOwnership(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "default-reports") // given to no account
	b, _ := env.NewAccount(t, "222233334444")
	bEnv := &testenv.Env{Client: b, Clock: env.Clock}
	aCA, _ := env.NewActiveRoot(t, "A's root")
	bCA, _ := bEnv.NewActiveRoot(t, "B's root")
	a, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.PutBucket(ctx, &openpca.Bucket{Name: "team-b-reports", AccountID: "222233334444", CreatedAt: time.Now()})
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	makeLocalBucket(t, env, "team-b-reports")

	// refused returns what a request naming bucket gets, with the bucket's
	// name taken out.
	refused := func(t *testing.T, e *testenv.Env, ca, bucket string, crl bool) string {
		t.Helper()
		var err error
		if crl {
			_, err = e.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca,
				RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: &bucket}}})
		} else {
			_, err = createReport(e, ca, bucket, types.AuditReportResponseFormatJson)
		}
		if err == nil {
			t.Fatalf("%s was accepted", bucket)
		}
		code, status := testenv.ErrorCode(err)
		var apiErr interface{ ErrorMessage() string }
		if !errors.As(err, &apiErr) {
			t.Fatalf("%v is not an API error", err)
		}
		return fmt.Sprint(code, status, strings.ReplaceAll(apiErr.ErrorMessage(), bucket, "BUCKET"))
	}
	for _, crl := range []bool{false, true} {
		t.Run(fmt.Sprint("crl=", crl), func(t *testing.T) {
			missing := refused(t, bEnv, bCA, "no-such-bucket", crl)
			if other := refused(t, bEnv, bCA, "default-reports", crl); other != missing {
				t.Errorf("B naming the default account's bucket: %s; naming a missing one: %s", other, missing)
			}
			if other := refused(t, env, aCA, "team-b-reports", crl); other != missing {
				t.Errorf("the default account naming B's bucket: %s; naming a missing one: %s", other, missing)
			}
		})
	}
	for _, own := range []struct {
		env    *testenv.Env
		ca     string
		bucket string
	}{{env, aCA, "default-reports"}, {bEnv, bCA, "team-b-reports"}} {
		out, err := createReport(own.env, own.ca, own.bucket, types.AuditReportResponseFormatCsv)
		if err != nil {
			t.Fatalf("a report in its own bucket %s: %v", own.bucket, err)
		}
		if err := waitReport(t, own.env, own.ca, *out.AuditReportId); err != nil {
			t.Errorf("the report in %s: %v", own.bucket, err)
		}
	}
}

// TestAuditReportOfTamperedLog: a log whose stored entries no longer match
// their hashes (one was changed under the server) makes its report FAILED,
// with nothing in the bucket, rather than a report of a forged history;
// and the generation ends, however far it had gone.
func TestAuditReportOfTamperedLog(t *testing.T) {
	for _, tamper := range []struct{ name, sql string }{
		{"a record rewritten", `UPDATE key_uses SET record = CAST(REPLACE(CAST(record AS TEXT), '"kind":"CSR"', '"kind":"CRL"') AS BLOB) WHERE ca_id = ? AND seq = 0`},
		{"an entry deleted", `DELETE FROM key_uses WHERE ca_id = ? AND seq = 2`},
		{"a certificate rewritten", `UPDATE certificates SET subject = 'CN=forged.example' WHERE ca_id = ? AND issue_seq = 3`},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			env := testenv.Start(t)
			caARN, _ := auditFixture(t, env)
			dir := makeLocalBucket(t, env, "reports")
			if _, err := env.DB(t).Exec(tamper.sql, caARN[strings.LastIndex(caARN, "/")+1:]); err != nil {
				t.Fatal(err)
			}
			out, err := createReport(env, caARN, "reports", types.AuditReportResponseFormatJson)
			if err != nil {
				t.Fatal(err)
			}
			if err := waitReport(t, env, caARN, *out.AuditReportId); err == nil {
				t.Fatal("a report of a tampered log succeeded")
			}
			d, err := env.Client.DescribeCertificateAuthorityAuditReport(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: out.AuditReportId})
			if err != nil || d.AuditReportStatus != types.AuditReportStatusFailed {
				t.Fatalf("the report: %+v, %v", d, err)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, filepath.Dir(*out.S3Key))); len(entries) != 0 {
				t.Errorf("a failed report left %v", entries)
			}
		})
	}
}
