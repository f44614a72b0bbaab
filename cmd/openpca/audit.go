package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/smallfile"
	"github.com/openpca/openpca/pki"
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
  reports     list a CA's latest audit reports, with why each failed one failed
`

// auditCommand runs "openpca audit public-key|verify|proof|reports".
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, auditUsage, stdout, stderr); err != nil {
		return err
	}
	switch args[0] {
	case "public-key":
		return auditPublicKey(ctx, args[1:], stdout, stderr, lookupEnv)
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr, lookupEnv)
	case "proof":
		return auditProof(ctx, args[1:], stdout, stderr, lookupEnv)
	case "reports":
		return auditReports(ctx, args[1:], stdout, stderr, lookupEnv)
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
	var c serverFlags
	c.flags(fs)
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return err
	}
	if err := previous(cfg, lookupEnv, stderr); err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	if client != nil {
		key, err := client.PublicKey(ctx)
		if err != nil {
			return err
		}
		// A verifier key's name may hold control characters: the server
		// may be the party audited.
		_, err = fmt.Fprintln(stdout, audit.Printable(key))
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

// auditReports lists a CA's latest reports from a server, one a line:
// id, status, creation time, log size, where it is, and why it failed.
func auditReports(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit reports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var caARN string
	var c serverFlags
	fs.StringVar(&caARN, "ca", "", "the CA's ARN")
	c.flags(fs)
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return err
	}
	if c.server == "" || caARN == "" {
		return errors.New("--server and --ca are required")
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	reports, err := client.Reports(ctx, caARN)
	if err != nil {
		return err
	}
	// What the server says is printed as audit verify prints the files:
	// an auditor's server may be the party audited.
	p := audit.Printable
	for _, r := range reports {
		line := fmt.Sprintf("%s  %-8s  %s  %d entries  s3://%s/%s", p(r.AuditReportID), p(r.Status), r.CreatedAt.Format(time.RFC3339), r.LogSize, p(r.S3BucketName), p(r.S3Key))
		if r.Failure != "" {
			line += "\n    failed: " + p(r.Failure)
		}
		if _, err := fmt.Fprintln(stdout, line); err != nil {
			return err
		}
	}
	return nil
}

// auditVerify checks a report.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var reportPath, proofPath, key, reportID, caARN, earlierPath string
	var c serverFlags
	var w witnessFlags
	w.define(fs, "the report's log")
	var after time.Time
	fs.Func("witnessed-after", "a time (RFC 3339) at or after which the witnesses must have cosigned the report's log: when you asked for the report, less a little for the witnesses' clocks; a report made to look newer than it is fails", func(v string) error {
		var err error
		after, err = time.Parse(time.RFC3339, v)
		return err
	})
	fs.StringVar(&reportPath, "report", "", "the audit report, as downloaded (JSON or CSV)")
	fs.StringVar(&proofPath, "proof", "", "its proof file (default: the report's path + "+auditlog.ProofSuffix+", or + "+auditlog.LegacyProofSuffix+" for a report of an earlier version)")
	fs.StringVar(&key, "key", "", "the server's audit public key, or a file holding it (openpca audit public-key prints it)")
	fs.StringVar(&caARN, "ca", "", "the ARN of the CA whose report it must be (it prints the CA's; a report of another CA, one named alike, fails)")
	fs.StringVar(&earlierPath, "earlier", "", "the proof file of an earlier report of the CA, kept: this report's log must extend it (its first entries hash to the earlier checkpoint's root), which shows, with no server's word, that nothing the earlier report had was taken out or changed since")
	allowUnsigned := fs.Bool("allow-unsigned-identity", false, "take a proof file that does not sign which report it is, as servers before 2026-12 wrote them: any older report of the CA then verifies in the place of the one asked for, with a note")
	fs.StringVar(&reportID, "report-id", "", "the id of the report asked for (CreateCertificateAuthorityAuditReport's AuditReportId): the report must be it (default: the id the report's file is named for, if it is named for one)")
	c.flags(fs)
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return err
	}
	if reportPath == "" || key == "" {
		return errors.New("--report and --key are required")
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	if proofPath == "" {
		proofPath = proofBeside(reportPath)
	}
	vkey, err := verifierKey(key)
	if err != nil {
		return err
	}
	report, err := smallfile.Open(reportPath)
	if err != nil {
		return err
	}
	defer report.Close()
	proof, err := smallfile.Open(proofPath)
	if err != nil {
		return err
	}
	defer proof.Close()

	if err := w.check(); err != nil {
		return err
	}
	if !after.IsZero() && len(w.keys) == 0 {
		return errors.New("--witnessed-after needs the witnesses' keys (--witness)")
	}
	start := time.Now()
	v := audit.Verify(report, proof, vkey)
	if len(w.keys) > 0 {
		v.CheckWitnesses(vkey, w.keys, w.quorum, after)
	}
	v.CheckIdentity(reportPath, reportID, caARN, *allowUnsigned)
	if earlierPath != "" {
		earlier, err := smallfile.Open(earlierPath)
		if err != nil {
			return err
		}
		v.CheckExtends(proof, earlier, vkey)
		earlier.Close()
	}
	if len(v.Problems) == 0 && client != nil {
		if err := checkConsistency(ctx, client, v, vkey); err != nil {
			v.Problems = append(v.Problems, audit.Problem{Check: "server", Detail: err.Error()})
		}
	}
	for _, note := range v.Notes {
		fmt.Fprintln(stdout, "NOTE", note)
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
		reportPath, v.Rows, v.Certificates, v.Checkpoint.Size, audit.Printable(v.Header.CertificateAuthorityArn), v.Checkpoint.Time.Format(time.RFC3339))
	if v.Statement != nil { // else a note (audit.UnsignedIdentityNote) says it is not signed
		fmt.Fprintf(stdout, "OK it is report %s, %s, at %s in its bucket\n", audit.Printable(v.Statement.ID), audit.Printable(v.Statement.Format), audit.Printable(v.Statement.S3Key))
	}
	if e := v.Extends; e != nil {
		fmt.Fprintf(stdout, "OK it extends the earlier report's log: its first %d entries are those of the checkpoint signed %s\n", e.Size, e.Time.Format(time.RFC3339))
	}
	if w := v.Witnessed; w != nil {
		var times []string
		for name, at := range w.Cosigned {
			times = append(times, name+" at "+at.Format(time.RFC3339))
		}
		slices.Sort(times)
		fmt.Fprintf(stdout, "OK witnessed: the witnesses cosigned %d entries of the log, the report's %d: %s\n",
			w.Size, v.Checkpoint.Size, strings.Join(times, ", "))
	}
	if client != nil {
		fmt.Fprintf(stdout, "OK the server's current log extends it\n")
	}
	fmt.Fprintf(stderr, "verified in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkConsistency checks that the server's current log of the report's
// CA extends the log of the report's checkpoint.
func checkConsistency(ctx context.Context, c *server.AuditLogClient, v *audit.Verification, vkey string) error {
	arn := v.Header.CertificateAuthorityArn
	// The current one: the witnessed one may be older than the report,
	// while witnesses are down, and the log would look truncated.
	signed, err := c.CurrentCheckpoint(ctx, arn)
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
	proof, err := c.Consistency(ctx, arn, old.Size, now.Size)
	if err != nil {
		return err
	}
	if err := tlog.CheckTree(proof, now.Size, now.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("the server's current log (%d entries) does not extend the report's (%d entries): its history was rewritten", now.Size, old.Size)
	}
	return nil
}

// auditProof prints an inclusion proof of a certificate's log entries,
// or of a CRL's, from a server's current log or from a report's proof
// file.
func auditProof(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca audit proof", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var serial, caARN, proofPath, key, certPath, crlPath string
	var c serverFlags
	fs.StringVar(&serial, "serial", "", "the certificate's serial number, hex, with or without colons: a proof by serial shows that a certificate of that serial was logged, not which (--certificate shows that it is yours)")
	fs.StringVar(&certPath, "certificate", "", "the certificate itself (PEM or DER), in place of --serial: the log's record of its issuance must be of it, byte for byte (its SHA-256); a certificate the CA's key signed outside the log, with a logged one's serial, fails (with --key)")
	fs.StringVar(&crlPath, "crl", "", "a CRL of the CA (PEM or DER), in place of --serial: the log's record of its signing must be of it, byte for byte (its SHA-256); a CRL the CA's key signed outside the log fails (with --key); with --proof, what it lists must be the log's revocations")
	revoked := fs.Bool("revoked", false, "with --serial or --certificate and --key: the proof must hold the certificate's revocation too (a server may leave it out of its answer)")
	var ocspPath, issuerPath string
	fs.StringVar(&ocspPath, "ocsp", "", "an OCSP answer (DER) about a certificate of the CA, in place of --serial, with --proof, --issuer and --key: what it says must be what the log says, and its signing (or its responder's certificate) in the log")
	fs.StringVar(&issuerPath, "issuer", "", "the CA's certificate (PEM or DER), which checks --ocsp's signature")
	fs.StringVar(&caARN, "ca", "", "the ARN of the CA that issued it (required with --server; with --proof, the proof file must be of it)")
	fs.StringVar(&proofPath, "proof", "", "a report's proof file, to prove from instead of a server")
	fs.StringVar(&key, "key", "", "the server's audit public key, or a file holding it, to check the proof before printing it")
	var w witnessFlags
	w.define(fs, "a log the entries are in (with --server and --key)")
	wait := fs.Duration("witness-wait", 10*time.Second, "how long to wait for the witnesses to cosign entries newer than their last cosignature")
	c.flags(fs)
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return err
	}
	if ocspPath != "" {
		if serial != "" || certPath != "" || crlPath != "" || *revoked || c.server != "" || len(w.keys) > 0 || proofPath == "" || key == "" || issuerPath == "" {
			return errors.New("--ocsp takes the place of --serial, --certificate and --crl, with --proof (not --server, nor --witness), --issuer and --key")
		}
		return proveOCSP(ocspPath, issuerPath, proofPath, caARN, key, stdout)
	}
	var cert *x509.Certificate
	if certPath != "" {
		if serial != "" || key == "" {
			return errors.New("--certificate takes the place of --serial, and needs --key: an unchecked proof shows nothing of it")
		}
		var err error
		if cert, err = readCertificate(certPath); err != nil {
			return err
		}
		serial = pki.SerialHex(cert.SerialNumber)
	}
	var crl *x509.RevocationList
	if *revoked && (key == "" || crlPath != "") {
		return errors.New("--revoked needs --key, and --serial or --certificate")
	}
	if crlPath != "" {
		if serial != "" || key == "" {
			return errors.New("--crl takes the place of --serial and --certificate, and needs --key: an unchecked proof shows nothing of it")
		}
		var err error
		if crl, err = readCRL(crlPath); err != nil {
			return err
		}
	}
	if serial == "" && crl == nil || (c.server == "") == (proofPath == "") || (c.server != "" && caARN == "") {
		return errors.New("--serial, --certificate or --crl is required, with either --server and --ca, or --proof")
	}
	if err := w.check(); err != nil {
		return err
	}
	if len(w.keys) > 0 && (c.server == "" || key == "") {
		return errors.New("--witness needs --server and --key: the witnessed checkpoint and the proof that it holds the entries come from the server")
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	var p *auditlog.InclusionProof
	switch {
	case crl != nil && client != nil:
		p, err = client.CRLInclusion(ctx, caARN, crl.Number.Int64(), crl.ThisUpdate)
	case crl != nil:
		p, err = proveCRLFromFile(proofPath, crl.Number.Int64())
	case client != nil:
		p, err = client.Inclusion(ctx, caARN, serial)
	default:
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
		// The proof is the server's word, and so are the ARNs and
		// serials in Check's errors: escaped, as all it says is, since
		// the server may be the party audited.
		if err := p.Check(vkey); err != nil {
			return fmt.Errorf("%w: %s", errVerification, audit.Printable(err.Error()))
		}
		// Check holds the proof to what it says it is about: that must be
		// what was asked.
		switch asked := strings.TrimLeft(strings.ToLower(strings.ReplaceAll(serial, ":", "")), "0"); {
		case caARN != "" && p.CertificateAuthorityArn != caARN:
			return fmt.Errorf("%w: the proof is of the CA %s, not %s", errVerification, audit.Printable(p.CertificateAuthorityArn), caARN)
		case crl != nil && p.CRLNumber != crl.Number.Int64():
			return fmt.Errorf("%w: the proof is about CRL %d, not %d", errVerification, p.CRLNumber, crl.Number)
		case crl == nil && (p.CRLNumber != 0 || strings.TrimLeft(p.Serial, "0") != asked):
			return fmt.Errorf("%w: the proof is about the certificate %s, not %s", errVerification, audit.Printable(p.Serial), serial)
		}
		switch {
		case cert != nil:
			err = issuedIs(p, cert)
		case crl != nil:
			err = signedCRLIs(p, crl)
			if err == nil && proofPath != "" {
				err = crlIsTheLogs(proofPath, p, vkey, crl)
			}
		}
		if err == nil && *revoked && !slices.ContainsFunc(p.Entries, func(e auditlog.ProvenEntry) bool {
			var r openpca.KeyUseRecord
			return json.Unmarshal([]byte(e.Record), &r) == nil && r.Kind == openpca.KeyUseRevoke
		}) {
			err = fmt.Errorf("the proof has no revocation of the certificate %s: the log had none up to its checkpoint, or the server left it out", p.Serial)
		}
		if err != nil {
			return fmt.Errorf("%w: %s", errVerification, audit.Printable(err.Error()))
		}
		if len(w.keys) > 0 {
			if err := checkWitnessedProof(ctx, client, p, vkey, w.keys, w.quorum, *wait); err != nil {
				return fmt.Errorf("%w: %s", errVerification, audit.Printable(err.Error()))
			}
		}
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", asciiJSON(out))
	return err
}

// issuedIs checks that the issuance a checked proof holds is of cert,
// byte for byte: a serial is the CA's to give again, and the log's record
// of one certificate proves nothing of another of its serial that the
// CA's key signed outside the log.
func issuedIs(p *auditlog.InclusionProof, cert *x509.Certificate) error {
	sum := sha256.Sum256(cert.Raw)
	for _, e := range p.Entries {
		var r openpca.KeyUseRecord
		if err := json.Unmarshal([]byte(e.Record), &r); err != nil {
			return err
		}
		switch {
		case r.Kind != openpca.KeyUseIssue:
		case r.SignedSHA256 == "":
			return fmt.Errorf("the log's record of the issuance of %s (entry %d) names no hash of the certificate: it cannot show that the certificate given is the one logged", p.Serial, e.Index)
		case r.SignedSHA256 != hex.EncodeToString(sum[:]):
			return fmt.Errorf("the log's issuance of %s (entry %d) is of another certificate (SHA-256 %s) than the one given (%x): the CA's key signed this one outside its log", p.Serial, e.Index, r.SignedSHA256, sum)
		default:
			return nil
		}
	}
	return fmt.Errorf("the proof has no issuance of %s", p.Serial)
}

// signedCRLIs checks that the CRL signing a checked proof holds is of
// crl, byte for byte: whoever holds the CA's key could sign another CRL
// of a logged one's number and date, outside the log.
func signedCRLIs(p *auditlog.InclusionProof, crl *x509.RevocationList) error {
	var r openpca.KeyUseRecord
	if err := json.Unmarshal([]byte(p.Entries[0].Record), &r); err != nil {
		return err
	}
	if sum := sha256.Sum256(crl.Raw); r.SignedSHA256 != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("the log of %s signed CRL %d (entry %d) is another CRL (SHA-256 %s) than the one given (%x): the CA's key signed this one outside its log, or it is another CA's CRL", p.CertificateAuthorityArn, p.CRLNumber, p.Entries[0].Index, r.SignedSHA256, sum)
	}
	return nil
}

// crlIsTheLogs checks what crl lists against the log of the proof file
// at path (audit.CheckCRLEntries), in which p, checked, proves crl's
// signing.
func crlIsTheLogs(path string, p *auditlog.InclusionProof, vkey string, crl *x509.RevocationList) error {
	checkpoint, err := auditlog.OpenCheckpoint([]byte(p.Checkpoint), vkey)
	if err != nil {
		return err
	}
	f, err := smallfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return audit.CheckCRLEntries(f, &checkpoint, crl, p.Entries[0].Index)
}

// proveOCSP checks an OCSP answer, signed by the CA of the certificate at
// issuerPath or a responder it certified, against the log of the proof
// file (audit.CheckOCSPAnswer), and says so.
func proveOCSP(answerPath, issuerPath, proofPath, caARN, key string, stdout io.Writer) error {
	issuer, err := readCertificate(issuerPath)
	if err != nil {
		return err
	}
	der, err := smallfile.ReadUpTo(answerPath, maxOCSPAnswer)
	if err != nil {
		return err
	}
	resp, err := ocsp.ParseResponse(der, issuer)
	checked := true
	if err != nil && strings.Contains(err.Error(), x509.ErrUnsupportedAlgorithm.Error()) {
		// Go checks no ML-DSA or SM2 signature. Such a CA signs its
		// answers itself, and the log's record of the answer, byte for
		// byte, is what shows that it did (audit.CheckOCSPAnswer).
		resp, err = ocsp.ParseResponse(der, nil)
		if err == nil && resp.Certificate != nil {
			err = errors.New("a responder signed it, whose signature cannot be checked")
		}
		checked = false
	}
	if err != nil {
		return fmt.Errorf("%s: not an OCSP answer signed by the CA of %s, nor by a responder it certified: %w", answerPath, issuerPath, err)
	}
	// A responder's certificate is one for OCSP signing, valid then: any
	// other certificate the CA issued (its own, a subscriber's) in its
	// place would have the answer pass for a responder's.
	if r := resp.Certificate; r != nil && (!slices.Contains(r.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) ||
		resp.ProducedAt.Before(r.NotBefore) || resp.ProducedAt.After(r.NotAfter) || resp.NextUpdate.After(r.NotAfter)) {
		return fmt.Errorf("%w: the answer's signer is no OCSP responder of the CA's at %s (its certificate is not for OCSP signing, or not valid then)",
			errVerification, resp.ProducedAt.UTC().Format(time.RFC3339))
	}
	// The answer names the CA of the certificate it is about by hashes
	// of that CA's name and key (its CertID), which the signature's check
	// does not read: the CA, or its responder, may sign an answer that
	// names another CA.
	id, err := pki.OCSPAnswerCertID(resp.TBSResponseData)
	if err != nil {
		return fmt.Errorf("%s: %w", answerPath, err)
	}
	if nameHash, keyHash, err := pki.OCSPIssuerHashes(issuer, id.HashAlgorithm); err != nil {
		return err
	} else if !bytes.Equal(id.IssuerNameHash, nameHash) || !bytes.Equal(id.IssuerKeyHash, keyHash) {
		return fmt.Errorf("%w: the answer is about a certificate of another CA than that of %s (its CertID's hashes are not of this CA's name and key)", errVerification, issuerPath)
	}
	vkey, err := verifierKey(key)
	if err != nil {
		return err
	}
	f, err := smallfile.Open(proofPath)
	if err != nil {
		return err
	}
	defer f.Close()
	a := &audit.OCSPAnswer{DER: der, Serial: pki.SerialHex(resp.SerialNumber), Status: pki.OCSPStatusName(resp.Status), RevokedAt: resp.RevokedAt,
		Reason: resp.RevocationReason, ProducedAt: resp.ProducedAt, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}
	signer := "the CA"
	if !checked {
		signer = "the CA (as the log's record of it shows: Go checks no signature of its key)"
	}
	if resp.Certificate != nil {
		a.Responder, signer = resp.Certificate.Raw, "its responder, issued"
	}
	p, err := audit.CheckOCSPAnswer(f, vkey, a)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s", errVerification, audit.Printable(err.Error()))
	case caARN != "" && p.CertificateAuthorityArn != caARN:
		return fmt.Errorf("%w: the proof file is of the CA %s, not %s", errVerification, audit.Printable(p.CertificateAuthorityArn), caARN)
	}
	_, err = fmt.Fprintf(stdout, "OK: the OCSP answer about %s (%s, produced at %s) is the log's of %s: signed by %s at entry %d of %d\n",
		a.Serial, a.Status, a.ProducedAt.UTC().Format(time.RFC3339), audit.Printable(p.CertificateAuthorityArn), signer, p.Entry, p.Size)
	return err
}

// maxOCSPAnswer bounds an OCSP answer read: one is a few KiB.
const maxOCSPAnswer = 64 << 10

// maxCRL bounds a CRL read: 34 MB lists a million revocations, which
// crypto/x509 parses in about 0.7 GB.
const maxCRL = 64 << 20

// readCRL reads a CRL, PEM or DER, from a file; its number must be one a
// server gives (1 to 2^63-1).
func readCRL(path string) (*x509.RevocationList, error) {
	crl, err := readDER(path, maxCRL, "X509 CRL", x509.ParseRevocationList)
	if err == nil && (crl.Number == nil || crl.Number.Sign() <= 0 || !crl.Number.IsInt64()) {
		return nil, fmt.Errorf("%s: the CRL's number %v is none a server gives", path, crl.Number)
	}
	return crl, err
}

// readCertificate reads one certificate, PEM or DER, from a file (of
// any key OpenPCA issues under: pki.ParseCertificate).
func readCertificate(path string) (*x509.Certificate, error) {
	return readDER(path, smallfile.Max, "CERTIFICATE", pki.ParseCertificate)
}

// readDER parses what a file of at most max bytes holds, DER or in a PEM
// block of pemType.
func readDER[T any](path string, max int64, pemType string, parse func([]byte) (T, error)) (T, error) {
	var none T
	b, err := smallfile.ReadUpTo(path, max)
	if err != nil {
		return none, err
	}
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != pemType {
			return none, fmt.Errorf("%s: a PEM %s, not %s", path, block.Type, pemType)
		}
		b = block.Bytes
	}
	v, err := parse(b)
	if err != nil {
		return none, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// asciiJSON returns JSON as encoding/json writes it (valid UTF-8, where
// characters outside ASCII are in strings alone) with each of them, and
// DEL, escaped as \uXXXX (a UTF-16 surrogate pair above U+FFFF): the
// same JSON, which prints nothing but itself. encoding/json escapes the
// other control characters, but leaves C1 ones (U+009B starts an escape
// sequence on some terminals) and bidi overrides (U+202E shows the text
// after it reversed) as they are.
func asciiJSON(b []byte) []byte {
	var out bytes.Buffer
	for _, r := range string(b) {
		if r < utf8.RuneSelf && r != 0x7f {
			out.WriteByte(byte(r))
			continue
		}
		for _, u := range utf16.AppendRune(nil, r) {
			fmt.Fprintf(&out, `\u%04x`, u)
		}
	}
	return out.Bytes()
}

// witnessFlags are the witnesses an audit command requires: --witness,
// repeated, and --witness-quorum.
type witnessFlags struct {
	given     []string
	keys      []note.Verifier
	quorum    int
	splitView bool
}

// define defines the flags, for witnesses that must have cosigned what.
func (w *witnessFlags) define(fs *flag.FlagSet, what string) {
	fs.Func("witness", "the public key of a witness that must have cosigned "+what+"; repeat for each", func(v string) error {
		w.given = append(w.given, v)
		return nil
	})
	fs.IntVar(&w.quorum, "witness-quorum", 0, "how many of the witnesses given must have cosigned it (default all); more than half of them")
	fs.BoolVar(&w.splitView, "allow-split-view", false, "take a --witness-quorum of half the witnesses or fewer, which two histories of the log can each meet")
}

// check reads the keys, checks the quorum, and makes it all the witnesses
// if none is given.
func (w *witnessFlags) check() error {
	var err error
	if w.keys, err = auditlog.NewWitnessVerifiers(w.given); err != nil {
		return fmt.Errorf("--witness: %w", err)
	}
	if w.quorum < 0 || w.quorum > len(w.keys) {
		return fmt.Errorf("--witness-quorum must be between 1 and the %d witnesses given", len(w.keys))
	}
	if w.quorum == 0 {
		w.quorum = len(w.keys)
	}
	if why := audit.SplitView(w.quorum, len(w.keys)); why != "" && !w.splitView {
		return fmt.Errorf("--witness-quorum: %s; give a quorum of more than half the witnesses, or --allow-split-view to take that", why)
	}
	return nil
}

// checkWitnessedProof checks that the entries of an inclusion proof are in
// a log the witnesses cosigned: the server's witnessed checkpoint, with a
// quorum of the witnesses' cosignatures, and the checkpoint of the proof
// one of the other's first entries, as the server's consistency proof
// shows. Then the server could not have shown anyone a history without
// them, unseen. Entries past what the witnesses cosigned are waited for,
// up to wait (a round takes about a second when they answer), then
// refused.
func checkWitnessedProof(ctx context.Context, client *server.AuditLogClient, p *auditlog.InclusionProof, vkey string, witnesses []note.Verifier, quorum int, wait time.Duration) error {
	c, err := auditlog.OpenCheckpoint([]byte(p.Checkpoint), vkey)
	if err != nil {
		return err
	}
	last := int64(-1)
	for _, e := range p.Entries {
		last = max(last, e.Index)
	}
	var w auditlog.Checkpoint
	for deadline := time.Now().Add(wait); ; {
		signed, err := client.Checkpoint(ctx, p.CertificateAuthorityArn)
		if err != nil {
			return err
		}
		// A log the witnesses have not cosigned yet (a new CA's) has no
		// quorum: waited for as an entry past their last cosignature is.
		w, _, err = audit.OpenWitnessed(signed, vkey, witnesses, quorum, time.Time{})
		if err == nil && w.Size > last {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if w.Origin != c.Origin {
		return fmt.Errorf("the witnessed checkpoint is of the log %q, not %q", w.Origin, c.Origin)
	}
	small, large := c, w // the proof's checkpoint, then the witnessed
	if w.Size < c.Size {
		if last >= w.Size {
			return fmt.Errorf("entry %d is past the %d entries the witnesses cosigned in the %s this waited: are they answering the server?", last, w.Size, wait)
		}
		small, large = w, c
	}
	switch {
	case small.Size == large.Size && small.Root != large.Root:
		return fmt.Errorf("the witnessed log of %d entries has another root than the proof's: the server showed the witnesses another history", w.Size)
	case small.Size < large.Size:
		proof, err := client.Consistency(ctx, p.CertificateAuthorityArn, small.Size, large.Size)
		if err != nil {
			return err
		}
		if tlog.CheckTree(proof, large.Size, large.Root, small.Size, small.Root) != nil {
			return fmt.Errorf("the witnessed log (%d entries) and the proof's (%d entries) are not one history: the server showed the witnesses another", w.Size, c.Size)
		}
	}
	return nil
}

// proofBeside returns the path of the proof file beside a report: that of
// this version, unless only one of an earlier version is there.
func proofBeside(report string) string {
	_, err := os.Stat(report + auditlog.ProofSuffix)
	if _, legacy := os.Stat(report + auditlog.LegacyProofSuffix); errors.Is(err, os.ErrNotExist) && legacy == nil {
		return report + auditlog.LegacyProofSuffix
	}
	return report + auditlog.ProofSuffix
}

// proveFromFile proves a certificate's entries from a proof file.
func proveFromFile(path, serial string) (*auditlog.InclusionProof, error) {
	want := strings.ToLower(strings.ReplaceAll(serial, ":", ""))
	digits := []byte(strings.TrimLeft(want, "0")) // in every record that names it
	// A certificate has its issuance and at most its revocation.
	p, err := proveEntries(path, "the certificate "+serial, 2, func(record []byte) bool {
		var r openpca.KeyUseRecord
		return bytes.Contains(record, digits) && json.Unmarshal(record, &r) == nil && strings.TrimLeft(r.Serial, "0") == string(digits) &&
			(r.Kind == openpca.KeyUseIssue || r.Kind == openpca.KeyUseRevoke)
	})
	if err == nil {
		p.Serial = want
	}
	return p, err
}

// proveCRLFromFile proves the entry of CRL number from a proof file.
func proveCRLFromFile(path string, number int64) (*auditlog.InclusionProof, error) {
	kind, crlNumber := []byte(`"kind":"`+openpca.KeyUseCRL+`"`), fmt.Appendf(nil, `"crlNumber":%d,`, number)
	p, err := proveEntries(path, fmt.Sprintf("CRL %d", number), 1, func(record []byte) bool {
		var r openpca.KeyUseRecord
		return bytes.Contains(record, kind) && bytes.Contains(record, crlNumber) && json.Unmarshal(record, &r) == nil &&
			r.Kind == openpca.KeyUseCRL && r.CRLNumber == number
	})
	if err == nil {
		p.CRLNumber = number
	}
	return p, err
}

// proveEntries proves from a proof file the entries about what that
// match, at most max of them: a file of more copies is not a log, and
// would take all memory. It reads the file twice: to find the entries,
// then to hash the tree, keeping only the hashes their proofs need.
func proveEntries(path, what string, max int, match func(record []byte) bool) (*auditlog.InclusionProof, error) {
	f, err := smallfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n int64
	var entries []auditlog.ProvenEntry
	h, err := auditlog.ReadProof(f, nil, func(seq int64, record []byte) error {
		n++
		if match(record) {
			if len(entries) == max {
				return fmt.Errorf("%s has more than %d log entries about %s: it is not a log's", path, max, what)
			}
			entries = append(entries, auditlog.ProvenEntry{Index: seq, Record: string(record)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s has no log entry about %s", path, what)
	}
	indexes := make([]int64, len(entries))
	for i, e := range entries {
		indexes[i] = e.Index
	}
	proofs, err := auditlog.Prove(n, indexes, func(yield func([]byte) error) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := auditlog.ReadProof(f, nil, func(_ int64, record []byte) error { return yield(record) })
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Proof = proofs[i]
	}
	return &auditlog.InclusionProof{CertificateAuthorityArn: h.CertificateAuthorityArn, Checkpoint: h.Checkpoint, Entries: entries}, nil
}

// verifierKey returns the key in the file key names, or key itself: a
// path may hold a "+" as a key does.
func verifierKey(key string) (string, error) {
	b, err := smallfile.Read(key)
	switch {
	case err == nil:
		return strings.TrimSpace(string(b)), nil
	case strings.Contains(key, "+"):
		return key, nil
	}
	return "", fmt.Errorf("--key is neither a public key nor a readable file: %w", err)
}

// serverFlags name the OpenPCA server whose audit log a command asks.
type serverFlags struct {
	server   string
	caBundle string
}

func (c *serverFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "the OpenPCA server's URL, e.g. http://127.0.0.1:8080")
	fs.StringVar(&c.caBundle, "ca-bundle", "", "PEM bundle of the CAs to trust for an https:// server")
}

// client returns a client of the server, nil if none is named.
func (c *serverFlags) client() (*server.AuditLogClient, error) {
	if c.server == "" {
		return nil, nil
	}
	return server.NewAuditLogClient(c.server, c.caBundle)
}
