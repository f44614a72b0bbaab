package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// ekuWithTrailingData is an extended key usage extension's value, serverAuth,
// followed by three bytes that are no part of it.
func ekuWithTrailingData(t *testing.T) []byte {
	t.Helper()
	v, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	if err != nil {
		t.Fatal(err)
	}
	return append(v, 0x04, 0x01, 0x00)
}

// issueWith issues with a template of tmplPrefix and returns the error.
func issueWith(env *testenv.Env, caARN, tmpl string, csr []byte, api *types.ApiPassthrough) error {
	_, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr,
		TemplateArn: aws.String(tmplPrefix + tmpl + "/V1"), ApiPassthrough: api, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	return err
}

// TestCSRPassthroughEKUTrailingData: AWS's "Certificate request
// validation" rejects, with a MalformedCSRException, "requests whose
// certificate would contain ... An extended key usage extension with three
// or more bytes of extra data after its encoded value". Go's CSR parser
// does not read the extension, and its certificate parser ignores what
// follows the SEQUENCE: a CSR passthrough template copied it into the
// certificate and signed it.
func TestCSRPassthroughEKUTrailingData(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "EKU Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "eku"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: ekuWithTrailingData(t)}}}).CSRPEM
	for _, tmpl := range []string{"BlankEndEntityCertificate_CSRPassthrough", "BlankEndEntityCertificate_APICSRPassthrough",
		"BlankEndEntityCertificate_CriticalBasicConstraints_CSRPassthrough", "BlankSubordinateCACertificate_PathLen0_CSRPassthrough"} {
		t.Run(tmpl, func(t *testing.T) {
			testenv.WantError(t, issueWith(env, rootARN, tmpl, csr, nil), "MalformedCSRException")
		})
	}
}

// TestAPIPassthroughUnreadableExtensions: the same page's checks "apply to
// all IssueCertificate requests" and cover "A SAN IP address that isn't 4
// or 16 bytes long" and "A key usage, basic constraints, or SAN extension
// ... that can't be parsed"; its troubleshooting page says of the
// MalformedCSRException "If the value comes from API passthrough, correct
// the API passthrough values". These came back InvalidArgsException.
func TestAPIPassthroughUnreadableExtensions(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "API Root")
	good := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok"}}).CSRPEM
	custom := func(oid string, value []byte) *types.ApiPassthrough {
		return &types.ApiPassthrough{Extensions: &types.Extensions{CustomExtensions: []types.CustomExtension{
			{ObjectIdentifier: aws.String(oid), Value: aws.String(base64.StdEncoding.EncodeToString(value))}}}}
	}
	for _, tc := range []struct {
		name, template string
		api            *types.ApiPassthrough
	}{
		{"an EKU with trailing data", "BlankEndEntityCertificate_APIPassthrough", custom("2.5.29.37", ekuWithTrailingData(t))},
		{"a 5-byte SAN IP address", "EndEntityCertificate_APIPassthrough", custom("2.5.29.17", []byte{0x30, 0x07, 0x87, 0x05, 10, 0, 0, 1, 1})},
		{"a key usage that is not a BIT STRING", "BlankEndEntityCertificate_APIPassthrough", custom("2.5.29.15", []byte{0x05, 0x00})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.WantError(t, issueWith(env, rootARN, tc.template, good, tc.api), "MalformedCSRException")
		})
	}
}
