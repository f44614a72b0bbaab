package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/smallfile"
	"github.com/openpca/openpca/internal/testenv"
)

// TestAdminRefusesForeignMasterKey runs the operator commands on a
// server's data folder with a master key other than the one its database
// was set up with: each refuses, as serve does, and writes nothing.
func TestAdminRefusesForeignMasterKey(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	other := make([]byte, 32)
	rand.Read(other)
	foreign := base64.StdEncoding.EncodeToString(other)
	for _, args := range [][]string{
		{"keys", "create", "--account", app.DefaultAccountID},
		{"keys", "list"},
		{"keys", "revoke", testenv.AccessKeyID},
		{"accounts", "create", "--id", "999988887777"},
	} {
		out, err := runOpenpca(t, append(args, "--data-dir", data, "--master-key", foreign)...)
		if err == nil || !strings.Contains(err.Error(), "master key") {
			t.Errorf("openpca %s with a foreign master key: %v\n%s", strings.Join(args, " "), err, out)
		}
		// A secret on the command line is warned of: ps shows it.
		if !strings.Contains(out, "WARNING: --master-key on the command line") {
			t.Errorf("openpca %s with --master-key: no warning:\n%s", strings.Join(args, " "), out)
		}
	}
	out, err := runOpenpca(t, "keys", "list", "--data-dir", data)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "active") {
		t.Errorf("after the refused commands, the keys are:\n%s", out)
	}
	if out, _ := runOpenpca(t, "accounts", "list", "--data-dir", data); strings.Contains(out, "999988887777") {
		t.Errorf("an account was created with a foreign master key:\n%s", out)
	}
}

// TestBucketsCommand gives a bucket to an account, with its flags after
// its argument as the README writes it, and takes it back.
func TestBucketsCommand(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	if _, err := runOpenpca(t, "accounts", "create", "--id", "222233334444", "--data-dir", data); err != nil {
		t.Fatal(err)
	}
	if out, err := runOpenpca(t, "buckets", "create", "team-b", "--account", "222233334444", "--data-dir", data); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(data, "s3", "team-b")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("the bucket's folder: %v, %v", fi, err)
	}
	if out, err := runOpenpca(t, "buckets", "create", "team-b", "--account", app.DefaultAccountID, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "belongs to account 222233334444") {
		t.Errorf("giving another account's bucket: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "buckets", "create", "s3-only", "--account", "222233334444", "--object-store", "s3", "--data-dir", data); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "s3", "s3-only")); !os.IsNotExist(err) {
		t.Errorf("a bucket of an S3 server got a local folder: %v", err)
	}
	out, err := runOpenpca(t, "buckets", "list", "--data-dir", data)
	if err != nil || !regexp.MustCompile(`(?m)^s3-only\s+222233334444\s`).MatchString(out) || !regexp.MustCompile(`(?m)^team-b\s+222233334444\s`).MatchString(out) {
		t.Errorf("buckets list: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "buckets", "remove", "team-b", "--data-dir", data); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// A bucket where a CA publishes its CRLs stays its account's.
	if err := os.MkdirAll(filepath.Join(data, "s3", "crls"), 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := env.NewActiveRoot(t, "Publishes")
	if _, err := env.Client.UpdateCertificateAuthority(t.Context(), &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca,
		RevocationConfiguration: &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true), S3BucketName: aws.String("crls")}}}); err != nil {
		t.Fatal(err)
	}
	if out, err := runOpenpca(t, "buckets", "create", "crls", "--account", "222233334444", "--data-dir", data); err == nil ||
		!strings.Contains(err.Error(), "CA "+ca+" of account "+app.DefaultAccountID+" publishes its CRLs to bucket crls") {
		t.Errorf("giving away a bucket a CA publishes to: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "buckets", "create", "Not_A_Bucket", "--account", "222233334444", "--data-dir", data); err == nil {
		t.Errorf("an invalid bucket name was accepted:\n%s", out)
	}
}

