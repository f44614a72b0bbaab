package console

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/pki"
)

// pageSize is how many certificates a page lists.
const pageSize = 50

// call runs an operation of the API as the signed-in caller.
func call[Out any](in *signedIn, svc openpca.PrivateCA, operation string, req any) (*Out, error) {
	out, err := awsjson.Invoke(in.ctx, svc, operation, req)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, nil
	}
	return out.(*Out), nil
}

// caNode is a CA in the hierarchy, with what the pages show of it.
type caNode struct {
	openpca.CertificateAuthority
	Name     string
	Cert     *x509.Certificate
	Children []*caNode
	// Left is the share of its validity still to come, 0 to 100.
	Left int
	// KeyStore names the store of the CA's key: software, pkcs11, kms;
	// only for the caller's own CAs, as the API tells no other account.
	KeyStore string
	// SharedBy is the account that shared the CA with the caller's, for
	// a CA of another account: its name is that account's choice, and
	// may copy one of the caller's.
	SharedBy string
}

// withKeyStore sets n's key store, from the store, for a CA of the
// caller's own (it has seen the CA through the API first).
func (c *Console) withKeyStore(in *signedIn, n *caNode) *caNode {
	if p, err := openpca.ParseCAARN(n.Arn); err == nil && n.SharedBy == "" {
		if ca, err := c.cfg.Store.FindCA(in.ctx, p.AccountID, p.CAID); err == nil {
			n.KeyStore = ca.KeyStore
		}
	}
	return n
}

// node is what the pages show of a CA the caller has seen through the
// API, saying which account shared it if it is not the caller's.
func (c *Console) node(in *signedIn, ca openpca.CertificateAuthority, cert *x509.Certificate) *caNode {
	n := &caNode{CertificateAuthority: ca, Cert: cert, Name: caName(ca)}
	if p, err := openpca.ParseCAARN(ca.Arn); err == nil && p.AccountID != in.caller.AccountID {
		n.SharedBy = p.AccountID
	}
	if ca.NotBefore != nil && ca.NotAfter != nil {
		total, left := ca.NotAfter.Sub(ca.NotBefore.Time), ca.NotAfter.Sub(c.cfg.Now())
		if total > 0 {
			n.Left = int(max(0, min(100, 100*left.Seconds()/total.Seconds())))
		}
	}
	return n
}

func caName(ca openpca.CertificateAuthority) string {
	if cfg := ca.CertificateAuthorityConfiguration; cfg != nil && cfg.Subject != nil && cfg.Subject.CommonName != "" {
		return cfg.Subject.CommonName
	}
	return ca.Arn[strings.LastIndex(ca.Arn, "/")+1:]
}

// listCAs shows the caller's CAs, and those shared with it, as a tree:
// each under the CA whose key signed its certificate.
func (c *Console) listCAs(w http.ResponseWriter, r *http.Request, in *signedIn) {
	var all []openpca.CertificateAuthority
	for _, owner := range []openpca.ResourceOwner{openpca.ResourceOwnerSelf, openpca.ResourceOwnerOtherAccounts} {
		for next := ""; ; {
			out, err := call[openpca.ListCertificateAuthoritiesResponse](in, c.cfg.Service, "ListCertificateAuthorities",
				&openpca.ListCertificateAuthoritiesRequest{ResourceOwner: owner, NextToken: next, MaxResults: 100})
			if err != nil {
				c.apiError(w, r, err)
				return
			}
			all = append(all, out.CertificateAuthorities...)
			if next = out.NextToken; next == "" {
				break
			}
		}
	}
	var nodes []*caNode
	extra := in.extra()
	for _, ca := range all {
		var cert *x509.Certificate
		if ca.Status != openpca.CertificateAuthorityStatusPendingCertificate && ca.Status != openpca.CertificateAuthorityStatusDeleted {
			if out, err := call[openpca.GetCertificateAuthorityCertificateResponse](extra, c.cfg.Service, "GetCertificateAuthorityCertificate",
				&openpca.GetCertificateAuthorityCertificateRequest{CertificateAuthorityArn: ca.Arn}); err == nil {
				cert, _ = parsePEM(out.Certificate)
			}
		}
		nodes = append(nodes, c.withKeyStore(in, c.node(in, ca, cert)))
	}
	roots := hierarchy(nodes, c.signatures.verify)
	var expiring []*caNode
	for _, n := range nodes {
		if n.NotAfter != nil && n.NotAfter.Before(c.cfg.Now().AddDate(1, 0, 0)) {
			expiring = append(expiring, n)
		}
	}
	slices.SortFunc(expiring, func(a, b *caNode) int { return a.NotAfter.Compare(b.NotAfter.Time) })
	c.render(w, r, http.StatusOK, "cas", in, map[string]any{"Roots": roots, "Expiring": expiring, "Count": len(nodes)})
}

