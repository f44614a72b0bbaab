package awsjson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/openpca/openpca"
)

// FuzzDecodeInput checks that a request decoded from the checked value
// (shape.set) is what encoding/json makes of that value, written out again
// with the members the model does not have left out: for every operation,
// whatever the body.
func FuzzDecodeInput(f *testing.F) {
	seeds := []string{
		`{"CertificateAuthorityArn":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555","Csr":"LS0tLS1CRUdJTg==","SigningAlgorithm":"SHA256WITHECDSA","Validity":{"Type":"DAYS","Value":7},"ValidityNotBefore":{"Type":"ABSOLUTE","Value":1700000000},"IdempotencyToken":"t","ApiPassthrough":{"Extensions":{"SubjectAlternativeNames":[{"DnsName":"a.example"},{"Rfc822Name":"b@example.com"}],"KeyUsage":{"DigitalSignature":true,"KeyEncipherment":false},"CustomExtensions":[{"ObjectIdentifier":"1.2.3","Value":"AQI=","Critical":true}]},"Subject":{"CommonName":"x","CustomAttributes":[{"ObjectIdentifier":"2.5.4.3","Value":"y"}]}}}`,
		`{"CertificateAuthorityType":"ROOT","CertificateAuthorityConfiguration":{"KeyAlgorithm":"EC_prime256v1","SigningAlgorithm":"SHA256WITHECDSA","Subject":{"CommonName":"x"},"CsrExtensions":{"KeyUsage":{"KeyCertSign":true}}},"RevocationConfiguration":{"CrlConfiguration":{"Enabled":true,"ExpirationInDays":7,"S3BucketName":"b"},"OcspConfiguration":{"Enabled":false}},"Tags":[{"Key":"k","Value":"v"},{"Key":"k2"}],"UsageMode":"SHORT_LIVED_CERTIFICATE"}`,
		`{"MaxResults":1,"NextToken":"n","ResourceOwner":"SELF"}`,
		`{"CertificateAuthorityArn":"a","validity":{"Type":"DAYS","Value":1},"Validity":{"Type":"YEARS","Value":2},"Unknown":[1,2,{"x":null}]}`,
		`{"Validity":{"Type":"DAYS","Value":1},"Validity":{"Value":2}}`,
		`{"Validity":null,"Csr":null,"Tags":null}`,
		`{"CertificateAuthorityArn":"a","Csr":"","Tags":[]}`,
		`{"CertificateAuthorityArn":"a","AuditReportResponseFormat":"JSON","S3BucketName":"b"}`,
		`{"Permission":{"Actions":["IssueCertificate","GetCertificate"],"Principal":"acm.amazonaws.com"}}`,
		`{"Certificate":"QQ==","CertificateChain":"Qg==","CertificateAuthorityArn":"a"}`,
		`{"MaxResults":2147483647}`,
		`{"MaxResults":-0}`,
		`{}`,
	}
	ops := OperationNames()
	for i := range ops {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	stop := errors.New("decoded")
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		op := operations[ops[int(which)%len(ops)]]
		_, err := op.invoke(context.Background(), nil, func(in any) error {
			got := reflect.New(reflect.TypeOf(in).Elem())
			err := decodeInput(op.input, body, got.Interface())
			want := reflect.New(reflect.TypeOf(in).Elem())
			wantErr := decodeAgain(op.input, body, want.Interface())
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%s: set: %v; encoded and decoded again: %v", op.name, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got.Interface(), want.Interface()) {
				g, _ := json.Marshal(got.Interface())
				w, _ := json.Marshal(want.Interface())
				t.Fatalf("%s: set %s; encoded and decoded again %s", op.name, g, w)
			}
			return stop
		})
		if !errors.Is(err, stop) {
			t.Fatalf("%s: the decoder was not called: %v", op.name, err)
		}
	})
}

// decodeAgain is how decodeInput decoded a request before shape.set: the
// checked value, without the members the model does not have, written out
// again and decoded by encoding/json.
func decodeAgain(sh *shape, body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var probe struct{}
	if err := decodeInput(&shape{name: "probe", kind: kindStructure}, body, &probe); err != nil {
		return err // not JSON, or not an object: both ways refuse it alike
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	var vs violations
	if err := sh.check(v, "", &vs); err != nil {
		return err
	}
	if vs.n > 0 {
		return errors.New("violations")
	}
	dropUnknown(sh, v)
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, in)
}

func dropUnknown(s *shape, v any) {
	switch s.kind {
	case kindList:
		for _, elem := range v.([]any) {
			dropUnknown(s.member, elem)
		}
	case kindStructure:
		obj := v.(map[string]any)
		for name, mv := range obj {
			i := slices.IndexFunc(s.members, func(m member) bool { return m.name == name })
			switch {
			case i < 0:
				delete(obj, name)
			case mv != nil:
				dropUnknown(s.members[i].shape, mv)
			}
		}
	}
}

// BenchmarkDecodeInput decodes an IssueCertificate request of the size
// the AWS CLI sends for a P-256 CSR, both ways.
func BenchmarkDecodeInput(b *testing.B) {
	csr := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"), 16))
	body := []byte(`{"CertificateAuthorityArn":"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555","Csr":"` + csr + `","SigningAlgorithm":"SHA256WITHECDSA","Validity":{"Type":"DAYS","Value":7},"IdempotencyToken":"token"}`)
	op := operations["IssueCertificate"]
	for _, c := range []struct {
		name   string
		decode func(*shape, []byte, any) error
	}{{"set", decodeInput}, {"encoded-again", decodeAgain}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var in openpca.IssueCertificateRequest
				if err := c.decode(op.input, body, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
