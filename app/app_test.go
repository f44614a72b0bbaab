package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/sigv4"
	"github.com/openpca/openpca/sqlstore"
)

// TestFileModes starts a server with no umask at all, on a data folder
// that others may read, and has it write everything it writes there: the
// database, keys, its TLS CA, an audit report and CRLs in a local bucket.
// Every file it made is its owner's alone, and it warns about the folder.
func TestFileModes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	bucket := filepath.Join(data, "s3", "modes")
	if err := os.MkdirAll(bucket, 0o755); err != nil { // the operator's
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) {
		c.DataDir, c.TLSSelfSigned = data, true
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if !strings.Contains(logs.String(), "the data folder can be read by users other than its owner") {
		t.Errorf("no warning about the data folder:\n%s", logs.String())
	}
	ctx := context.Background()
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Modes"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
			Enabled: aws.Bool(true), S3BucketName: aws.String("modes")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.CertificateAuthorityArn
	env.ActivateRoot(t, arn)
	report, err := env.Client.CreateCertificateAuthorityAuditReport(ctx, &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &arn, S3BucketName: aws.String("modes"), AuditReportResponseFormat: types.AuditReportResponseFormatCsv})
	if err != nil {
		t.Fatal(err)
	}
	err = acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	}).Wait(ctx, &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &arn, AuditReportId: report.AuditReportId}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(bucket, "crl", arn[strings.LastIndex(arn, "/")+1:]+".crl")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(crl); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL was published")
		}
	}
	// The write-ahead log and its index exist while the server runs.
	for _, name := range []string{"openpca.db-wal", "openpca.db-shm"} {
		if fi, err := os.Stat(filepath.Join(data, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want 0600", name, fi.Mode().Perm(), err)
		}
	}
	env.Stop(t)

	made := map[string]bool{}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == data || path == bucket || path == filepath.Dir(bucket) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, path)
		made[filepath.Base(path)] = true
		if want := os.FileMode(0o600); d.IsDir() {
			want = 0o700
			if fi.Mode().Perm() != want {
				t.Errorf("folder %s is %v, want %v", rel, fi.Mode().Perm(), want)
			}
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", rel, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"openpca.db", "master.key", "node-id", "lock", "ca.pem", "ca.key.sealed"} {
		if !made[name] {
			t.Errorf("the server made no %s; it made %v", name, made)
		}
	}
}

// TestDataFolderOfOthers: a server refuses a data folder that another
// user could have laid out or can change (as one made ahead in a shared
// directory): not its user's, writable by others, holding another user's
// file, or a link where it opens a file by name.
func TestDataFolderOfOthers(t *testing.T) {
	other := func(t *testing.T, path string) {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another user takes root, as CI runs")
		}
		if err := os.Lchown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, data string) string // the --data-dir to give
		want  string
	}{
		{"another user's folder", func(t *testing.T, data string) string { other(t, data); return data }, "belongs to user 65534"},
		{"a folder others may write to", func(t *testing.T, data string) string { os.Chmod(data, 0o777); return data }, "can be written by users outside"},
		{"a folder of a group not the server's, which may write to it", func(t *testing.T, data string) string {
			other(t, data)
			os.Lchown(data, os.Geteuid(), 65534)
			os.Chmod(data, 0o770)
			return data
		}, "can be written by users outside"},
		{"another user's database", func(t *testing.T, data string) string {
			os.WriteFile(filepath.Join(data, "openpca.db"), nil, 0o600)
			other(t, filepath.Join(data, "openpca.db"))
			return data
		}, "belongs to user 65534"},
		{"a link for the write-ahead log", func(t *testing.T, data string) string {
			if err := os.Symlink(filepath.Join(t.TempDir(), "victim"), filepath.Join(data, "openpca.db-wal")); err != nil {
				t.Fatal(err)
			}
			return data
		}, "is a link"},
		{"another user's link in the folder's place", func(t *testing.T, data string) string {
			link := data + "-link"
			if err := os.Symlink(data, link); err != nil {
				t.Fatal(err)
			}
			other(t, link)
			return link
		}, "is a link of user 65534"},
		{"another user's link in the folder's place, with a slash", func(t *testing.T, data string) string {
			link := data + "-link"
			if err := os.Symlink(data, link); err != nil {
				t.Fatal(err)
			}
			other(t, link)
			return link + "/"
		}, "is a link of user 65534"},
		{"another user's link on the way", func(t *testing.T, data string) string {
			link := filepath.Dir(data) + "-link"
			if err := os.Symlink(filepath.Dir(data), link); err != nil {
				t.Fatal(err)
			}
			other(t, link)
			return filepath.Join(link, filepath.Base(data))
		}, "is a link of user 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(data, 0o700); err != nil {
				t.Fatal(err)
			}
			cfg := app.DefaultConfig()
			cfg.DataDir, cfg.Stdout = tc.setup(t, data), io.Discard
			cfg.Logger = slog.New(slog.DiscardHandler)
			a, err := app.Open(context.Background(), cfg)
			if err == nil {
				a.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error with %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(data, "master.key")); err == nil {
				t.Error("a master key was made in the refused folder")
			}
		})
	}
	// A folder its group may write to, the server's group (a container's
	// volume), is the server's.
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Lchown(data, os.Geteuid(), os.Getegid())
	os.Chmod(data, 0o770)
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Stdout, cfg.Logger = data, io.Discard, slog.New(slog.DiscardHandler)
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a folder the server's group may write to: %v", err)
	}
	a.Close()
}