// The signature checks of a CA page's tree (see hierarchy).
const (
	maxParentTries    = 4
	parentChecksSpare = 16
)

// hierarchy puts each CA under the CA whose key signed its certificate,
// and returns the CAs under none. Key identifiers only say where to look:
// an imported certificate, another account's shared with the caller's
// say, can claim any, so a parent is one whose key verifies the
// signature. Certificates that sign each other in a ring (cross-signed)
// would be under none of the roots: the ring is cut, so that every CA is
// shown once.
//
// The signatures checked are bounded: an account that shares with the
// caller's CAs that all claim one key identifier and name (198 of them,
// with P-521 keys) had every pair checked, 47 s of CPU at each load of
// the page. A CA tries at most maxParentTries candidates of the caller's
// account (first) and of its own, and one of each other account that
// shares CAs (an honest account has one CA of a key identifier and name:
// another's decoys listed first cannot use the tries up); the page checks
// at most one signature per CA and parentChecksSpare more, the caller's
// own CAs' parents found first. A CA left without its checks is shown as
// a root.
func hierarchy(nodes []*caNode, verify func(c, parent *x509.Certificate) error) []*caNode {
	// Parents are looked for among the caller's own CAs first, and for
	// them first.
	var ownFirst, shared []*caNode
	for _, n := range nodes {
		if n.SharedBy == "" {
			ownFirst = append(ownFirst, n)
		} else {
			shared = append(shared, n)
		}
	}
	ownFirst = append(ownFirst, shared...)
	bySKI := map[string][]*caNode{}
	for _, n := range ownFirst {
		if n.Cert != nil && len(n.Cert.SubjectKeyId) > 0 {
			bySKI[string(n.Cert.SubjectKeyId)] = append(bySKI[string(n.Cert.SubjectKeyId)], n)
		}
	}
	parents := map[*caNode]*caNode{}
	budget := len(nodes) + parentChecksSpare
	for _, n := range ownFirst {
		if n.Cert == nil || bytes.Equal(n.Cert.RawIssuer, n.Cert.RawSubject) {
			continue
		}
		tries := map[string]int{} // by the candidates' account, "" the caller's
		for _, p := range bySKI[string(n.Cert.AuthorityKeyId)] {
			if budget == 0 {
				break
			}
			limit := 1
			if p.SharedBy == "" || p.SharedBy == n.SharedBy {
				limit = maxParentTries
			}
			if p == n || !bytes.Equal(n.Cert.RawIssuer, p.Cert.RawSubject) || tries[p.SharedBy] == limit {
				continue
			}
			tries[p.SharedBy]++
			budget--
			if verify(n.Cert, p.Cert) == nil {
				parents[n] = p
				break
			}
		}
	}
	for _, n := range nodes {
		// Up from n: back at n is a ring, which n leaves.
		for p, steps := parents[n], 0; p != nil && steps < len(nodes); p, steps = parents[p], steps+1 {
			if p == n {
				delete(parents, n)
				break
			}
		}
	}
	var roots []*caNode
	for _, n := range nodes {
		if p := parents[n]; p != nil {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	return roots
}

// describe finds the CA a page names with its arn parameter, as the
// caller may see it.
func (c *Console) describe(w http.ResponseWriter, r *http.Request, in *signedIn) (*openpca.CertificateAuthority, bool) {
	out, err := call[openpca.DescribeCertificateAuthorityResponse](in, c.cfg.Service, "DescribeCertificateAuthority",
		&openpca.DescribeCertificateAuthorityRequest{CertificateAuthorityArn: r.FormValue("arn")})
	if err != nil {
		c.apiError(w, r, err)
		return nil, false
	}
	return out.CertificateAuthority, true
}

func (c *Console) showCA(w http.ResponseWriter, r *http.Request, in *signedIn) {
	ca, ok := c.describe(w, r, in)
	if !ok {
		return
	}
	data := map[string]any{"CA": c.withKeyStore(in, c.node(in, *ca, nil)), "Formats": openpca.AuditReportResponseFormat("").Values(), "Reasons": openpca.RevocationReason("").Values()}
	extra := in.extra()
	if tags, err := call[openpca.ListTagsResponse](extra, c.cfg.Service, "ListTags", &openpca.ListTagsRequest{CertificateAuthorityArn: ca.Arn}); err == nil {
		data["Tags"] = tags.Tags
	}
	if crlCfg := ca.RevocationConfiguration.CrlConfiguration; crlCfg != nil && crlCfg.Enabled != nil && *crlCfg.Enabled {
		data["LatestCRL"] = c.latestCRL(in, ca)
	}
	// The audit log's operations are authorized as its endpoints' are.
	if reports, err := c.cfg.AuditLog.AuditReports(openpca.WithOperation(extra.ctx, openpca.OperationAuditReports), ca.Arn); err == nil {
		data["Reports"] = reports
	} else if refused(err) {
		data["ReportsRefused"] = true // not "No report yet"
	} else {
		data["ReportsError"] = c.errorMessage(r.Context(), err)
	}
	if signed, err := c.cfg.AuditLog.AuditCheckpoint(openpca.WithOperation(extra.ctx, openpca.OperationAuditCheckpoint), ca.Arn, true); err == nil {
		data["Checkpoint"] = checkpointOf(signed)
	} else if !refused(err) {
		data["CheckpointError"] = c.errorMessage(r.Context(), err)
	}
	c.render(w, r, http.StatusOK, "ca", in, data)
}

// latestCRL is the thisUpdate of the CA's last CRL published, if any: as
// the publisher recorded it, not read from the bucket, where a CRL may be
// many MB.
func (c *Console) latestCRL(in *signedIn, ca *openpca.CertificateAuthority) *time.Time {
	at, err := c.cfg.Store.LatestCRL(in.ctx, ca.Arn[strings.LastIndex(ca.Arn, "/")+1:])
	if err != nil || at.IsZero() {
		return nil
	}
	return &at
}

// checkpoint is what the CA page shows of a signed checkpoint.
type checkpoint struct {
	auditlog.Checkpoint
	Note string
	// Signers names the note's signatures: the server's, and witnesses'.
	Signers []string
}

func checkpointOf(signed []byte) *checkpoint {
	text, sigs, _ := strings.Cut(string(signed), "\n\n")
	cp, err := auditlog.ParseCheckpoint(text + "\n")
	if err != nil {
		return nil
	}
	out := &checkpoint{Checkpoint: cp, Note: string(signed)}
	for line := range strings.SplitSeq(strings.TrimSpace(sigs), "\n") {
		if name, ok := strings.CutPrefix(line, "— "); ok {
			if fields := strings.Fields(name); len(fields) > 0 {
				out.Signers = append(out.Signers, fields[0])
			}
		}
	}
	return out
}

// refused reports whether err is the refusal of what a page shows beside
// what it was asked for (in.extra), which the page then leaves out.
func refused(err error) bool {
	return openpca.ErrorCode(err) == openpca.CodeAccessDenied
}

// certificateQuery reads a search from a request.
func (c *Console) certificateQuery(r *http.Request) (openpca.CertificateQuery, error) {
	// Text PostgreSQL takes: it refuses NUL and bytes that are not UTF-8,
	// and the search would fail as the server's own failure.
	text := r.FormValue("q")
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return openpca.CertificateQuery{}, errors.New("the search text is not UTF-8 text, or holds NUL")
	}
	q := openpca.CertificateQuery{Text: truncate(strings.TrimSpace(text), 200), Status: r.FormValue("status"), Now: c.cfg.Now(), Limit: pageSize}
	if s := strings.TrimSpace(r.FormValue("serial")); s != "" {
		serial, err := pki.ParseSerial(s)
		if err != nil {
			return q, fmt.Errorf("the serial %q: %v", truncate(s, 80), err)
		}
		q.Serial = serial
	}
	if !slices.Contains([]string{"", "issued", "revoked", "expired"}, q.Status) {
		return q, fmt.Errorf("there is no status %q", truncate(q.Status, 20))
	}
	if b := r.FormValue("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("the page cursor %q is not one", truncate(b, 20))
		}
		q.Before = n
	}
	return q, nil
}

