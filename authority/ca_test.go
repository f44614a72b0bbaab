package authority_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

var ctx = context.Background()

func TestCreateCertificateAuthorityKeyAlgorithms(t *testing.T) {
	env := testenv.Start(t)
	tests := []struct {
		key  types.KeyAlgorithm
		sig  types.SigningAlgorithm
		want func(pub any) bool
	}{
		{types.KeyAlgorithmRsa2048, types.SigningAlgorithmSha256withrsa, rsaBits(2048)},
		{types.KeyAlgorithmRsa3072, types.SigningAlgorithmSha384withrsa, rsaBits(3072)},
		{types.KeyAlgorithmRsa4096, types.SigningAlgorithmSha512withrsa, rsaBits(4096)},
		{types.KeyAlgorithmEcPrime256v1, types.SigningAlgorithmSha256withecdsa, curve(elliptic.P256())},
		{types.KeyAlgorithmEcSecp384r1, types.SigningAlgorithmSha384withecdsa, curve(elliptic.P384())},
		{types.KeyAlgorithmEcSecp521r1, types.SigningAlgorithmSha512withecdsa, curve(elliptic.P521())},
		{types.KeyAlgorithmEcPrime256v1, types.SigningAlgorithmSha512withecdsa, curve(elliptic.P256())},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.key, tt.sig), func(t *testing.T) {
			cfg := testenv.Config(tt.key, "CA "+string(tt.key))
			cfg.SigningAlgorithm = tt.sig
			out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: cfg,
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
			})
			if err != nil {
				t.Fatal(err)
			}
			csr := env.CSR(t, *out.CertificateAuthorityArn)
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("CSR signature: %v", err)
			}
			if !tt.want(csr.PublicKey) {
				t.Errorf("CSR key %T does not fit %s", csr.PublicKey, tt.key)
			}
			if got := csr.SignatureAlgorithm; got != x509Algorithms[tt.sig] {
				t.Errorf("CSR signed with %s, want %s", got, tt.sig)
			}
			d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: out.CertificateAuthorityArn})
			if err != nil {
				t.Fatal(err)
			}
			if d.CertificateAuthority.Status != types.CertificateAuthorityStatusPendingCertificate {
				t.Errorf("status %s, want PENDING_CERTIFICATE", d.CertificateAuthority.Status)
			}
			if got := d.CertificateAuthority.CertificateAuthorityConfiguration; got.KeyAlgorithm != tt.key || got.SigningAlgorithm != tt.sig {
				t.Errorf("described configuration %s/%s", got.KeyAlgorithm, got.SigningAlgorithm)
			}
		})
	}
}

var x509Algorithms = map[types.SigningAlgorithm]x509.SignatureAlgorithm{
	types.SigningAlgorithmSha256withrsa:   x509.SHA256WithRSA,
	types.SigningAlgorithmSha384withrsa:   x509.SHA384WithRSA,
	types.SigningAlgorithmSha512withrsa:   x509.SHA512WithRSA,
	types.SigningAlgorithmSha256withecdsa: x509.ECDSAWithSHA256,
	types.SigningAlgorithmSha384withecdsa: x509.ECDSAWithSHA384,
	types.SigningAlgorithmSha512withecdsa: x509.ECDSAWithSHA512,
}

func rsaBits(n int) func(any) bool {
	return func(pub any) bool { k, ok := pub.(*rsa.PublicKey); return ok && k.N.BitLen() == n }
}

func curve(c elliptic.Curve) func(any) bool {
	return func(pub any) bool { k, ok := pub.(*ecdsa.PublicKey); return ok && k.Curve == c }
}

