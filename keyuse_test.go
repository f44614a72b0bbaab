package openpca

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendRecord: a record made without reflection is the record
// encoding/json makes, byte for byte, whatever its fields hold.
func FuzzAppendRecord(f *testing.F) {
	f.Add("ISSUE", "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x", "CN=a.example,O=Example", "2026-11-30T12:00:00.123456Z", int64(0), -1)
	f.Add("CRL", "", "CN=<script>&\"\\\u2028\x01\xff", "", int64(12), 3)
	f.Fuzz(func(t *testing.T, kind, arn, subject, at string, crlNumber int64, revoked int) {
		r := KeyUseRecord{Kind: kind, CertificateAuth: arn, At: at, Account: arn, RequestedBy: subject, RequestID: at,
			CertificateArn: arn, Serial: kind, Subject: subject, NotBefore: at, NotAfter: subject, TemplateArn: arn,
			RevocationReason: kind, CRLNumber: crlNumber, ThisUpdate: at, NextUpdate: subject, ExpiringFrom: subject, EntriesSHA256: kind,
			CertificateSHA256: subject, ChainSHA256: at, CertStatus: kind, SignedSHA256: at}
		if revoked >= 0 {
			r.Revoked = &revoked
			r.RevocationsBefore = &crlNumber
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		r = KeyUseRecord{Kind: kind} // the members left out when empty
		want, _ = json.Marshal(r)
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