// TestPolicyCommands attaches, lists and detaches a key's policies, and
// refuses what would leave a key other than the operator meant.
func TestPolicyCommands(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	dir := t.TempDir()
	issuer := filepath.Join(dir, "issuer.json")
	os.WriteFile(issuer, []byte(`{"Version":"2012-10-17","Statement":{"Sid":"Issue","Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"*"}}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"Statement":{"Effect":"Allow","Action":"acm-pca:*"}}`), 0o600)

	out, err := runOpenpca(t, "keys", "create", "--account", app.DefaultAccountID, "--policy", issuer, "--read-only", "--data-dir", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	key := strings.TrimPrefix(strings.Split(out, "\n")[0], "AWS_ACCESS_KEY_ID=")
	run := func(args ...string) (string, error) { return runOpenpca(t, append(args, "--data-dir", data)...) }
	if out, _ := run("keys", "list"); !regexp.MustCompile(key + `\s.*\sissuer,ReadOnly\s+active`).MatchString(out) {
		t.Errorf("keys list:\n%s", out)
	}
	// A policy an earlier version stored that this one no longer reads
	// (with a policy variable) is marked: the server refuses the key.
	_, stale := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "old",
		Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:*"}}`})
	if out, _ := run("keys", "list"); !regexp.MustCompile(stale+`\s.*\sold\s+denied: its policy no longer reads`).MatchString(out) ||
		!regexp.MustCompile(key+`\s.*\sactive`).MatchString(out) {
		t.Errorf("keys list, with %s's policy unreadable:\n%s", stale, out)
	}
	if _, err := run("keys", "create", "--account", app.DefaultAccountID, "--policy", bad); err == nil || !strings.Contains(err.Error(), "Resource or NotResource is required") {
		t.Errorf("a key with an invalid policy: %v", err)
	}
	// An action of no service of this server's, or misspelt, grants
	// nothing, and a Deny of it denies nothing.
	for _, action := range []string{"acmpca:RevokeCertificate", "acm-pca:RevokeCertificates", "s3:*", "acm-pca:Revoke?"} {
		misspelt := filepath.Join(dir, "misspelt.json")
		os.WriteFile(misspelt, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
			{"Sid":"NoRevoking","Effect":"Deny","NotAction":"`+action+`","Resource":"*"}]}`), 0o600)
		if _, err := run("policy", "attach", key, "--file", misspelt); err == nil || !strings.Contains(err.Error(), "NoRevoking: "+action+" is no action of this server") {
			t.Errorf("a policy with the action %s: %v", action, err)
		}
	}
	if out, err := run("policy", "list", key); err != nil || !strings.Contains(out, "issuer (inline)") || !strings.Contains(out, "ReadOnly (managed)") || !strings.Contains(out, `"acm-pca:Get*"`) {
		t.Errorf("policy list: %v\n%s", err, out)
	}
	if _, err := run("policy", "attach", key, "--managed", "NoSuchPolicy"); err == nil {
		t.Error("attached a managed policy that does not exist")
	}
	if _, err := run("policy", "attach", key, "--file", issuer, "--name", "ReadOnly"); err == nil {
		t.Error("an inline policy took a managed policy's name")
	}
	if out, err := run("policy", "detach", key, "issuer"); err != nil || !strings.Contains(out, "its policies: ReadOnly") {
		t.Errorf("detach: %v\n%s", err, out)
	}
	if _, err := run("policy", "detach", key, "ReadOnly"); err == nil || !strings.Contains(err.Error(), "--leave-full-access") {
		t.Errorf("detaching the last policy: %v", err)
	}
	if out, err := run("policy", "detach", key, "ReadOnly", "--leave-full-access"); err != nil || !strings.Contains(out, "its policies: full") {
		t.Errorf("detaching the last policy, on purpose: %v\n%s", err, out)
	}
	if out, err := run("policy", "simulate", key, "--action", "DeleteCertificateAuthority", "--resource", "*"); err != nil || !strings.HasPrefix(out, "allowed") {
		t.Errorf("simulate for a key without policies: %v\n%s", err, out)
	}

	// simulate gives an IssueCertificate the template the server gives a
	// request that names none.
	endEntity := filepath.Join(dir, "end-entity.json")
	os.WriteFile(endEntity, []byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:IssueCertificate","Resource":"*",
		"Condition":{"StringEquals":{"acm-pca:TemplateArn":"arn:aws:acm-pca:::template/EndEntityCertificate/V1"}}}}`), 0o600)
	if out, err = run("keys", "create", "--account", app.DefaultAccountID, "--policy", endEntity); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	issuing := strings.TrimPrefix(strings.Split(out, "\n")[0], "AWS_ACCESS_KEY_ID=")
	ca, _ := env.NewActiveRoot(t, "Simulated")
	if out, err := run("policy", "simulate", issuing, "--action", "IssueCertificate", "--resource", ca); err != nil || !strings.HasPrefix(out, "allowed") ||
		!strings.Contains(out, "acm-pca:templatearn is arn:aws:acm-pca:::template/EndEntityCertificate/V1, as for a request that names no template") {
		t.Errorf("simulate IssueCertificate without a template: %v\n%s", err, out)
	}
	if out, err := run("policy", "simulate", issuing, "--action", "IssueCertificate", "--resource", ca,
		"--context", "acm-pca:TemplateArn=arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"); err != nil || !strings.HasPrefix(out, "denied") {
		t.Errorf("simulate IssueCertificate with another template: %v\n%s", err, out)
	}
	// aws:RequestedRegion is the server's: the CA's, --region's, or the
	// default one.
	perimeter := filepath.Join(dir, "perimeter.json")
	os.WriteFile(perimeter, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
		{"Effect":"Deny","Action":"acm-pca:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`), 0o600)
	if out, err = run("keys", "create", "--account", app.DefaultAccountID, "--policy", perimeter); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fenced := strings.TrimPrefix(strings.Split(out, "\n")[0], "AWS_ACCESS_KEY_ID=")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--action", "ListCertificateAuthorities"}, "allowed"},
		{[]string{"--action", "DescribeCertificateAuthority", "--resource", ca}, "allowed"},
		{[]string{"--action", "ListCertificateAuthorities", "--region", "eu-west-1"}, "denied"},
	} {
		if out, err := run(append([]string{"policy", "simulate", fenced}, tc.args...)...); err != nil || !strings.HasPrefix(out, tc.want) {
			t.Errorf("simulate %v in a region perimeter: %v\n%s", tc.args, err, out)
		}
	}

	// A creation is decided on the account's CAs in the server's region,
	// by simulate as by the server, whichever way the policies go.
	creation := openpca.CAARN(env.Config.Region, app.DefaultAccountID, "*")
	for _, tc := range []struct {
		doc, want string
	}{
		{`{"Effect":"Allow","Action":"acm-pca:CreateCertificateAuthority","Resource":"` + creation + `"}`, "allowed"},
		{`[{"Effect":"Allow","Action":"acm-pca:*","Resource":"*"},
			{"Effect":"Deny","Action":"acm-pca:CreateCertificateAuthority","Resource":"arn:aws:acm-pca:*:*:certificate-authority/*"}]`, "denied"},
	} {
		client, creator := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "creation", Document: `{"Version":"2012-10-17","Statement":` + tc.doc + `}`})
		_, err := client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Created")})
		if (err == nil) != (tc.want == "allowed") {
			t.Errorf("the server, for a key whose policy is %s: %v", tc.doc, err)
		}
		for _, resource := range []string{"*", creation} {
			if out, err := run("policy", "simulate", creator, "--action", "CreateCertificateAuthority", "--resource", resource); err != nil || !strings.HasPrefix(out, tc.want+": acm-pca:CreateCertificateAuthority on "+creation) {
				t.Errorf("simulate a creation on %s, for a key whose policy is %s: %v\n%s", resource, tc.doc, err, out)
			}
		}
	}
	if out, err := run("policy", "simulate", key, "--action", "CreateCertificateAuthority", "--resource", "arn:aws:acm-pca:us-east-1:444455556666:certificate-authority/*"); err == nil {
		t.Errorf("simulate a creation in another account: %s", out)
	}

	// A CA deleted, whose restoration period ended, is none, as to the
	// server.
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &ca, Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &ca, PermanentDeletionTimeInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.DB(t).Exec(`UPDATE certificate_authorities SET restorable_until = ? WHERE arn = ?`, time.Now().Add(-time.Hour).UnixMicro(), ca); err != nil {
		t.Fatal(err)
	}
	if out, err := run("policy", "simulate", issuing, "--action", "IssueCertificate", "--resource", ca); err == nil || !strings.Contains(err.Error(), "restoration period has ended") {
		t.Errorf("simulate on a CA past its restoration period: %v\n%s", err, out)
	}
}