func TestCreateCertificateAuthorityInvalidArgs(t *testing.T) {
	env := testenv.Start(t)
	tests := []struct {
		name   string
		change func(*acmpca.CreateCertificateAuthorityInput)
		code   string
		msg    string
	}{
		{"EC key with RSA signing", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.SigningAlgorithm = types.SigningAlgorithmSha256withrsa
		}, "InvalidArgsException", "does not fit"},
		{"RSA key with ECDSA signing", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.KeyAlgorithm = types.KeyAlgorithmRsa2048
		}, "InvalidArgsException", "does not fit"},
		{"ML-DSA key with ECDSA signing", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.KeyAlgorithm = types.KeyAlgorithmMlDsa65
		}, "InvalidArgsException", "does not fit"},
		{"ML-DSA key with another scheme's signing", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.KeyAlgorithm = types.KeyAlgorithmMlDsa65
			in.CertificateAuthorityConfiguration.SigningAlgorithm = types.SigningAlgorithmMlDsa44
		}, "InvalidArgsException", "does not fit"},
		{"EC key with ML-DSA signing", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.SigningAlgorithm = types.SigningAlgorithmMlDsa65
		}, "InvalidArgsException", "does not fit"},
		{"SM2", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.KeyAlgorithm = types.KeyAlgorithmSm2
			in.CertificateAuthorityConfiguration.SigningAlgorithm = types.SigningAlgorithmSm3withsm2
		}, "InvalidArgsException", "China regions"},
		{"empty subject", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.Subject = &types.ASN1Subject{}
		}, "InvalidArgsException", "no attributes"},
		{"custom and standard attributes", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.Subject.CustomAttributes = []types.CustomAttribute{{ObjectIdentifier: aws.String("2.5.4.3"), Value: aws.String("x")}}
		}, "InvalidArgsException", "cannot be combined"},
		{"key usage with nothing set", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.CsrExtensions = &types.CsrExtensions{KeyUsage: &types.KeyUsage{}}
		}, "InvalidArgsException", "sets no usage"},
		{"access location with two names", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.CsrExtensions = &types.CsrExtensions{SubjectInformationAccess: []types.AccessDescription{{
				AccessMethod:   &types.AccessMethod{AccessMethodType: types.AccessMethodTypeCaRepository},
				AccessLocation: &types.GeneralName{DnsName: aws.String("a.example"), UniformResourceIdentifier: aws.String("http://a.example")},
			}}}
		}, "InvalidArgsException", "exactly one"},
		{"reserved tag key", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.Tags = []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("x")}}
		}, "InvalidTagException", "reserved"},
		{"duplicate tag key", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.Tags = []types.Tag{{Key: aws.String("team")}, {Key: aws.String("team")}}
		}, "InvalidTagException", "more than once"},
		{"a subject with a control character", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.CertificateAuthorityConfiguration.Subject.CommonName = aws.String("bank.example\x00.evil.example")
		}, "InvalidArgsException", "Subject"},
		{"tag keys that differ only in case", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.Tags = []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("ENV"), Value: aws.String("dev")}}
		}, "InvalidTagException", "only in case"},
		{"CRL enabled without bucket", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.RevocationConfiguration = &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{Enabled: aws.Bool(true)}}
		}, "InvalidArgsException", "S3BucketName"},
		{"CRL custom path climbing out", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.RevocationConfiguration = &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
				Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), CustomPath: aws.String("pki/../..")}}
		}, "InvalidArgsException", "CustomPath"},
		{"CRL custom path of a dot", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.RevocationConfiguration = &types.RevocationConfiguration{CrlConfiguration: &types.CrlConfiguration{
				Enabled: aws.Bool(true), S3BucketName: aws.String("crls"), CustomPath: aws.String(".")}}
		}, "InvalidArgsException", "CustomPath"},
		{"CNAME with a scheme", func(in *acmpca.CreateCertificateAuthorityInput) {
			in.RevocationConfiguration = &types.RevocationConfiguration{OcspConfiguration: &types.OcspConfiguration{
				Enabled: aws.Bool(true), OcspCustomCname: aws.String("https://ocsp.example.com")}}
		}, "InvalidArgsException", "without http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Bad"),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
			}
			tt.change(in)
			_, err := env.Client.CreateCertificateAuthority(ctx, in)
			testenv.WantError(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", err, tt.msg)
			}
		})
	}
	list, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.CertificateAuthorities) != 0 {
		t.Errorf("refused requests created %d CAs", len(list.CertificateAuthorities))
	}
}