// TestWitnessQuorumWarned: a server that counts a checkpoint witnessed
// with half its witnesses or fewer warns of it at start.
func TestWitnessQuorumWarned(t *testing.T) {
	for _, tc := range []struct {
		quorum int
		warns  bool
	}{{0, false}, {2, false}, {1, true}} {
		var logs testenv.SyncBuffer
		cfg := app.DefaultConfig()
		cfg.DataDir, cfg.Stdout = t.TempDir(), io.Discard
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		cfg.Witnesses, cfg.WitnessQuorum = []string{"http://127.0.0.1:9=" + witness1, "http://127.0.0.1:9=" + witness2}, tc.quorum
		a, err := app.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		if got := strings.Contains(logs.String(), "--witness-quorum is half the witnesses or fewer"); got != tc.warns {
			t.Errorf("a quorum of %d of 2: warned %v, want %v", tc.quorum, got, tc.warns)
		}
	}
}

// TestPlainHTTPBeyondThisMachine: a server that would take console
// sign-ins in plain HTTP from other machines warns of it; one whose
// public URL, which certificates carry, names every address and none,
// warns of that; and one whose certificates would name the OCSP responder
// and local CRLs at an https:// address, which relying parties fetch over
// HTTP, warns of that.
func TestPlainHTTPBeyondThisMachine(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		change                    func(*app.Config)
		warns, unreachable, https bool
	}{
		{"every address", func(c *app.Config) { c.Listen = "0.0.0.0:8080" }, true, true, false},
		{"no host", func(c *app.Config) { c.Listen = ":8080" }, true, true, false},
		{"a host name", func(c *app.Config) { c.Listen = "ca.example:8080" }, true, false, false},
		{"loopback", func(c *app.Config) { c.Listen = "127.0.0.1:8080" }, false, false, false},
		{"IPv6 loopback", func(c *app.Config) { c.Listen = "[::1]:8080" }, false, false, false},
		{"TLS", func(c *app.Config) { c.Listen, c.TLSSelfSigned = "0.0.0.0:8080", true }, false, true, true},
		{"TLS, revocation in plain HTTP", func(c *app.Config) {
			c.Listen, c.TLSSelfSigned, c.RevocationURL = "127.0.0.1:8080", true, "http://ocsp.example"
		}, false, false, false},
		{"a proxy that ends TLS", func(c *app.Config) { c.Listen, c.PublicURL = "0.0.0.0:8080", "https://ca.example" }, false, false, true},
		{"no console", func(c *app.Config) { c.Listen, c.NoConsole = "0.0.0.0:8080", true }, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.SyncBuffer
			cfg := app.DefaultConfig()
			cfg.DataDir, cfg.Stdout = t.TempDir(), io.Discard
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			tc.change(&cfg)
			a, err := app.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			for _, w := range []struct {
				what string
				want bool
			}{
				{"serving plain HTTP beyond this machine", tc.warns},
				{"names no address that they can reach", tc.unreachable},
				{"certificates will name the OCSP responder and local CRLs over HTTPS", tc.https},
			} {
				if got := strings.Contains(logs.String(), w.what); got != w.want {
					t.Errorf("warned %q: %v, want %v", w.what, got, w.want)
				}
			}
		})
	}
}

