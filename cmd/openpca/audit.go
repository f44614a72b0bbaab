package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/server"
)

// errVerification ends a verification that found problems: the command
// exits 1, as against 2 for a command that could not run.
var errVerification = errors.New("verification failed")

const auditUsage = `usage: openpca audit <command> [flags]

commands:
  public-key  print the server's audit public key
  verify      check an audit report against its proof file, offline, and
              with --server against the server's current log
  proof       print an inclusion proof of one certificate's log entries
`

// auditCommand runs "openpca audit public-key|verify|proof".
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "public-key":
		return auditPublicKey(ctx, args[1:], stdout, stderr, lookupEnv)
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr, lookupEnv)
	case "proof":
		return auditProof(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	fmt.Fprint(stderr, auditUsage)
	return fmt.Errorf("unknown audit command %q", args[0])
}

// auditPublicKey prints the public key from a server, or from the data
// folder or database of one.
func auditPublicKey(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit public-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, previous := adminFlags(fs)
	var c client
	c.flags(fs)
	if err := parseFlags(fs, args, lookupEnv); err != nil {
		return err
	}
	if err := previous(cfg, lookupEnv); err != nil {
		return err
	}
	if c.server != "" {
		key, err := c.get(ctx, server.PathPublicKey, nil, "")
		if err != nil {
			return err
		}
		_, err = stdout.Write(key)
		return err
	}
	a, err := app.OpenAdmin(ctx, *cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	vkey, err := auditlog.PublicKey(ctx, a.Store)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, vkey)
	return nil
}