// Searches by text, and charts, at once. A search reads rows until it
// finds a page of them, up to the search time, and the charts count a
// CA's certificates (872 ms at a million), on the read connections every
// request shares (SQLite has four): one account's must leave the others'
// requests those connections (32 chart loads at once took a victim's
// issuances from 3 to 16 ms at p50).
const (
	maxSearches           = 2
	maxSearchesPerAccount = 1
)

// searchSlots counts the searches by text, and charts, under way.
type searchSlots struct {
	mu        sync.Mutex
	total     int
	byAccount map[string]int
}

// take reports whether account may search now, and if so counts it.
func (s *searchSlots) take(account string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= maxSearches || s.byAccount[account] >= maxSearchesPerAccount {
		return false
	}
	s.total++
	s.byAccount[account]++
	return true
}

// during runs query, a search or the charts' counts of account, if a
// slot is free, and reports whether it ran. The slot is the query's
// alone: the page is written after, so that a client that reads it
// slowly, or not at all, holds none (it held one until the write's
// timeout, two minutes, and two such accounts held every search).
func (s *searchSlots) during(account string, query func()) bool {
	if !s.take(account) {
		return false
	}
	defer s.give(account)
	query()
	return true
}

// give ends a search take let through.
func (s *searchSlots) give(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.byAccount[account]--; s.byAccount[account] == 0 {
		delete(s.byAccount, account)
	}
}