// TestSharedDatabaseNeedsSharedBucket: a server on PostgreSQL without S3
// would publish CRLs to a folder of its own, which the other servers of
// the database do not serve: it starts only if told it is alone.
func TestSharedDatabaseNeedsSharedBucket(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Stdout, cfg.Logger = t.TempDir(), io.Discard, slog.New(slog.DiscardHandler)
	cfg.Database = testenv.NewPostgresDB(t)
	if a, err := app.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--s3-endpoint") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("a server on PostgreSQL with a bucket of its own, unsaid: %v", err)
	}
	cfg.ObjectStore = "local"
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a server alone on PostgreSQL, said: %v", err)
	}
	a.Close()
}

// TestLeftoversOfACrash: what a process killed mid-write leaves in the
// data folder is mended at the next start: temporaries of whole-file
// writes (one may hold a new master key) go, and an empty node-id, which
// would have named the server "" as every other server left so, is made
// again.
func TestLeftoversOfACrash(t *testing.T) {
	env := testenv.Start(t)
	env.Stop(t)
	data := env.Config.DataDir
	leftovers := []string{filepath.Join(data, ".seal-1234"), filepath.Join(data, "tls", ".seal-5678")}
	if err := os.MkdirAll(filepath.Join(data, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		if err := os.WriteFile(f, []byte("a key in the clear\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "node-id"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	for _, f := range leftovers {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after a start: %v", f, err)
		}
	}
	if id, err := os.ReadFile(filepath.Join(data, "node-id")); err != nil || len(bytes.TrimSpace(id)) == 0 {
		t.Errorf("node-id after a start: %q, %v", id, err)
	}
}

// TestUnreadablePolicyWarned: a start warns of a key whose stored policy
// this version no longer reads, which denies all its requests, and of one
// whose policy names what is no action of this server, which an earlier
// version took, and which grants and denies nothing.
func TestUnreadablePolicyWarned(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	_, key := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "old",
		Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:*"}}`})
	_, misspelt := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "misspelt",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},{"Effect":"Deny","Action":"acmpca:RevokeCertificate","Resource":"*"}]}`})
	env.Restart(t)
	for warning, k := range map[string]string{"policy no longer reads": key, "names what is no action of this server": misspelt} {
		if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool { return strings.Contains(l, warning) && strings.Contains(l, "key="+k) }) {
			t.Errorf("no warning of key %s's policy (%s):\n%s", k, warning, logs.String())
		}
	}
}

// TestUnreadableCAPolicyWarned: a CA's stored policy that this version
// no longer takes shares the CA with no account, and the operator hears
// of it at the start and at each refusal; the other account sees only a
// CA not found. A CA whose policy is taken is not named. Not taken: one
// that does not read (naming a member twice, which an earlier version
// took), and one that reads but that PutPolicy would refuse now (a
// pattern that came to match an action a CA cannot share as actions were
// added, or a policy written to the database by hand).
func TestUnreadableCAPolicyWarned(t *testing.T) {
	const other = "444455556666"
	share := func(ca, action string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + other + `"},"Resource":"` + ca +
			`","Action":["acm-pca:DescribeCertificateAuthority",` + action + `]}]}`
	}
	for _, tc := range []struct {
		name  string
		store func(ca string) string // the policy written to the database
	}{
		{"member named twice", func(ca string) string {
			return strings.Replace(share(ca, `"acm-pca:GetCertificate"`), `"Effect":"Allow"`, `"Effect":"Allow","Effect":"Allow"`, 1)
		}},
		// acm-pca:*tAudit* matched only the audit log's three actions
		// before ListAuditReports was added.
		{"pattern matching an action added since", func(ca string) string { return share(ca, `"acm-pca:*tAudit*"`) }},
		{"action a CA cannot share", func(ca string) string { return share(ca, `"acm-pca:DeleteCertificateAuthority"`) }},
		{"every action", func(ca string) string { return share(ca, `"acm-pca:*"`) }},
		{"a Deny", func(ca string) string {
			return strings.Replace(share(ca, `"acm-pca:GetCertificate"`), `}]}`, `},{"Effect":"Deny","Principal":{"AWS":"`+other+`"},"Resource":"`+ca+`","Action":"acm-pca:GetCertificate"}]}`, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			var logs testenv.SyncBuffer
			env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			client, _ := env.NewAccount(t, other)
			readable, unreadable := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "readable"), env.CreateCA(t, types.CertificateAuthorityTypeRoot, "unreadable")
			for _, ca := range []string{readable, unreadable} {
				if _, err := env.Client.PutPolicy(ctx, &acmpca.PutPolicyInput{ResourceArn: &ca, Policy: aws.String(share(ca, `"acm-pca:GetCertificate"`))}); err != nil {
					t.Fatal(err)
				}
				if _, err := client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &ca}); err != nil {
					t.Fatalf("the other account, on %s shared with it: %v", ca, err)
				}
			}
			if _, err := env.DB(t).ExecContext(ctx, `UPDATE certificate_authorities SET policy = ? WHERE arn = ?`, tc.store(unreadable), unreadable); err != nil {
				t.Fatal(err)
			}
			before := len(logs.String())
			env.Restart(t)
			client, _ = env.NewKey(t, other) // the restarted server listens elsewhere
			const warning = "certificate authority's policy is no longer one this version takes"
			start := logs.String()[before:]
			if !strings.Contains(start, warning) || !strings.Contains(start, "ca="+unreadable) || strings.Contains(start, readable) {
				t.Errorf("the start's warnings, of %s's policy and not %s's:\n%s", unreadable, readable, start)
			}
			if _, err := client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &readable}); err != nil {
				t.Errorf("the other account, on %s: %v", readable, err)
			}
			_, err := client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &unreadable})
			if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
				t.Errorf("the other account, on %s whose policy is not taken: %v, want ResourceNotFoundException", unreadable, err)
			}
			_, err = client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &unreadable, Status: types.CertificateAuthorityStatusDisabled})
			if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
				t.Errorf("the other account's UpdateCertificateAuthority of %s whose policy is not taken: %v, want ResourceNotFoundException", unreadable, err)
			}
			if refusal := logs.String()[before+len(start):]; !strings.Contains(refusal, warning) || !strings.Contains(refusal, "account="+other) {
				t.Errorf("the refusal's warning:\n%s", refusal)
			}
		})
	}
}

