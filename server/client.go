package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/smallfile"
)

// AuditLogClient asks an OpenPCA server for its audit log, signing its
// requests as the AWS SDK signs the API's, with the standard AWS
// configuration, for the region of the CA asked about.
type AuditLogClient struct {
	url  string
	http *http.Client
}

// maxAuditLogReply bounds what the client reads of a reply.
const maxAuditLogReply = 16 << 20

// NewAuditLogClient returns a client of the server at serverURL, which
// trusts the CAs of the PEM file caBundle for HTTPS if it is not "".
func NewAuditLogClient(serverURL, caBundle string) (*AuditLogClient, error) {
	hc := &http.Client{Timeout: time.Minute}
	if caBundle != "" {
		pem, err := smallfile.Read(caBundle)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caBundle)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	return &AuditLogClient{url: strings.TrimSuffix(serverURL, "/"), http: hc}, nil
}

// PublicKey returns the server's audit key, a note verifier key.
func (c *AuditLogClient) PublicKey(ctx context.Context) (string, error) {
	b, err := c.get(ctx, PathPublicKey, nil, "")
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if _, err := note.NewVerifier(key); err != nil {
		return "", fmt.Errorf("the server's audit public key %s is not a verifier key: %v", audit.Printable(key), err)
	}
	return key, nil
}

// Checkpoint returns the CA's checkpoint the server serves: with witnesses,
// the latest they cosigned.
func (c *AuditLogClient) Checkpoint(ctx context.Context, caARN string) ([]byte, error) {
	return c.get(ctx, PathCheckpoint, url.Values{"certificateAuthorityArn": {caARN}}, caARN)
}

// CurrentCheckpoint returns the CA's checkpoint of its whole log, signed
// now, never a witnessed one, which may be older.
func (c *AuditLogClient) CurrentCheckpoint(ctx context.Context, caARN string) ([]byte, error) {
	return c.get(ctx, PathCheckpoint, url.Values{"certificateAuthorityArn": {caARN}, "current": {"true"}}, caARN)
}

// Consistency returns a proof that the CA's log of to entries extends its
// log of from entries.
func (c *AuditLogClient) Consistency(ctx context.Context, caARN string, from, to int64) (tlog.TreeProof, error) {
	body, err := c.get(ctx, PathConsistency, url.Values{"certificateAuthorityArn": {caARN},
		"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}, caARN)
	if err != nil {
		return nil, err
	}
	var res struct {
		Proof tlog.TreeProof `json:"proof"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("the server's consistency proof: %v", err)
	}
	return res.Proof, nil
}

// Inclusion returns a proof of the log entries of a certificate the CA
// issued (serial in hex).
func (c *AuditLogClient) Inclusion(ctx context.Context, caARN, serial string) (*auditlog.InclusionProof, error) {
	return c.inclusion(ctx, caARN, url.Values{"serial": {serial}})
}

func (c *AuditLogClient) inclusion(ctx context.Context, caARN string, q url.Values) (*auditlog.InclusionProof, error) {
	q.Set("certificateAuthorityArn", caARN)
	body, err := c.get(ctx, PathInclusion, q, caARN)
	if err != nil {
		return nil, err
	}
	p := new(auditlog.InclusionProof)
	if err := json.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("the server's inclusion proof: %v", err)
	}
	return p, nil
}

// CRLInclusion returns a proof of the log entry of the CA's CRL of number
// and thisUpdate.
func (c *AuditLogClient) CRLInclusion(ctx context.Context, caARN string, number int64, thisUpdate time.Time) (*auditlog.InclusionProof, error) {
	return c.inclusion(ctx, caARN, url.Values{"crlNumber": {strconv.FormatInt(number, 10)}, "thisUpdate": {thisUpdate.UTC().Format(time.RFC3339)}})
}

// Reports lists the CA's latest audit reports, the newest first.
func (c *AuditLogClient) Reports(ctx context.Context, caARN string) ([]AuditReportInfo, error) {
	body, err := c.get(ctx, PathReports, url.Values{"certificateAuthorityArn": {caARN}}, caARN)
	if err != nil {
		return nil, err
	}
	var res struct {
		Reports []AuditReportInfo `json:"reports"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("the server's list of audit reports: %v", err)
	}
	return res.Reports, nil
}

// get fetches path?query; signed for the region of arn unless arn is "".
func (c *AuditLogClient) get(ctx context.Context, path string, query url.Values, arn string) ([]byte, error) {
	u := c.url + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if arn != "" {
		if err := sign(ctx, req, arn); err != nil {
			return nil, err
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAuditLogReply))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		// Escaped: an auditor's server may be the party audited, and
		// its error would be printed on the auditor's terminal.
		if json.Unmarshal(body, &e) == nil && e.Type != "" {
			return nil, fmt.Errorf("%s: %s: %s", path, audit.Printable(e.Type), audit.Printable(e.Message))
		}
		return nil, fmt.Errorf("%s: HTTP %d", path, res.StatusCode)
	}
	return body, nil
}

// sign signs req as the SDK signs the API's requests in the region of arn.
func sign(ctx context.Context, req *http.Request, arn string) error {
	p, err := openpca.ParseCAARN(arn)
	if err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(p.Region))
	if err != nil {
		return err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials to sign with: %w", err)
	}
	empty := sha256.Sum256(nil)
	return v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), openpca.SigningName, p.Region, time.Now())
}