func (c *Console) listCertificates(w http.ResponseWriter, r *http.Request, in *signedIn) {
	ca, ok := c.describe(w, r, in)
	if !ok {
		return
	}
	q, err := c.certificateQuery(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx := in.ctx
	var list []*openpca.ListedCertificate
	query := func() { list, err = c.cfg.Certificates.ListCertificates(ctx, ca.Arn, q) }
	// A filter by text or status may read a large CA's certificates whole
	// to fill a page (a status few match took 0.48 s a million, and eight
	// at once took other accounts' requests to seconds); the plain list
	// and a serial's look-up read a page's rows.
	if q.Serial != "" || q.Text == "" && q.Status == "" {
		query()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.SearchTime)
		defer cancel()
		if !c.searches.during(in.caller.AccountID, query) {
			w.Header().Set("Retry-After", "1")
			c.fail(w, r, http.StatusServiceUnavailable, "Another search by text or status is running, of your account's or others': wait for it, or look a certificate up by its serial.")
			return
		}
	}
	if err != nil && ctx.Err() != nil && in.ctx.Err() == nil {
		c.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("The search did not find %d certificates within %s: few of the CA's certificates match it, and finding a page of them reads many; look a certificate up by its serial.",
			pageSize, c.cfg.SearchTime))
		return
	}
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	data := map[string]any{"CA": c.node(in, *ca, nil), "Certificates": list, "Query": q, "Now": c.cfg.Now(), "Serial": r.FormValue("serial")}
	if len(list) == pageSize {
		next := url.Values{"arn": {ca.Arn}, "q": {q.Text}, "status": {q.Status}, "serial": {r.FormValue("serial")},
			"before": {strconv.FormatInt(list[len(list)-1].IssueSeq, 10)}}
		data["Next"] = "/console/ca/certificates?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "certificates", in, data)
}