// TestKeyIDsNoKeyHas: a request that names an access key id no key can
// have (not UTF-8) is UnrecognizedClientException on either store,
// without a line at ERROR: PostgreSQL refused the string, and that was an
// internal failure anyone could cause without a secret. Nor does the
// store see a NUL, which a console sign-in can send and a header cannot.
func TestKeyIDsNoKeyHas(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var logs testenv.SyncBuffer
			env := testenv.Start(t, func(c *app.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				if store == "postgres" {
					c.Database, c.ObjectStore = testenv.NewPostgresDB(t), "local"
				}
			})
			for _, id := range []string{"OPCA\xff\xfe", "\xc0\xafOPCA"} {
				now := time.Now().UTC().Format("20060102T150405Z")
				req, _ := http.NewRequest(http.MethodPost, env.URL, strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
				req.Header.Set("X-Amz-Date", now)
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+id+"/"+now[:8]+"/us-east-1/acm-pca/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("0", 64))
				res, err := env.Transport().RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if got := res.Header.Get("X-Amzn-ErrorType"); res.StatusCode != http.StatusBadRequest || got != "UnrecognizedClientException" {
					t.Errorf("key id %q: %d %s, want 400 UnrecognizedClientException", id, res.StatusCode, got)
				}
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("lines at ERROR:\n%s", logs.String())
			}
			a, err := app.OpenAdmin(t.Context(), env.Config)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for _, id := range []string{"OPCA\x00X", "OPCA\xff"} {
				if _, err := (auth.Keys{Store: a.Store, Sealer: a.Sealer}).Secret(t.Context(), id); !errors.Is(err, sigv4.ErrUnknownKey) {
					t.Errorf("the secret of key %q: %v, want sigv4.ErrUnknownKey", id, err)
				}
			}
		})
	}
}