func TestCreateCertificateAuthorityCSRContent(t *testing.T) {
	env := testenv.Start(t)
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType: types.CertificateAuthorityTypeSubordinate,
		CertificateAuthorityConfiguration: &types.CertificateAuthorityConfiguration{
			KeyAlgorithm:     types.KeyAlgorithmEcSecp384r1,
			SigningAlgorithm: types.SigningAlgorithmSha384withecdsa,
			Subject: &types.ASN1Subject{
				Country: aws.String("DE"), State: aws.String("Berlin"), Locality: aws.String("Berlin"),
				Organization: aws.String("Ü Corp"), OrganizationalUnit: aws.String("PKI"),
				CommonName: aws.String("Issuing CA 1"), SerialNumber: aws.String("42"),
				Title: aws.String("CA"), Pseudonym: aws.String("issuer"),
			},
			CsrExtensions: &types.CsrExtensions{
				KeyUsage: &types.KeyUsage{KeyCertSign: true, CRLSign: true, DigitalSignature: true},
				SubjectInformationAccess: []types.AccessDescription{{
					AccessMethod:   &types.AccessMethod{AccessMethodType: types.AccessMethodTypeCaRepository},
					AccessLocation: &types.GeneralName{UniformResourceIdentifier: aws.String("http://repo.example/ca")},
				}},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The waiter must succeed at once: the CSR is ready when Create returns.
	w := acmpca.NewCertificateAuthorityCSRCreatedWaiter(env.Client)
	if err := w.Wait(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: out.CertificateAuthorityArn}, 10*time.Second); err != nil {
		t.Fatalf("CertificateAuthorityCSRCreated waiter: %v", err)
	}
	csr := env.CSR(t, *out.CertificateAuthorityArn)
	if got, want := csr.Subject.String(), "SERIALNUMBER=42,CN=Issuing CA 1,OU=PKI,O=Ü Corp,L=Berlin,ST=Berlin,C=DE"; !strings.Contains(got, "CN=Issuing CA 1") || !strings.Contains(got, "O=Ü Corp") || !strings.Contains(got, "C=DE") {
		t.Errorf("CSR subject %q, want the attributes of %q", got, want)
	}
	var title, pseudonym bool
	for _, n := range csr.Subject.Names {
		title = title || (n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 12}) && n.Value == "CA")
		pseudonym = pseudonym || (n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 65}) && n.Value == "issuer")
	}
	if !title || !pseudonym {
		t.Errorf("CSR subject lacks title or pseudonym: %v", csr.Subject.Names)
	}
	var ku, sia bool
	for _, e := range csr.Extensions {
		switch e.Id.String() {
		case "2.5.29.15":
			ku = e.Critical
			var bits asn1.BitString
			if _, err := asn1.Unmarshal(e.Value, &bits); err != nil {
				t.Fatal(err)
			}
			if bits.At(0) != 1 || bits.At(5) != 1 || bits.At(6) != 1 || bits.At(2) != 0 {
				t.Errorf("key usage bits %x/%d", bits.Bytes, bits.BitLength)
			}
		case "1.3.6.1.5.5.7.1.11":
			sia = strings.Contains(string(e.Value), "http://repo.example/ca")
		}
	}
	if !ku || !sia {
		t.Errorf("CSR extensions: critical key usage %v, subject information access %v", ku, sia)
	}
}

func TestCreateCertificateAuthorityIdempotency(t *testing.T) {
	env := testenv.Start(t)
	create := func(token string) string {
		t.Helper()
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Idem"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
			IdempotencyToken:                  aws.String(token),
		})
		if err != nil {
			t.Fatal(err)
		}
		return *out.CertificateAuthorityArn
	}
	first := create("token-1")
	env.Clock.Advance(4 * time.Minute)
	if again := create("token-1"); again != first {
		t.Errorf("same token within 5 minutes made a new CA %s, want %s", again, first)
	}
	if other := create("token-2"); other == first {
		t.Errorf("another token returned the same CA")
	}
	env.Clock.Advance(2 * time.Minute)
	if later := create("token-1"); later == first {
		t.Errorf("token reused after 5 minutes returned the old CA")
	}
	list, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.CertificateAuthorities); n != 3 {
		t.Errorf("%d CAs, want 3", n)
	}
}