// TestCasList shows where each CA's key is: in software, or in a token.
func TestCasList(t *testing.T) {
	hsm := testenv.NewSoftHSM(t)
	env := testenv.Start(t, func(c *app.Config) { c.PKCS11 = hsm.Config() })
	soft := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "In software")
	env.Stop(t)
	env.Config.KeyStore = "pkcs11"
	env.Restart(t)
	hard := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "In the token")
	out, err := runOpenpca(t, "cas", "list", "--data-dir", env.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(soft)+`\s+PENDING_CERTIFICATE\s+software\s+sealed with the master key\s+none`).MatchString(out) ||
		!regexp.MustCompile(regexp.QuoteMeta(hard)+`\s+PENDING_CERTIFICATE\s+pkcs11\s+`+hard[strings.LastIndex(hard, "/")+1:]+`\s+none`).MatchString(out) {
		t.Errorf("openpca cas list:\n%s", out)
	}
}

// TestDatabasePasswordOnTheCommandLine: a database address with a password
// given as a flag is warned of; one without is not.
func TestDatabasePasswordOnTheCommandLine(t *testing.T) {
	for address, warns := range map[string]bool{
		"postgres://openpca:secret@127.0.0.1:1/openpca?connect_timeout=1":          true,
		"postgres://openpca@127.0.0.1:1/openpca?connect_timeout=1&password=secret": true,
		"postgres://openpca@127.0.0.1:1/openpca?connect_timeout=1":                 false,
	} {
		out, _ := runOpenpca(t, "keys", "list", "--data-dir", t.TempDir(), "--database", address)
		if got := strings.Contains(out, "WARNING: --database on the command line"); got != warns {
			t.Errorf("%s: warned %v, want %v:\n%s", address, got, warns, out)
		}
	}
}