// TestCommandsFollowNoLinks: an operator's command, often run as root on
// the folder of the server's user, follows no link that user could have
// put in place of a file it opens by name (it made the linked file 0600,
// or migrated another SQLite database), and restores into no folder
// others may write to; it leaves what a link points at as it was.
func TestCommandsFollowNoLinks(t *testing.T) {
	env := testenv.Start(t)
	backup := backupOf(t, env)
	env.Stop(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"openpca.db-shm", "lock"} {
		t.Run("a link as "+name, func(t *testing.T) {
			path := filepath.Join(env.Config.DataDir, name)
			os.Remove(path)
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			if a, err := app.OpenAdmin(context.Background(), env.Config); err == nil || !strings.Contains(err.Error(), "link") {
				if a != nil {
					a.Close()
				}
				t.Errorf("a command on a folder with a link as %s: %v", name, err)
			}
			if fi, err := os.Stat(victim); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("what the link points at: %v, %v", fi, err)
			}
		})
	}
	t.Run("root's command on a folder its group may write to", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a folder to another group takes root, as CI runs")
		}
		fi, _ := os.Stat(env.Config.DataDir)
		os.Lchown(env.Config.DataDir, -1, 65534)
		os.Chmod(env.Config.DataDir, 0o770)
		defer os.Chmod(env.Config.DataDir, fi.Mode().Perm())
		a, err := app.OpenAdmin(context.Background(), env.Config)
		if err != nil {
			t.Fatalf("root's command on a folder of mode 0770 of another group: %v", err)
		}
		a.Close()
	})
	t.Run("a restore through a link", func(t *testing.T) {
		cfg := env.Config
		cfg.DataDir = t.TempDir()
		cfg.MasterKeyFile = filepath.Join(env.Config.DataDir, "master.key")
		made := filepath.Join(t.TempDir(), "made")
		if err := os.Symlink(made, filepath.Join(cfg.DataDir, "lock")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{}); err == nil {
			t.Error("restored into a folder with a link as its lock")
		}
		if _, err := os.Lstat(made); !os.IsNotExist(err) {
			t.Errorf("the restore made the file its lock links to: %v", err)
		}
	})
	t.Run("a restore into a folder others may write to", func(t *testing.T) {
		cfg := env.Config
		cfg.DataDir = t.TempDir()
		cfg.MasterKeyFile = filepath.Join(env.Config.DataDir, "master.key")
		os.Chmod(cfg.DataDir, 0o777)
		if _, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{}); err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Errorf("a restore into a folder of mode 0777: %v", err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "openpca.db")); !os.IsNotExist(err) {
			t.Errorf("it restored: %v", err)
		}
	})
}