// extension is an extension as the certificate page shows it.
type extension struct {
	OID, Name string
	Critical  bool
}

var extensionNames = map[string]string{
	"2.5.29.14": "Subject key identifier", "2.5.29.15": "Key usage", "2.5.29.17": "Subject alternative name",
	"2.5.29.19": "Basic constraints", "2.5.29.31": "CRL distribution points", "2.5.29.32": "Certificate policies",
	"2.5.29.35": "Authority key identifier", "2.5.29.37": "Extended key usage", "1.3.6.1.5.5.7.1.1": "Authority information access",
}

func (c *Console) showCertificate(w http.ResponseWriter, r *http.Request, in *signedIn) {
	ca, ok := c.describe(w, r, in)
	if !ok {
		return
	}
	serial, err := pki.ParseSerial(r.FormValue("serial"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "The serial is not one: "+err.Error())
		return
	}
	out, err := call[openpca.GetCertificateResponse](in, c.cfg.Service, "GetCertificate",
		&openpca.GetCertificateRequest{CertificateAuthorityArn: ca.Arn, CertificateArn: openpca.CertificateARN(ca.Arn, serial)})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	cert, err := parsePEM(out.Certificate)
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	var exts []extension
	for _, e := range cert.Extensions {
		exts = append(exts, extension{OID: e.Id.String(), Name: extensionNames[e.Id.String()], Critical: e.Critical})
	}
	var chain []*x509.Certificate
	for rest := []byte(out.CertificateChain); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if c, err := pki.ParseCertificate(block.Bytes); err == nil {
			chain = append(chain, c)
		}
	}
	data := map[string]any{"CA": c.node(in, *ca, nil), "Cert": cert, "Serial": serial, "PEM": out.Certificate, "Chain": chain, "Extensions": exts,
		"KeyAlgorithm": keyName(cert), "Reasons": openpca.RevocationReason("").Values(),
		// An expired certificate cannot be revoked (RevokeCertificate).
		"Expired": c.cfg.Now().After(cert.NotAfter)}
	// Its status and who requested it, only to a caller who may list the
	// CA's certificates.
	if listed, err := c.cfg.Certificates.ListCertificates(in.extra().ctx, ca.Arn, openpca.CertificateQuery{Serial: serial, Limit: 1}); err == nil && len(listed) == 1 {
		data["Listed"] = listed[0]
	}
	c.render(w, r, http.StatusOK, "certificate", in, data)
}

// chartDays is how far the expiry chart looks ahead, and the activity
// chart back.
const chartDays = 90

// bar is a day of a chart.
type bar struct {
	Day         time.Time
	Count       int
	X, Y, H     int
	Label, Tone string
}

// chart lays out daily counts from from as SVG bars, 6 pixels a day, at
// most 120 high.
func chart(from time.Time, days int, series map[string][]openpca.DayCount) ([]bar, int) {
	peak := 1
	for _, counts := range series {
		for _, d := range counts {
			peak = max(peak, d.Count)
		}
	}
	var bars []bar
	for tone, counts := range series {
		for _, d := range counts {
			i := int(d.Day.Sub(from.Truncate(24*time.Hour)) / (24 * time.Hour))
			if i < 0 || i >= days {
				continue
			}
			h := max(1, d.Count*120/peak)
			x := i * 6
			if tone == "revoked" {
				x += 3
			}
			bars = append(bars, bar{Day: d.Day, Count: d.Count, X: x, Y: 120 - h, H: h, Tone: tone,
				Label: fmt.Sprintf("%s: %d %s", d.Day.Format("2006-01-02"), d.Count, tone)})
		}
	}
	return bars, peak
}