// TestOperatorLog: each command that changes accounts, keys, their
// policies, buckets or the master key is in the operator log, with who ran
// it and what it changed, and never a secret; commands that only read are
// not.
func TestOperatorLog(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	run := func(args ...string) string {
		t.Helper()
		out, err := runOpenpca(t, append(args, "--data-dir", data)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	t.Setenv("SUDO_USER", "alice\x1b[2J\u202e\u009b")
	account := strings.TrimSpace(run("accounts", "create", "--name", "team-a"))
	created := strings.Split(run("keys", "create", "--account", account), "\n")
	key := strings.TrimPrefix(created[0], "AWS_ACCESS_KEY_ID=")
	secret := strings.TrimPrefix(created[1], "AWS_SECRET_ACCESS_KEY=")
	run("policy", "attach", key, "--managed", "ReadOnly")
	run("keys", "list")
	run("buckets", "create", "team-a-reports", "--account", account)
	run("buckets", "remove", "team-a-reports")
	run("keys", "revoke", key)
	env.Stop(t)
	if out := run("master-key", "rotate"); !strings.Contains(out, "Backups made before now open only with the old key") {
		t.Errorf("a rotation does not say what becomes of earlier backups:\n%s", out)
	}

	log := run("operator-log")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	want := []struct{ command, what string }{
		{"master-key rotate", "resealed"},
		{"keys revoke", "key " + key},
		{"buckets remove", "bucket team-a-reports"},
		{"buckets create", "bucket team-a-reports of account " + account},
		{"policy attach", "key " + key + ": policy ReadOnly (managed); its policies now: ReadOnly"},
		{"keys create", "key " + key + " of account " + account + ", policies: none (full access to its account)"},
		{"accounts create", "account " + account + `, named "team-a"`},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("the operator log has %d lines, want a header and %d:\n%s", len(lines), len(want), log)
	}
	who := strings.NewReplacer("\x1b", "", "\u202e", "", "\u009b", "").Replace(osUser()) // as the log prints it
	for i, w := range want {
		if l := lines[i+1]; !strings.Contains(l, " "+who+" ") || !strings.Contains(l, w.command) || !strings.Contains(l, w.what) {
			t.Errorf("line %d of the operator log is %q, want %s by %s: %s", i+1, l, w.command, who, w.what)
		}
	}
	if strings.Contains(log, secret) {
		t.Error("the operator log holds a key's secret")
	}
	if strings.ContainsAny(log, "\x1b\u202e\u009b") || !strings.Contains(log, "(sudo by alice[2J)") {
		t.Errorf("the operator log writes a control or format character, or not sudo's user:\n%q", log)
	}
	if lines := strings.Split(strings.TrimSpace(run("operator-log", "--limit", "1")), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "master-key rotate") {
		t.Errorf("the operator log's latest action: %q", lines)
	}
}

// TestStartRetriesCRLs: a start ends the waits of CRLs whose writes
// failed (the restart is often what mended them), and leaves other
// servers' holds alone.
func TestStartRetriesCRLs(t *testing.T) {
	env := testenv.Start(t)
	env.Stop(t)
	db := env.DB(t)
	later := time.Now().Add(time.Hour).UnixMicro()
	if _, err := db.Exec(`INSERT INTO crl_publications (ca_id, wanted, owner, lease_until) VALUES ('waiting', 0, NULL, ?), ('held', 0, 'another', ?)`, later, later); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	for id, want := range map[string]bool{"waiting": false, "held": true} {
		var lease sql.NullInt64
		if err := db.QueryRow(`SELECT lease_until FROM crl_publications WHERE ca_id = ?`, id).Scan(&lease); err != nil {
			t.Fatal(err)
		}
		if lease.Valid != want {
			t.Errorf("%s: lease_until %v after a start, want set %v", id, lease, want)
		}
	}
}

// TestRotateWarnsOfReadableKey: a rotation to a new key in a file others
// can read ("openpca master-key new > new.key" under a usual umask) warns,
// and one in a file of mode 600 does not; so does a previous key's file,
// which step 2 of a rolling rotation gives the servers.
func TestRotateWarnsOfReadableKey(t *testing.T) {
	env := testenv.Start(t)
	env.Stop(t)
	for _, mode := range []os.FileMode{0o644, 0o600} {
		var files []string
		for _, name := range []string{"new.key", "previous.key"} {
			key, err := app.NewMasterKey()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), name)
			os.WriteFile(file, []byte(key+"\n"), mode)
			os.Chmod(file, mode)
			files = append(files, file)
		}
		out, err := runOpenpca(t, "master-key", "rotate", "--data-dir", env.Config.DataDir, "--new-master-key-file", files[0], "--previous-master-key-file", files[1])
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for i, flag := range []string{"--new-master-key-file", "--previous-master-key-file"} {
			if warned := strings.Contains(out, flag+" "+files[i]+" can be read by others"); warned != (mode == 0o644) {
				t.Errorf("%s of mode %s: warned %v\n%s", flag, mode, warned, out)
			}
		}
	}
}