// earlierSchema makes the data folder of a stopped server whose database
// looks of an earlier version (its last migration's row taken out), and
// returns it, the database, and the last migration's number.
func earlierSchema(t *testing.T) (*testenv.Env, *sql.DB, int) {
	t.Helper()
	env := testenv.Start(t)
	env.Stop(t)
	db := env.DB(t)
	var latest int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = ?`, latest); err != nil {
		t.Fatal(err)
	}
	return env, db, latest
}

// TestCommandsOnAnEarlierSchema: on a database of an earlier version (a
// server of that version may still run on it), a command refuses rather
// than migrate it, and a backup copies it as it is, so that it can be
// backed up before the new server migrates it.
func TestCommandsOnAnEarlierSchema(t *testing.T) {
	env, db, latest := earlierSchema(t)
	if a, err := app.OpenAdmin(context.Background(), env.Config); err == nil || !strings.Contains(err.Error(), "earlier version") {
		if a != nil {
			a.Close()
		}
		t.Errorf("a command on an earlier schema: %v", err)
	}
	a, _, err := app.Backup(context.Background(), env.Config, filepath.Join(t.TempDir(), "openpca.backup"))
	if err != nil {
		t.Fatalf("a backup of an earlier schema: %v", err)
	}
	a.Close()
	var now int
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&now)
	if now != latest-1 {
		t.Errorf("the schema went from %d to %d", latest-1, now)
	}
}

// TestRefusedStartLeavesTheSchema: a server refused for its master key or
// its TLS files refuses before it migrates a database of an earlier
// version, which servers of that version may still be running on. (The
// migration here would fail, its row taken out of a database that has
// it: the refusal must come first.)
func TestRefusedStartLeavesTheSchema(t *testing.T) {
	env, db, latest := earlierSchema(t)
	other := make([]byte, 32)
	rand.Read(other)
	for _, tc := range []struct {
		name, want string
		change     func(*app.Config)
	}{
		{"another master key", "master key is not the one", func(c *app.Config) { c.MasterKey = base64.StdEncoding.EncodeToString(other) }},
		{"no TLS certificate", "TLS certificate", func(c *app.Config) { c.TLSCertFile, c.TLSKeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem" }},
		{"a self-signed TLS CA that does not open", "TLS CA", func(c *app.Config) {
			c.TLSSelfSigned, c.Listen, c.PublicURL = true, "127.0.0.1:0", "https://127.0.0.1"
			dir := filepath.Join(c.DataDir, "tls")
			if err := errors.Join(os.MkdirAll(dir, 0o700), os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not PEM"), 0o600),
				os.WriteFile(filepath.Join(dir, "ca.key.sealed"), []byte("not sealed"), 0o600)); err != nil {
				t.Fatal(err)
			}
		}},
		{"an audit key in a token not configured", "audit key is in the pkcs11 store", func(*app.Config) {
			if _, err := db.Exec(`UPDATE settings SET value = ? WHERE name = ?`, `{"keyStore":"pkcs11","keyLabel":"openpca-audit-1"}`, auditlog.KeySetting); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		cfg := env.Config
		tc.change(&cfg)
		if a, err := app.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			if a != nil {
				a.Close()
			}
			t.Errorf("a server with %s on an earlier schema: %v", tc.name, err)
		}
	}
	var now int
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&now)
	if now != latest-1 {
		t.Errorf("the schema went from %d to %d", latest-1, now)
	}
}

// TestSupersededByALaterVersion: a server whose database a later version
// migrates while it runs says so, and must stop; its janitor stops.
func TestSupersededByALaterVersion(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Stdout, cfg.Logger = filepath.Join(t.TempDir(), "data"), io.Discard, slog.New(slog.DiscardHandler)
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "openpca.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ((SELECT MAX(version) + 1 FROM schema_migrations), 0)`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.Superseded():
		if !strings.Contains(err.Error(), "later version") {
			t.Errorf("superseded: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a server ran on for 30 s on a database a later version migrated")
	}
}

// TestHandshakeRate: over TLS, an address that opens connections faster
// than --max-handshake-rate-per-network has those past it closed before
// their handshake (one address had a server make 4,200 handshakes a
// second, a red-team's finding); over plain HTTP, where a connection
// costs no handshake, it is not bounded.
func TestHandshakeRate(t *testing.T) {
	for _, overTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("TLS %v", overTLS), func(t *testing.T) {
			env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned, c.MaxHandshakeRatePerNetwork = overTLS, 5 })
			client := &http.Client{Transport: env.Transport().Clone()}
			client.Transport.(*http.Transport).DisableKeepAlives = true
			refused := 0
			for range 20 {
				res, err := client.Get(env.URL + "/healthz")
				if err != nil {
					refused++
					continue
				}
				res.Body.Close()
			}
			if got := refused > 0; got != overTLS {
				t.Errorf("%d of 20 connections opened at once refused; want some: %v", refused, overTLS)
			}
		})
	}
}