func (c *Console) showCharts(w http.ResponseWriter, r *http.Request, in *signedIn) {
	ca, ok := c.describe(w, r, in)
	if !ok {
		return
	}
	now := c.cfg.Now().UTC()
	since := now.AddDate(0, 0, -chartDays+1).Truncate(24 * time.Hour)
	var expiries, issued, revoked []openpca.DayCount
	var err error
	// The counts read all of the CA's certificates: they have a search's
	// time (a CA of ten million took 9 s).
	ctx, cancel := context.WithTimeout(in.ctx, c.cfg.SearchTime)
	defer cancel()
	if !c.searches.during(in.caller.AccountID, func() {
		expiries, issued, revoked, err = c.cfg.Certificates.CertificateCounts(ctx, ca.Arn, now, now.AddDate(0, 0, chartDays), since)
	}) {
		w.Header().Set("Retry-After", "1")
		c.fail(w, r, http.StatusServiceUnavailable, "Charts or a search by text are being made, for your account or others: try again in a moment.")
		return
	}
	if err != nil && ctx.Err() != nil && in.ctx.Err() == nil {
		c.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("The charts could not be counted within %s: the CA has too many certificates for them. Its list of certificates, by status, is there still.", c.cfg.SearchTime))
		return
	}
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	expiryBars, expiryPeak := chart(now, chartDays, map[string][]openpca.DayCount{"expiring": expiries})
	activityBars, activityPeak := chart(since, chartDays, map[string][]openpca.DayCount{"issued": issued, "revoked": revoked})
	c.render(w, r, http.StatusOK, "charts", in, map[string]any{"CA": c.node(in, *ca, nil), "Days": chartDays, "Width": chartDays * 6,
		"Expiry": expiryBars, "ExpiryPeak": expiryPeak, "Activity": activityBars, "ActivityPeak": activityPeak,
		"ExpiryTotal": total(expiries), "IssuedTotal": total(issued), "RevokedTotal": total(revoked)})
}

func total(counts []openpca.DayCount) int {
	n := 0
	for _, d := range counts {
		n += d.Count
	}
	return n
}

// downloadReport streams a report, or its proof file, from its bucket.
func (c *Console) downloadReport(w http.ResponseWriter, r *http.Request, in *signedIn) {
	ca, ok := c.describe(w, r, in)
	if !ok {
		return
	}
	out, err := call[openpca.DescribeCertificateAuthorityAuditReportResponse](in, c.cfg.Service, "DescribeCertificateAuthorityAuditReport",
		&openpca.DescribeCertificateAuthorityAuditReportRequest{CertificateAuthorityArn: ca.Arn, AuditReportId: r.FormValue("id")})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	if out.AuditReportStatus != openpca.AuditReportStatusSuccess {
		c.fail(w, r, http.StatusNotFound, "The report is "+string(out.AuditReportStatus)+", not SUCCESS: there is nothing to download.")
		return
	}
	// A report lists every certificate of the CA, and its proof file who
	// requested each: the console's certificate list, which a key may be
	// denied.
	if err := c.cfg.Certificates.MayListCertificates(in.ctx, ca.Arn); err != nil {
		c.apiError(w, r, err)
		return
	}
	key := out.S3Key
	if r.FormValue("proof") != "" {
		key += auditlog.ProofSuffix
	}
	f, err := c.cfg.Objects.Get(in.ctx, out.S3BucketName, key)
	if errors.Is(err, openpca.ErrNotFound) && r.FormValue("proof") != "" { // a report of an earlier version
		key = out.S3Key + auditlog.LegacyProofSuffix
		f, err = c.cfg.Objects.Get(in.ctx, out.S3BucketName, key)
	}
	if errors.Is(err, openpca.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "The object "+key+" is no longer in bucket "+out.S3BucketName+".")
		return
	}
	if err != nil {
		c.apiError(w, r, err) // its store away is a 503, as the API's
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", key[strings.LastIndex(key, "/")+1:]))
	sink := &writeErr{w: w}
	// A write that failed is a client that went away, or a HEAD request,
	// which has no body.
	if _, err := io.Copy(sink, f); err != nil && sink.err == nil {
		// A report cut short (its object's read failed, or the request's
		// time ran out) must not end as a whole answer, which the browser
		// would save as the report: the connection is cut instead.
		if !openpca.Abandoned(r.Context(), err) {
			c.cfg.Logger.WarnContext(r.Context(), "console: a report's download was cut short", "bucket", out.S3BucketName, "key", key, "error", err)
		}
		panic(http.ErrAbortHandler)
	}
}