// TestArgumentsCounted: a command given an argument more or fewer than
// it takes is refused, before it changes or prints anything, rather than
// done with those it expects (the first of two buckets removed, a new
// master key's file ignored for a random key, a misspelt flag's value
// taken for an argument).
func TestArgumentsCounted(t *testing.T) {
	for _, args := range [][]string{
		{"accounts", "list", "stray"},
		{"accounts", "create", "--name", "a", "stray"},
		{"keys", "revoke"},
		{"keys", "revoke", "AKID1", "AKID2"},
		{"buckets", "remove", "one", "two"},
		{"buckets", "create"},
		{"policy", "detach", "AKID1"},
		{"policy", "list", "AKID1", "AKID2"},
		{"operator-log", "stray"},
		{"cas", "list", "stray"},
		{"master-key", "new", "new.key"},
		{"master-key", "rotate", "new.key"},
		{"master-key", "wrap", "KEY"},
		{"backup", "create", "--to", "b.db"},
		{"restore", "--from", "b.db", "stray"},
		{"witness", "serve", "stray"},
		{"witness", "public-key", "stray"},
		{"audit", "public-key", "stray"},
		{"audit", "verify", "report.json"},
		{"audit", "proof", "0badbad"},
		{"audit", "reports", "stray"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // the data folders by default would be made here
			var stdout bytes.Buffer
			err := run(t.Context(), args, &stdout, io.Discard, func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), "usage: openpca "+args[0]) {
				t.Errorf("%v, want its usage", err)
			}
			if stdout.Len() > 0 {
				t.Errorf("printed %q", stdout.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("made %d files in the working folder", len(entries))
			}
		})
	}
}

