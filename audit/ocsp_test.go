package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestCheckOCSPAnswer: an answer's word must be the log's, give or take
// the clocks' skew, and its signing in the log: the answer's own where
// the CA signed it, its responder's issuance where a responder did.
func TestCheckOCSPAnswer(t *testing.T) {
	f := newLogFixture(t, 10, openpca.AuditReportResponseFormatJson) // revokes the 1st and the 6th an hour after their issuance
	responder := []byte("a responder's certificate")
	resp := *f.rows[9]
	resp.Serial, resp.DER, resp.RequestedBy = "0e", responder, openpca.ResponderPrincipal
	f.records = append(f.records, openpca.IssueUse(f.ca.ARN, &resp).Record)
	byCA := []byte("an answer the CA signed")
	issued, revokedAt := f.rows[0].IssuedAt, f.rows[0].RevokedAt
	f.records = append(f.records, openpca.OCSPUse(f.ca, f.rows[0].Serial, "good", issued.Add(time.Minute), byCA).Record)
	_, proof := f.write(t)
	answer := func(row int, status string, producedAt time.Time) OCSPAnswer {
		return OCSPAnswer{DER: []byte("answer"), Serial: f.rows[row].Serial, Status: status, ProducedAt: producedAt,
			ThisUpdate: producedAt, NextUpdate: producedAt.Add(openpca.OCSPValidity), Responder: responder}
	}
	unissued := func(status string) OCSPAnswer {
		a := answer(0, status, issued)
		a.Serial = "0bad"
		return a
	}
	// backdated is a's produced at earlier, its thisUpdate left.
	backdated := func(a OCSPAnswer, producedAt time.Time) OCSPAnswer {
		a.ProducedAt = producedAt
		return a
	}
	holding := func(a OCSPAnswer, d time.Duration) OCSPAnswer {
		a.NextUpdate = a.ThisUpdate.Add(d)
		return a
	}
	signedBy := func(a OCSPAnswer, responder []byte) OCSPAnswer {
		a.Responder = responder
		return a
	}
	revoked := func(a OCSPAnswer, at time.Time, reason int) OCSPAnswer {
		a.RevokedAt, a.Reason = at, reason
		return a
	}
	signedByCA := answer(0, "good", issued.Add(time.Minute))
	signedByCA.DER, signedByCA.Responder = byCA, nil
	unlogged := signedByCA
	unlogged.DER = []byte("another answer the CA signed")
	for _, tc := range []struct {
		name string
		a    OCSPAnswer
		want string // "": it holds
	}{
		{"good before the revocation", answer(0, "good", issued.Add(time.Minute)), ""},
		{"good long after it", answer(0, "good", revokedAt.Add(time.Hour)), "the log revoked it at"},
		{"good within the skew after it", answer(0, "good", revokedAt.Add(time.Minute)), ""},
		{"good of one never revoked", answer(1, "good", revokedAt.Add(time.Hour)), ""},
		{"good of one the log never issued", unissued("good"), "issued no certificate"},
		{"good before its issuance", answer(1, "good", issued.Add(-time.Hour)), "issued no certificate"},
		{"good, produced before the revocation, holding from long after", backdated(answer(0, "good", revokedAt.Add(time.Hour)), issued), "the log revoked it at"},
		{"good, holding from before the revocation, produced long after", backdated(answer(0, "good", issued), revokedAt.Add(time.Hour)), "the log revoked it at"},
		{"holding past a day", holding(answer(0, "good", issued), 365*24*time.Hour), "longer than"},
		{"holding without end", func() OCSPAnswer { a := answer(0, "good", issued); a.NextUpdate = time.Time{}; return a }(), "longer than"},
		{"after the checkpoint", answer(1, "good", time.Now().Add(time.Hour)), "before the answer's time"},
		{"revoked as the log says", revoked(answer(0, "revoked", revokedAt.Add(time.Hour)), revokedAt, 1), ""},
		{"revoked for another reason", revoked(answer(0, "revoked", revokedAt.Add(time.Hour)), revokedAt, 4), "for reason 4; the log revoked it at"},
		{"revoked at another time", revoked(answer(0, "revoked", revokedAt.Add(time.Hour)), revokedAt.Add(-time.Hour), 1), "the log revoked it at"},
		{"revoked of one never revoked", revoked(answer(1, "revoked", revokedAt), revokedAt, 1), "the log did not revoke it"},
		{"revoked before the revocation", revoked(answer(0, "revoked", revokedAt.Add(-time.Hour)), revokedAt, 1), "the log did not revoke it"},
		{"unknown of one never issued", unissued("unknown"), ""},
		{"unknown of one issued", answer(1, "unknown", issued.Add(time.Hour)), "the log issued it at"},
		{"unknown within the skew of its issuance", answer(1, "unknown", issued.Add(time.Minute)), ""},
		{"signed by the CA, logged", signedByCA, ""},
		{"signed by the CA outside the log", unlogged, "the CA's key signed the answer outside its log"},
		{"a responder outside the log", signedBy(answer(1, "good", issued.Add(time.Hour)), []byte("another")), "is no responder's issuance in the log"},
		{"a subscriber's certificate as its responder", signedBy(answer(1, "good", issued.Add(time.Hour)), f.rows[3].DER), "is no responder's issuance in the log"},
		{"an answer the CA signed as its responder", signedBy(answer(1, "good", issued.Add(time.Hour)), byCA), "is no responder's issuance in the log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := CheckOCSPAnswer(bytes.NewReader(proof), f.vkey, &tc.a)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("%v; want %q", err, tc.want)
			}
			if err == nil && (p.CertificateAuthorityArn != f.ca.ARN || p.Size != int64(len(f.records))) {
				t.Errorf("%+v", p)
			}
		})
	}
	if _, err := CheckOCSPAnswer(bytes.NewReader(proof), f.vkey[:len(f.vkey)-2]+"AA", &signedByCA); err == nil {
		t.Error("a proof file checked with another key")
	}
}