// writeErr is a writer that keeps its first error: a copy's failure is
// then told from its reader's.
type writeErr struct {
	w   io.Writer
	err error
}

func (x *writeErr) Write(p []byte) (int, error) {
	n, err := x.w.Write(p)
	if err != nil && x.err == nil {
		x.err = err
	}
	return n, err
}

// act runs an action's operation and goes back to the CA's page, or says
// why it was refused; the log line names the key, the operation and the
// CA, as the API's request log does (the CA as the form gave it, which the
// operation may have refused: cut to an ARN's length).
func (c *Console) act(w http.ResponseWriter, r *http.Request, in *signedIn, operation, back string, req any) {
	_, err := awsjson.Invoke(in.ctx, c.cfg.Service, operation, req)
	c.cfg.Logger.InfoContext(in.ctx, "console action", "request_id", openpca.RequestIDFrom(in.ctx), "operation", operation, "key", in.caller.Principal,
		"account", in.caller.AccountID, "ca", truncate(r.FormValue("arn"), 200), "error_code", errorCode(err)) // an ARN is 200 bytes at most
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// errorMessage is what a page says of an error: an operation's refusal,
// or that the server failed, which it logs (the page says its log says
// why).
func (c *Console) errorMessage(ctx context.Context, err error) string {
	if e, ok := logged(ctx, c.cfg.Logger, err); ok {
		return e.Code + ": " + e.Message
	}
	return "The server could not answer; its log says why."
}

func errorCode(err error) string {
	if err == nil {
		return ""
	}
	return openpca.ErrorCode(err)
}

// caPage is the address of a CA's page.
func caPage(arn string) string { return "/console/ca?" + url.Values{"arn": {arn}}.Encode() }

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, in *signedIn) {
	arn, serial := r.PostFormValue("arn"), r.PostFormValue("serial")
	back := "/console/ca/certificate?" + url.Values{"arn": {arn}, "serial": {serial}}.Encode()
	c.act(w, r, in, "RevokeCertificate", back, &openpca.RevokeCertificateRequest{CertificateAuthorityArn: arn,
		CertificateSerial: serial, RevocationReason: openpca.RevocationReason(r.PostFormValue("reason"))})
}

func (c *Console) requestReport(w http.ResponseWriter, r *http.Request, in *signedIn) {
	arn := r.PostFormValue("arn")
	c.act(w, r, in, "CreateCertificateAuthorityAuditReport", caPage(arn)+"#reports", &openpca.CreateCertificateAuthorityAuditReportRequest{
		CertificateAuthorityArn: arn, S3BucketName: r.PostFormValue("bucket"), AuditReportResponseFormat: openpca.AuditReportResponseFormat(r.PostFormValue("format"))})
}

func (c *Console) setStatus(w http.ResponseWriter, r *http.Request, in *signedIn) {
	arn := r.PostFormValue("arn")
	c.act(w, r, in, "UpdateCertificateAuthority", caPage(arn), &openpca.UpdateCertificateAuthorityRequest{
		CertificateAuthorityArn: arn, Status: openpca.CertificateAuthorityStatus(r.PostFormValue("status"))})
}