// TestUsage checks what a command says when it is given wrong or asked
// for help: help goes to stdout and is no failure (flag.ErrHelp exits 0),
// a missing command prints its usage alone (errUsage), and a wrong flag
// or command is one line of error, not the error and every flag's usage
// twice, and opens nothing.
func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		want           error  // errors.Is, or nil for any other error
		text           string // in the error, if want is nil
		stdout, stderr string // in them; "" for nothing
	}{
		{args: nil, want: errUsage, stderr: "usage: openpca <command>"},
		{args: []string{"-h"}, want: flag.ErrHelp, stdout: "usage: openpca <command>"},
		{args: []string{"help"}, want: flag.ErrHelp, stdout: "usage: openpca <command>"},
		{args: []string{"serve", "-h"}, want: flag.ErrHelp, stderr: "-listen"},
		{args: []string{"serve", "--bogus"}, text: `-bogus ("openpca serve -h" lists its flags)`},
		{args: []string{"serve", "--listen"}, text: "flag needs an argument: -listen"},
		{args: []string{"keys"}, want: errUsage, stderr: "usage: openpca keys"},
		{args: []string{"keys", "--help"}, want: flag.ErrHelp, stdout: "usage: openpca keys"},
		{args: []string{"keys", "bogus"}, text: `unknown command "bogus"`, stderr: "usage: openpca keys"},
		{args: []string{"accounts", "bogus"}, text: `unknown command "bogus"`, stderr: "usage: openpca accounts"},
		{args: []string{"buckets", "bogus"}, text: `unknown command "bogus"`, stderr: "usage: openpca buckets"},
		{args: []string{"cas", "bogus"}, text: `unknown command "bogus"`, stderr: "usage: openpca cas"},
		{args: []string{"audit", "-h"}, want: flag.ErrHelp, stdout: "usage: openpca audit"},
		{args: []string{"master-key", "new", "-h"}, want: flag.ErrHelp, stderr: "Usage of openpca master-key new"},
		{args: []string{"keys", "list", "--bogus"}, text: `("openpca keys list -h" lists its flags)`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // a data folder by default would be made here
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr, func(string) (string, bool) { return "", false })
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("got %v, want %v", err, tt.want)
			case tt.want == nil && (err == nil || !strings.Contains(err.Error(), tt.text)):
				t.Errorf("got %v, want an error with %q", err, tt.text)
			}
			for _, out := range []struct {
				name, want string
				got        *bytes.Buffer
			}{{"stdout", tt.stdout, &stdout}, {"stderr", tt.stderr, &stderr}} {
				if out.want == "" && out.got.Len() > 0 || !strings.Contains(out.got.String(), out.want) {
					t.Errorf("%s: %q, want %q", out.name, out.got, out.want)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("made %d files in the working folder", len(entries))
			}
		})
	}
}

// TestOperatorFilesBounded: a file an operator names for a key, a PIN, a
// policy or a CA bundle is read up to 16 MiB, and one larger refused,
// saying so: /dev/zero given as --key was read until the kernel killed
// the command, 23 GB on.
func TestOperatorFilesBounded(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, smallfile.Max+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"audit", "verify", "--report", "none.json", "--key", big},
		{"audit", "verify", "--report", "none.json", "--key", "k+k", "--server", env.URL, "--ca-bundle", big},
		{"keys", "list", "--data-dir", data, "--master-key-file", big},
		{"policy", "attach", testenv.AccessKeyID, "--file", big, "--data-dir", data},
		{"serve", "--kms-key-policy", big},
	} {
		if out, err := runOpenpca(t, args...); err == nil || !strings.Contains(err.Error(), "holds more than 16 MiB") {
			t.Errorf("openpca %s: %v\n%.300s", strings.Join(args[:2], " "), err, out)
		}
	}
}

// TestOperatorFilesRegular: a file an operator names is read without
// waiting on a named pipe's writer: a named pipe given for the master
// key's file, or a report's, had the command wait in open(2) for good,
// past SIGTERM. A pipe with a writer is read (a key given as <(...)), one
// without reads as empty; a device, or a pipe for a report or proof file
// (read twice), is refused.
func TestOperatorFilesRegular(t *testing.T) {
	env := testenv.Start(t)
	env.Stop(t)
	data := env.Config.DataDir
	key, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A pipe that holds the key, its writer gone, as a shell's <(...) is.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Write(key)
	w.Close()
	given := fmt.Sprintf("/proc/self/fd/%d", r.Fd())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "list", "--data-dir", data, "--master-key-file", given}, ""},
		{[]string{"keys", "list", "--data-dir", data, "--master-key-file", fifo}, "master key"},
		{[]string{"keys", "list", "--data-dir", data, "--master-key-file", "/dev/zero"}, "is not a file (a device)"},
		{[]string{"audit", "verify", "--report", fifo, "--key", "k+k"}, "is not a file (a pipe)"},
		{[]string{"audit", "proof", "--proof", fifo, "--serial", "01"}, "is not a file (a pipe)"},
		{[]string{"audit", "proof", "--proof", fifo, "--crl", "/dev/zero", "--key", "k+k"}, "is not a file (a device)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := runOpenpca(t, tc.args...)
			done <- err
		}()
		select {
		case err := <-done:
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("openpca %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
			}
		case <-time.After(20 * time.Second):
			// A writer lets the reader's open return.
			if w, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
				defer w.Close()
			}
			t.Fatalf("openpca %s waits on a named pipe", strings.Join(tc.args, " "))
		}
	}
}

