package authority_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// TestDescribeDefaults: a CA created with nothing optional is described
// with the defaults the model documents (KeyStorageSecurityStandard aside:
// the software store claims none, see TestKeyStorageSecurityStandard), and
// an enabled CRL or OCSP with the values that take effect.
func TestDescribeDefaults(t *testing.T) {
	env := testenv.Start(t)
	makeLocalBucket(t, env, "crls")
	enabled, disabled := aws.Bool(true), aws.Bool(false)
	for _, tc := range []struct {
		name string
		in   *types.RevocationConfiguration
		want types.RevocationConfiguration
	}{
		{"nothing optional", nil, types.RevocationConfiguration{
			CrlConfiguration:  &types.CrlConfiguration{Enabled: disabled},
			OcspConfiguration: &types.OcspConfiguration{Enabled: disabled},
		}},
		{"a CRL with only its bucket", &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: enabled, S3BucketName: aws.String("crls")}},
			types.RevocationConfiguration{
				// S3ObjectAcl and CrlType: "If no value is specified, the
				// default is PUBLIC_READ"; "COMPLETE - The default setting".
				CrlConfiguration: &types.CrlConfiguration{Enabled: enabled, S3BucketName: aws.String("crls"),
					S3ObjectAcl: types.S3ObjectAclPublicRead, CrlType: types.CrlTypeComplete, ExpirationInDays: aws.Int32(7)},
				OcspConfiguration: &types.OcspConfiguration{Enabled: disabled},
			}},
		{"OCSP alone", &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{Enabled: enabled}}, types.RevocationConfiguration{
			CrlConfiguration:  &types.CrlConfiguration{Enabled: disabled},
			OcspConfiguration: &types.OcspConfiguration{Enabled: enabled},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Defaults"),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot, RevocationConfiguration: tc.in,
			})
			if err != nil {
				t.Fatal(err)
			}
			d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: out.CertificateAuthorityArn})
			if err != nil {
				t.Fatal(err)
			}
			ca := d.CertificateAuthority
			if ca.UsageMode != types.CertificateAuthorityUsageModeGeneralPurpose { // "The default value is GENERAL_PURPOSE."
				t.Errorf("UsageMode %q", ca.UsageMode)
			}
			got, _ := json.Marshal(ca.RevocationConfiguration)
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("RevocationConfiguration\n got %s\nwant %s", got, want)
			}
		})
	}

	caARN, _ := env.NewActiveRoot(t, "Defaults Root")
	// TemplateArn: "defaults to the EndEntityCertificate/V1 template";
	// ValidityNotBefore: "the issuance time minus 60 minutes".
	issuedAt := env.Clock.Now() // the server's clock, which stands still
	certARN, err := env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
		Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "defaults.example"}}).CSRPEM, SigningAlgorithm: types.SigningAlgorithmSha256withecdsa,
		Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(30)}})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := env.Certificate(t, caARN, *certARN.CertificateArn)
	if cert.IsCA || !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) ||
		cert.KeyUsage != x509.KeyUsageDigitalSignature { // an EC key: no key encipherment (RFC 8813)
		t.Errorf("not an EndEntityCertificate/V1 certificate: CA %v, EKU %v, key usage %v", cert.IsCA, cert.ExtKeyUsage, cert.KeyUsage)
	}
	if d := issuedAt.Add(-time.Hour).Sub(cert.NotBefore); d < 0 || d >= time.Second {
		t.Errorf("NotBefore %v, want an hour before the issuance at %v", cert.NotBefore, issuedAt)
	}
	// ListCertificateAuthorities: "The default is SELF."
	shared, _ := env.NewAccount(t, "444455556666")
	if _, err := shared.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Other"), CertificateAuthorityType: types.CertificateAuthorityTypeRoot}); err != nil {
		t.Fatal(err)
	}
	list, err := shared.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	if err != nil || len(list.CertificateAuthorities) != 1 || *list.CertificateAuthorities[0].OwnerAccount != "444455556666" {
		t.Errorf("the CAs listed with no ResourceOwner: %v", err)
	}
	// PermanentDeletionTimeInDays: "with 30 being the default".
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &caARN}); err == nil {
		t.Fatal("an ACTIVE CA was deleted") // AWS wants it disabled first
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &caARN, Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &caARN}); err != nil {
		t.Fatal(err)
	}
	d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &caARN})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.CertificateAuthority.RestorableUntil.Sub(*d.CertificateAuthority.LastStateChangeAt); got != 30*24*time.Hour {
		t.Errorf("restorable for %v after deletion, want 30 days", got)
	}
}