func (c *Console) verifyPage(w http.ResponseWriter, r *http.Request, in *signedIn) {
	c.render(w, r, http.StatusOK, "verify", in, map[string]any{"Key": in.caller.Principal, "AuditKey": c.cfg.AuditLog.AuditVerifierKey()})
}

func parsePEM(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("console: not PEM")
	}
	return pki.ParseCertificate(block.Bytes)
}

// visible shows a name's characters that cannot be seen for what they
// are as escapes: those Unicode gives no glyph (format characters, such
// as a right-to-left override, which would have a subject that reads
// moc.knab-ruoy.www shown as www.your-bank.com, or zero-width joins;
// controls, line and paragraph separators, private-use and unassigned
// code points); the default-ignorable ones that have one, which browsers
// draw as nothing or as blank (U+3164 HANGUL FILLER, U+034F, variation
// selectors); and U+2800, a blank Braille pattern. "bulk-1" followed by
// such characters looked like "bulk-1". A space (U+0020, U+00A0, U+3000
// and the others) shows as the space it is between other characters; at
// the start or the end of a name, or after another space, where HTML
// drops it or it looks like none, it is an escape too: "Prod  Root" and
// "Prod Root " looked like "Prod Root". A backslash before u or U, which
// would look like the start of an escape (a name that reads `Prod
// \u0020Root`), is doubled.
func visible(s string) string {
	runes := []rune(s) // invalid UTF-8 as U+FFFD, as a browser shows it
	escaped := make([]bool, len(runes))
	afterSpace := true // at the start, a space is seen no more than after one
	for i, r := range runes {
		space := unicode.Is(unicode.Zs, r)
		escaped[i] = isHidden(r) || space && (afterSpace || i == len(runes)-1)
		afterSpace = space
	}
	var b strings.Builder
	for i, r := range runes {
		switch {
		case r == '\\' && i+1 < len(runes) && (runes[i+1] == 'u' || runes[i+1] == 'U' || escaped[i+1]):
			b.WriteString(`\\`)
		case !escaped[i]:
			b.WriteRune(r)
		case r > 0xffff:
			fmt.Fprintf(&b, "\\U%08X", r)
		default:
			fmt.Fprintf(&b, "\\u%04X", r)
		}
	}
	return b.String()
}

func isHidden(r rune) bool {
	return !unicode.IsGraphic(r) || r == '\u2800' || unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"visible": visible,
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *openpca.Timestamp:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"hex":       func(b []byte) string { return hex.EncodeToString(b) },
	"serialHex": func(c *x509.Certificate) string { return pki.SerialHex(c.SerialNumber) },
	"colons":    pki.FormatSerial,
	"caPage":    caPage,
	"certPage": func(arn, serial string) string {
		return "/console/ca/certificate?" + url.Values{"arn": {arn}, "serial": {serial}}.Encode()
	},
	"page": func(path, arn string) string { return path + "?" + url.Values{"arn": {arn}}.Encode() },
	"reportLink": func(arn, id string, proof bool) string {
		v := url.Values{"arn": {arn}, "id": {id}}
		if proof {
			v.Set("proof", "1")
		}
		return "/console/ca/report?" + v.Encode()
	},
	"status": func(l *openpca.ListedCertificate, now time.Time) string {
		switch {
		case !l.RevokedAt.IsZero():
			return "revoked"
		case l.NotAfter.Before(now):
			return "expired"
		}
		return "issued"
	},
	"on":   func(b *bool) bool { return b != nil && *b },
	"list": func(s ...string) []string { return s },
}

// keyName names cert's key as the API does (EC_prime256v1, ML_DSA_65), or
// else as Go does. Go's parser leaves the keys it does not know (ML-DSA's)
// unread.
func keyName(cert *x509.Certificate) string {
	if pub, err := pki.ParsePublicKey(cert.RawSubjectPublicKeyInfo); err == nil {
		if alg := pki.KeyAlgorithmOf(pub); alg != "" {
			return string(alg)
		}
	}
	if cert.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
		return "unknown"
	}
	return cert.PublicKeyAlgorithm.String()
}