// TestCreateCertificateAuthorityIdempotencyConcurrent: requests at once
// with one token make one CA, and get it, even with room for one CA
// alone: the others wait for the first, which makes an RSA-4096 key a
// second or more, rather than count it toward the limit.
func TestCreateCertificateAuthorityIdempotencyConcurrent(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.MaxCAsPerAccount = 1 })
	const n = 8
	arns := make(chan string, n)
	for range n {
		go func() {
			out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
				CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmRsa4096, "Race"),
				CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
				IdempotencyToken:                  aws.String("same"),
			})
			if err != nil {
				t.Error(err)
				arns <- ""
				return
			}
			arns <- *out.CertificateAuthorityArn
		}()
	}
	seen := map[string]bool{}
	for range n {
		seen[<-arns] = true
	}
	if len(seen) != 1 {
		t.Errorf("%d concurrent requests with one token made %d CAs", n, len(seen))
	}
}

func TestCreateCertificateAuthorityLimitExceeded(t *testing.T) {
	env := testenv.Start(t, func(c *app.Config) { c.MaxCAsPerAccount = 2 })
	env.CreateCA(t, types.CertificateAuthorityTypeRoot, "one")
	second := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "two")
	_, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "three"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
	})
	testenv.WantError(t, err, "LimitExceededException")
	// A deleted CA counts until its restoration period ends.
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &second}); err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "three"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
	})
	testenv.WantError(t, err, "LimitExceededException")
}

func TestDescribeCertificateAuthorityErrors(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Describe")
	id := arn[strings.LastIndex(arn, "/")+1:]
	tests := []struct {
		arn, code string
	}{
		{"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/00000000-0000-0000-0000-000000000000", "ResourceNotFoundException"},
		{"arn:aws:acm-pca:us-east-1:999999999999:certificate-authority/" + id, "ResourceNotFoundException"},
		{"arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/" + id, "ResourceNotFoundException"},
		{"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/not-a-uuid", "InvalidArnException"},
		{arn + "/certificate/0a1b", "InvalidArnException"},
		{"arn:aws:acm-pca:us-east-1:111122223333:template/EndEntityCertificate", "InvalidArnException"},
		{"arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/" + strings.ToUpper(id), "InvalidArnException"},
		{"not-an-arn-at-all", "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			_, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(tt.arn)})
			testenv.WantError(t, err, tt.code)
		})
	}
}

func TestListCertificateAuthoritiesPagination(t *testing.T) {
	env := testenv.Start(t)
	var want []string
	for i := range 7 {
		want = append(want, env.CreateCA(t, types.CertificateAuthorityTypeRoot, fmt.Sprintf("CA %d", i)))
	}
	p := acmpca.NewListCertificateAuthoritiesPaginator(env.Client, &acmpca.ListCertificateAuthoritiesInput{MaxResults: aws.Int32(3)})
	var got []string
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.CertificateAuthorities) > 3 {
			t.Errorf("page of %d, more than MaxResults", len(page.CertificateAuthorities))
		}
		for _, ca := range page.CertificateAuthorities {
			got = append(got, *ca.Arn)
		}
	}
	if pages != 3 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%d pages listing %v; want 3 pages listing %v in creation order", pages, got, want)
	}

	other, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{ResourceOwner: types.ResourceOwnerOtherAccounts})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.CertificateAuthorities) != 0 {
		t.Errorf("OTHER_ACCOUNTS lists %d CAs, want none", len(other.CertificateAuthorities))
	}

	// AWS returns at most 100 per page whatever MaxResults says.
	for i := 7; i < 102; i++ {
		env.CreateCA(t, types.CertificateAuthorityTypeRoot, fmt.Sprintf("CA %d", i))
	}
	big, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{MaxResults: aws.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(big.CertificateAuthorities) != 100 || big.NextToken == nil {
		t.Errorf("MaxResults 1000 gave %d CAs (next token %v), want 100 and a next token", len(big.CertificateAuthorities), big.NextToken != nil)
	}

	for _, token := range []string{"garbage", "eyJ0IjoxfQ"} {
		_, err = env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{NextToken: aws.String(token)})
		testenv.WantError(t, err, "InvalidNextTokenException")
	}
}
