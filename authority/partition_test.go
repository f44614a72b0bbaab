package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestPartitions: ARNs name the partition of the server's region, as
// AWS's endpoint data defines it; a template's ARN must name it too, and an
// ARN with another partition is refused.
func TestPartitions(t *testing.T) {
	for _, tc := range []struct{ region, partition string }{
		{"us-east-1", "aws"},
		{"eu-west-3", "aws"},
		{"cn-north-1", "aws-cn"},
		{"us-gov-west-1", "aws-us-gov"},
		{"eusc-de-east-1", "aws-eusc"},
		{"us-iso-east-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-south-1", "aws-iso-f"},
	} {
		t.Run(tc.region, func(t *testing.T) {
			env := testenv.Start(t, func(c *app.Config) { c.Region = tc.region })
			env.Client = acmpca.New(env.Client.Options(), func(o *acmpca.Options) { o.Region = tc.region })
			caARN, _ := env.NewActiveRoot(t, "Partitioned Root")
			if want := "arn:" + tc.partition + ":acm-pca:" + tc.region + ":" + app.DefaultAccountID + ":certificate-authority/"; !strings.HasPrefix(caARN, want) {
				t.Fatalf("CA ARN %s, want one starting %s", caARN, want)
			}
			csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "partition.example"}}).CSRPEM
			template := func(partition string) *string {
				return aws.String("arn:" + partition + ":acm-pca:::template/EndEntityCertificate/V1")
			}
			certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
			if !strings.HasPrefix(certARN, caARN+"/certificate/") {
				t.Errorf("certificate ARN %s", certARN)
			}
			env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr, TemplateArn: template(tc.partition)})
			other := "aws-us-gov"
			if tc.partition == other {
				other = "aws"
			}
			_, err := env.Client.IssueCertificate(t.Context(), &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr,
				SigningAlgorithm: "SHA256WITHECDSA", Validity: &types.Validity{Type: "DAYS", Value: aws.Int64(30)}, TemplateArn: template(other)})
			testenv.WantError(t, err, "InvalidArgsException")
			wrong := "arn:" + other + strings.TrimPrefix(caARN, "arn:"+tc.partition)
			_, err = env.Client.DescribeCertificateAuthority(t.Context(), &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &wrong})
			testenv.WantError(t, err, "InvalidArnException")
			if _, err := env.Client.GetCertificate(t.Context(), &acmpca.GetCertificateInput{CertificateAuthorityArn: &caARN, CertificateArn: &certARN}); err != nil {
				t.Error(err)
			}
		})
	}
}