// TestOperatorNamesShownSafely: names an operator gives (an account's, a
// policy's) that hold an escape sequence, a format character or stray
// spaces are refused, and an inline policy may not take a managed one's
// name in another case; a name stored so by an earlier version is listed
// without its control characters, which wrote to the terminal (clearing
// it, retitling it) as they were.
func TestOperatorNamesShownSafely(t *testing.T) {
	env := testenv.Start(t)
	data := env.Config.DataDir
	doc := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(doc, []byte(`{"Statement":{"Effect":"Allow","Action":"acm-pca:Get*","Resource":"*"}}`), 0o600)
	spaced := filepath.Join(t.TempDir(), "my policy.json")
	os.WriteFile(spaced, []byte(`{"Statement":{"Effect":"Allow","Action":"acm-pca:Get*","Resource":"*"}}`), 0o600)
	if out, err := runOpenpca(t, "keys", "create", "--account", app.DefaultAccountID, "--policy", spaced, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "rename the file") {
		t.Errorf("a key's policy named after a file whose name is no policy name: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"accounts", "create", "--name", "evil\x1b[2J"},
		{"accounts", "create", "--name", "right\u202eleft"},
		{"accounts", "create", "--name", "two  spaces"},
		{"policy", "attach", testenv.AccessKeyID, "--file", doc, "--name", "evil\x1b]0;title\x07"},
		{"policy", "attach", testenv.AccessKeyID, "--file", doc, "--name", "ReadOnly "},
		{"policy", "attach", testenv.AccessKeyID, "--file", doc, "--name", "readonly"},
	} {
		if out, err := runOpenpca(t, append(args, "--data-dir", data)...); err == nil {
			t.Errorf("openpca %q was taken:\n%s", args, out)
		}
	}
	a, err := app.OpenAdmin(t.Context(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.CreateAccount(t.Context(), &openpca.Account{ID: "444455556666", Name: "old\x1b[31mred\x07", CreatedAt: time.Now()})
	if err == nil {
		_, err = a.Store.UpdateKeyPolicies(t.Context(), testenv.AccessKeyID, func(*openpca.AccessKey) ([]openpca.KeyPolicy, error) {
			return []openpca.KeyPolicy{{Name: "old\x1b[2J", Document: `{"Statement":{"Effect":"Allow","Action":"acm-pca:Get*","Resource":"*"}}`}}, nil
		})
	}
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"accounts", "list"}, {"keys", "list"}, {"policy", "list", testenv.AccessKeyID}} {
		out, err := runOpenpca(t, append(args, "--data-dir", data)...)
		if err != nil || strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "old") {
			t.Errorf("openpca %s: %v\n%q", strings.Join(args, " "), err, out)
		}
	}
}

// TestCommandsTakeTheRecordedAccount: a command given no --account-id
// takes the default account and the region the database records (as
// policy simulate shows), not the defaults of a new one; one given
// another account is refused, saying which is recorded.
func TestCommandsTakeTheRecordedAccount(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.AccountID, c.Region = "999999999999", "eu-west-1" })
	data := env.Config.DataDir
	if out, err := runOpenpca(t, "keys", "list", "--data-dir", data); err != nil || !strings.Contains(out, testenv.AccessKeyID) {
		t.Errorf("keys list without --account-id: %v\n%s", err, out)
	}
	want := "allowed: acm-pca:CreateCertificateAuthority on " + openpca.CAARN("eu-west-1", "999999999999", "*")
	if out, err := runOpenpca(t, "policy", "simulate", testenv.AccessKeyID, "--action", "CreateCertificateAuthority", "--data-dir", data); err != nil || !strings.HasPrefix(out, want) {
		t.Errorf("a creation simulated without --region: %v\n%s", err, out)
	}
	if out, err := runOpenpca(t, "keys", "list", "--data-dir", data, "--account-id", app.DefaultAccountID); err == nil ||
		!strings.Contains(err.Error(), "--account-id is "+app.DefaultAccountID+", but this database's is 999999999999") {
		t.Errorf("keys list with another --account-id: %v\n%s", err, out)
	}
}