// auditVerify checks a report.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var reportPath, proofPath, key string
	var c client
	fs.StringVar(&reportPath, "report", "", "the audit report, as downloaded (JSON or CSV)")
	fs.StringVar(&proofPath, "proof", "", "its proof file (default: the report's path + "+auditlog.ProofSuffix+")")
	fs.StringVar(&key, "key", "", "the server's audit public key, or a file holding it (openpca audit public-key prints it)")
	c.flags(fs)
	if err := parseFlags(fs, args, lookupEnv); err != nil {
		return err
	}
	if reportPath == "" || key == "" {
		return errors.New("--report and --key are required")
	}
	if proofPath == "" {
		proofPath = reportPath + auditlog.ProofSuffix
	}
	vkey, err := verifierKey(key)
	if err != nil {
		return err
	}
	report, err := os.Open(reportPath)
	if err != nil {
		return err
	}
	defer report.Close()
	proof, err := os.Open(proofPath)
	if err != nil {
		return err
	}
	defer proof.Close()

	start := time.Now()
	v := audit.Verify(report, proof, vkey)
	if len(v.Problems) == 0 && c.server != "" {
		if err := checkConsistency(ctx, &c, v, vkey); err != nil {
			v.Problems = append(v.Problems, audit.Problem{Check: "server", Detail: err.Error()})
		}
	}
	if len(v.Problems) > 0 {
		const shown = 50
		for i, p := range v.Problems {
			if i == shown {
				fmt.Fprintf(stdout, "... and %d more problems\n", len(v.Problems)-shown)
				break
			}
			fmt.Fprintln(stdout, "FAIL", p)
		}
		return fmt.Errorf("%w: %s: %d problems", errVerification, reportPath, len(v.Problems))
	}
	fmt.Fprintf(stdout, "OK %s: its %d rows are the %d certificates of the first %d entries of the key-use log of %s, checkpoint signed %s\n",
		reportPath, v.Rows, v.Certificates, v.Checkpoint.Size, v.Header.CertificateAuthorityArn, v.Checkpoint.Time.Format(time.RFC3339))
	if c.server != "" {
		fmt.Fprintf(stdout, "OK the server's current log extends it\n")
	}
	fmt.Fprintf(stderr, "verified in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkConsistency checks that the server's current log of the report's
// CA extends the log of the report's checkpoint.
func checkConsistency(ctx context.Context, c *client, v *audit.Verification, vkey string) error {
	arn := v.Header.CertificateAuthorityArn
	q := url.Values{"certificateAuthorityArn": {arn}}
	signed, err := c.get(ctx, server.PathCheckpoint, q, arn)
	if err != nil {
		return err
	}
	now, err := auditlog.OpenCheckpoint(signed, vkey)
	if err != nil {
		return fmt.Errorf("the server's current checkpoint: %v", err)
	}
	old := v.Checkpoint
	switch {
	case now.Origin != old.Origin:
		return fmt.Errorf("the server's checkpoint is of the log %q, not %q", now.Origin, old.Origin)
	case now.Size < old.Size:
		return fmt.Errorf("the server's log has %d entries, fewer than the %d of the report's checkpoint: it was truncated", now.Size, old.Size)
	case now.Size == old.Size && now.Root != old.Root:
		return fmt.Errorf("the server's log of %d entries has another root than the report's checkpoint: its history was rewritten", now.Size)
	case now.Size == old.Size:
		return nil
	}
	q.Set("from", strconv.FormatInt(old.Size, 10))
	q.Set("to", strconv.FormatInt(now.Size, 10))
	body, err := c.get(ctx, server.PathConsistency, q, arn)
	if err != nil {
		return err
	}
	var res struct {
		Proof tlog.TreeProof `json:"proof"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("the server's consistency proof: %v", err)
	}
	if err := tlog.CheckTree(res.Proof, now.Size, now.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("the server's current log (%d entries) does not extend the report's (%d entries): its history was rewritten", now.Size, old.Size)
	}
	return nil
}

// auditProof prints an inclusion proof of a certificate's log entries,
// from a server's current log or from a report's proof file.
func auditProof(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit proof", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var serial, caARN, proofPath, key string
	var c client
	fs.StringVar(&serial, "serial", "", "the certificate's serial number, hex, with or without colons")
	fs.StringVar(&caARN, "ca", "", "the ARN of the CA that issued it (with --server)")
	fs.StringVar(&proofPath, "proof", "", "a report's proof file, to prove from instead of a server")
	fs.StringVar(&key, "key", "", "the server's audit public key, or a file holding it, to check the proof before printing it")
	c.flags(fs)
	if err := parseFlags(fs, args, lookupEnv); err != nil {
		return err
	}
	if serial == "" || (c.server == "") == (proofPath == "") || (c.server != "" && caARN == "") {
		return errors.New("--serial is required, with either --server and --ca, or --proof")
	}
	var p *auditlog.InclusionProof
	var err error
	if c.server != "" {
		var body []byte
		body, err = c.get(ctx, server.PathInclusion, url.Values{"certificateAuthorityArn": {caARN}, "serial": {serial}}, caARN)
		if err == nil {
			p = new(auditlog.InclusionProof)
			err = json.Unmarshal(body, p)
		}
	} else {
		p, err = proveFromFile(proofPath, serial)
	}
	if err != nil {
		return err
	}
	if key != "" {
		vkey, err := verifierKey(key)
		if err != nil {
			return err
		}
		if err := p.Check(vkey); err != nil {
			return fmt.Errorf("%w: %v", errVerification, err)
		}
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// proveFromFile proves a certificate's entries from a proof file.
func proveFromFile(path, serial string) (*auditlog.InclusionProof, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := strings.ToLower(strings.ReplaceAll(serial, ":", ""))
	var tree auditlog.Tree
	var entries []auditlog.ProvenEntry
	h, err := auditlog.ReadProof(f, func(seq int64, record []byte) error {
		if err := tree.Add(record); err != nil {
			return err
		}
		var r openpca.KeyUseRecord
		if json.Unmarshal(record, &r) == nil && strings.TrimLeft(r.Serial, "0") == strings.TrimLeft(want, "0") &&
			(r.Kind == openpca.KeyUseIssue || r.Kind == openpca.KeyUseRevoke) {
			entries = append(entries, auditlog.ProvenEntry{Index: seq, Record: string(record)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s has no log entry about the certificate %s", path, serial)
	}
	for i, e := range entries {
		if entries[i].Proof, err = tlog.ProveRecord(tree.Size(), e.Index, &tree); err != nil {
			return nil, err
		}
	}
	return &auditlog.InclusionProof{CertificateAuthorityArn: h.CertificateAuthorityArn, Serial: want, Checkpoint: h.Checkpoint, Entries: entries}, nil
}

// verifierKey returns key, or the key in the file key names.
func verifierKey(key string) (string, error) {
	if strings.Contains(key, "+") {
		return key, nil
	}
	b, err := os.ReadFile(key)
	if err != nil {
		return "", fmt.Errorf("--key is neither a public key nor a readable file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// client asks an OpenPCA server for its audit log, signing its requests
// as the AWS SDK signs the API's, with the standard AWS configuration.
type client struct {
	server   string
	caBundle string
}

func (c *client) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "the OpenPCA server's URL, e.g. http://127.0.0.1:8080")
	fs.StringVar(&c.caBundle, "ca-bundle", "", "PEM bundle of the CAs to trust for an https:// server")
}

// get fetches path?query; signed for the region of arn unless arn is "".
func (c *client) get(ctx context.Context, path string, query url.Values, arn string) ([]byte, error) {
	u := strings.TrimSuffix(c.server, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if arn != "" {
		p, err := openpca.ParseCAARN(arn)
		if err != nil {
			return nil, err
		}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(p.Region))
		if err != nil {
			return nil, err
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("AWS credentials to sign with: %w", err)
		}
		empty := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), openpca.SigningName, p.Region, time.Now()); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{Timeout: time.Minute}
	if c.caBundle != "" {
		pem, err := os.ReadFile(c.caBundle)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.caBundle)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) == nil && e.Type != "" {
			return nil, fmt.Errorf("%s: %s: %s", path, e.Type, e.Message)
		}
		return nil, fmt.Errorf("%s: HTTP %d", path, res.StatusCode)
	}
	return body, nil
}