// TestSelfSignedNamesThePublicURL: the self-signed certificate names the
// public URL's host, a name or an address, where clients reach the
// server: it named the listen address, localhost and the loopback
// addresses alone, and a client that followed the public URL refused it
// (a red-team's finding).
func TestSelfSignedNamesThePublicURL(t *testing.T) {
	for _, tc := range []struct {
		host  string
		named bool
	}{
		{"pca.example.test", true}, {"192.0.2.7", true}, {"[2001:db8::7]", true},
		// Neither an address of none, as the default public URL of a
		// server on every address is, nor a name a certificate cannot
		// hold as it is (the server did not start).
		{"0.0.0.0", false}, {"bücher.example", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			env := testenv.Start(t, func(c *app.Config) { c.TLSSelfSigned, c.PublicURL = true, "https://"+tc.host+":8443" })
			config := env.Transport().TLSClientConfig.Clone()
			config.ServerName = strings.Trim(tc.host, "[]")
			c, err := tls.Dial("tcp", strings.TrimPrefix(env.URL, "https://"), config)
			if err == nil {
				c.Close()
			}
			if named := err == nil; named != tc.named {
				t.Errorf("a client that reaches the server as %s: %v; want the certificate to name it: %v", tc.host, err, tc.named)
			}
		})
	}
}

