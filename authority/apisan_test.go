package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// TestAPIPassthroughTypedDirectoryNameEntries: a directory name that is
// empty or has a control character is MalformedCSRException whether the
// CSR, a CustomExtension or ApiPassthrough's SubjectAlternativeNames gives
// it (README); the last was InvalidArgsException.
func TestAPIPassthroughTypedDirectoryNameEntries(t *testing.T) {
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Typed SAN Entries Root")
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ok.example"}}).CSRPEM
	for _, tt := range []struct {
		name string
		gn   types.GeneralName
	}{
		{"an empty directory name", types.GeneralName{DirectoryName: &types.ASN1Subject{}}},
		{"a directory name with a NUL", types.GeneralName{DirectoryName: &types.ASN1Subject{CommonName: aws.String("bank.example\x00.evil.example")}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: csr,
				TemplateArn: aws.String(tmplPrefix + "EndEntityCertificate_APIPassthrough/V1"),
				ApiPassthrough: &types.ApiPassthrough{Extensions: &types.Extensions{SubjectAlternativeNames: []types.GeneralName{
					{DnsName: aws.String("ok.example")}, tt.gn}}},
				SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
			if err == nil {
				t.Fatalf("issued %s", *out.CertificateArn)
			}
			testenv.WantError(t, err, "MalformedCSRException")
		})
	}
}