// TestSelfSignedRenewed: the self-signed TLS certificate, issued for a
// year, is issued again once it ends within a month, without a restart.
func TestSelfSignedRenewed(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) {
		c.TLSSelfSigned, c.Logger = true, slog.New(slog.NewTextHandler(&logs, nil))
	})
	served := func() *x509.Certificate {
		c, err := tls.Dial("tcp", strings.TrimPrefix(env.URL, "https://"), env.Transport().TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	first := served()
	res, err := (&http.Client{Transport: env.Transport()}).Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	_, value, _ := strings.Cut(string(metrics), "\nopenpca_tls_certificate_expiry_timestamp_seconds ")
	value, _, _ = strings.Cut(value, "\n")
	if got, err := strconv.ParseFloat(value, 64); err != nil || int64(got) != first.NotAfter.Unix() {
		t.Errorf("the expiry metric says %q, want %d", value, first.NotAfter.Unix())
	}
	env.Clock.Advance(300 * 24 * time.Hour)
	time.Sleep(6 * time.Second) // past the janitor's look
	if got := served(); !got.Equal(first) {
		t.Fatalf("a certificate ending in %v was issued again", time.Until(first.NotAfter)-300*24*time.Hour)
	}
	env.Clock.Advance(40 * 24 * time.Hour)
	for deadline := time.Now().Add(20 * time.Second); served().Equal(first); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the self-signed certificate ending %v was not issued again a month before", first.NotAfter)
		}
	}
	// The clock stays ahead, so each look issues it again; once that
	// fails, it is tried again hourly, not at each look.
	if err := os.WriteFile(filepath.Join(env.Config.DataDir, "tls", "ca.key.sealed"), []byte("not sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(11 * time.Second) // two looks or more
	if n := strings.Count(logs.String(), "issuing the self-signed TLS certificate again"); n != 1 {
		t.Errorf("%d failures to issue it again logged in 11 s, want 1:\n%s", n, logs.String())
	}
}

// TestIdempotencyTokensExpire: a server removes idempotency tokens once
// past their window and a clock step: they answer nothing then, and were
// kept for good before.
func TestIdempotencyTokensExpire(t *testing.T) {
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Tokens Root")
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, IdempotencyToken: aws.String("once"),
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "token.example"}}).CSRPEM})
	tokens := func() (n int) {
		t.Helper()
		env.Stop(t)
		if err := env.DB(t).QueryRow(`SELECT COUNT(*) FROM idempotency_tokens WHERE operation LIKE 'IssueCertificate:%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},
		{authority.IdempotencyWindow + openpca.ClockStep - time.Minute, 1}, // the janitor looks at start
		{2 * time.Minute, 0},
	} {
		env.Clock.Advance(step.advance)
		if step.advance > 0 {
			env.Restart(t)
		}
		if n := tokens(); n != step.want {
			t.Errorf("%v on: %d tokens, want %d", step.advance, n, step.want)
		}
	}
}

// TestClockOffDatabaseWarned: a server on PostgreSQL, which servers share,
// measures its clock against the database's, every 5 s: it warns once
// when it is off by more than a second, says so once when it agrees again,
// and exports the offset as a metric. On SQLite, on the server's machine,
// there is nothing to measure, and no metric.
func TestClockOffDatabaseWarned(t *testing.T) {
	const warning, agreed = "this server's clock is off the database's", "this server's clock agrees with the database's again"
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var logs testenv.SyncBuffer
			var behind atomic.Int64
			env := testenv.Start(t, func(c *app.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				c.Now = func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
				if store == "postgres" {
					c.Database, c.ObjectStore = testenv.NewPostgresDB(t), "local"
				}
			})
			offset := func() (float64, bool) {
				res, err := (&http.Client{Transport: env.Transport()}).Get(env.URL + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				metrics, _ := io.ReadAll(res.Body)
				_, value, found := strings.Cut(string(metrics), "\nopenpca_database_clock_offset_seconds ")
				value, _, _ = strings.Cut(value, "\n")
				got, _ := strconv.ParseFloat(value, 64)
				return got, found
			}
			if got, found := offset(); found != (store == "postgres") || math.Abs(got) > 0.5 {
				t.Errorf("at start, the offset metric: %v (exported: %v)", got, found)
			}
			if store == "sqlite" {
				return // no clock but the server's to measure against
			}
			behind.Store(int64(10 * time.Second))
			wait := func(what string, done func() bool) {
				t.Helper()
				for deadline := time.Now().Add(15 * time.Second); !done(); time.Sleep(100 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s, 15 s on:\n%s", what, logs.String())
					}
				}
			}
			wait("no warning of a clock 10 s behind", func() bool { return strings.Contains(logs.String(), warning) })
			if got, _ := offset(); got < 9.5 || got > 10.5 {
				t.Errorf("the database 10 s ahead, the offset metric says %v", got)
			}
			behind.Store(0)
			wait("no word of the clock agreeing again", func() bool { return strings.Contains(logs.String(), agreed) })
			if n := strings.Count(logs.String(), warning); n != 1 {
				t.Errorf("%d warnings of the clock, want 1:\n%s", n, logs.String())
			}
		})
	}
}

// TestKeyStoreMissingWarned: a server started without the key store its
// CAs' keys are in says so at start, with how many CAs cannot sign on it,
// instead of answering their requests ServiceUnavailable unexplained.
func TestKeyStoreMissingWarned(t *testing.T) {
	k := testenv.StartKMS(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, k.Use(t), func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	env.CreateCA(t, types.CertificateAuthorityTypeRoot, "In KMS")
	// A deleted CA signs nothing: not counted.
	deleted := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Deleted, in KMS")
	if _, err := env.Client.DeleteCertificateAuthority(context.Background(), &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &deleted}); err != nil {
		t.Fatal(err)
	}
	const warning = "CAs keep their keys in a key store this server is not configured with"
	if strings.Contains(logs.String(), warning) {
		t.Fatalf("warned with the store configured:\n%s", logs.String())
	}
	env.Config.KeyStore, env.Config.KMSEndpoint = "software", ""
	env.Restart(t)
	if line := logs.Line(warning); !strings.Contains(line, "key_store=kms") || !strings.Contains(line, "cas=1") {
		t.Errorf("no warning of the CA whose key is in KMS, which the server lacks: %q", line)
	}
}
