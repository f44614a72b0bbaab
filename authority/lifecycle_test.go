package authority_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/pki"
)

// activateSubordinate signs a subordinate CA's CSR with an external root
// and imports the result.
func activateSubordinate(t *testing.T, env *testenv.Env, arn string, root *testenv.ExternalCA) *testenv.ExternalCA {
	t.Helper()
	cert := root.Sign(t, "Sub", env.CSR(t, arn).PublicKey, time.Now().AddDate(5, 0, 0))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: cert.PEM, CertificateChain: root.PEM,
	}); err != nil {
		t.Fatalf("ImportCertificateAuthorityCertificate: %v", err)
	}
	return cert
}

func TestImportSubordinateWithExternalRoot(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	_, err := env.Client.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &arn})
	testenv.WantError(t, err, "InvalidStateException")

	root := testenv.NewExternalRoot(t, "External Root")
	cert := activateSubordinate(t, env, arn, root)

	d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	ca := d.CertificateAuthority
	if ca.Status != types.CertificateAuthorityStatusActive {
		t.Errorf("status %s after import, want ACTIVE", ca.Status)
	}
	if !ca.NotAfter.Equal(cert.Cert.NotAfter.Truncate(time.Second)) || !ca.NotBefore.Equal(cert.Cert.NotBefore.Truncate(time.Second)) {
		t.Errorf("validity %v–%v, want %v–%v", ca.NotBefore, ca.NotAfter, cert.Cert.NotBefore, cert.Cert.NotAfter)
	}
	// AWS shows the CA's serial in decimal.
	if ca.Serial == nil || *ca.Serial != cert.Cert.SerialNumber.String() {
		t.Errorf("serial %v, want %s", aws.ToString(ca.Serial), cert.Cert.SerialNumber)
	}

	got, err := env.Client.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode([]byte(*got.Certificate)); block == nil || !bytes.Equal(block.Bytes, cert.Cert.Raw) {
		t.Errorf("certificate is not the imported one")
	}
	if block, _ := pem.Decode([]byte(*got.CertificateChain)); block == nil || !bytes.Equal(block.Bytes, root.Cert.Raw) {
		t.Errorf("chain is not the external root")
	}

	// Renewal: a new certificate for the same key replaces the old one.
	renewed := root.Sign(t, "Sub", env.CSR(t, arn).PublicKey, time.Now().AddDate(8, 0, 0))
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: renewed.PEM, CertificateChain: root.PEM,
	}); err != nil {
		t.Fatalf("re-import: %v", err)
	}
	d, _ = env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if !d.CertificateAuthority.NotAfter.Equal(renewed.Cert.NotAfter.Truncate(time.Second)) {
		t.Errorf("NotAfter %v after renewal, want %v", d.CertificateAuthority.NotAfter, renewed.Cert.NotAfter)
	}
}

func TestImportThreeLevelChain(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	interCert := root.NewIntermediate(t, "Intermediate")
	arn := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Leafward")
	cert := interCert.Sign(t, "Issuing", env.CSR(t, arn).PublicKey, time.Now().AddDate(5, 0, 0))
	chain := append(append([]byte{}, interCert.PEM...), root.PEM...)
	if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: cert.PEM, CertificateChain: chain,
	}); err != nil {
		t.Fatal(err)
	}
	got, err := env.Client.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(*got.CertificateChain, "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("chain has %d certificates, want 2", n)
	}
	// Root last in the wrong order is refused.
	reversed := append(append([]byte{}, root.PEM...), interCert.PEM...)
	arn2 := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Other")
	cert2 := interCert.Sign(t, "Issuing 2", env.CSR(t, arn2).PublicKey, time.Now().AddDate(5, 0, 0))
	_, err = env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn2, Certificate: cert2.PEM, CertificateChain: reversed,
	})
	testenv.WantError(t, err, "InvalidRequestException")
}

func TestImportCertificateAuthorityCertificateErrors(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	rootCA := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Root on server")
	subKey := env.CSR(t, sub).PublicKey
	good := root.Sign(t, "Sub", subKey, time.Now().AddDate(5, 0, 0))
	stranger := root.Sign(t, "Stranger", root.Key.Public(), time.Now().AddDate(5, 0, 0))
	expired := root.Sign(t, "Sub", subKey, time.Now().Add(-time.Minute))

	type importCase struct {
		name        string
		arn         string
		cert, chain []byte
		code        string
	}
	tests := []importCase{
		{"not PEM", sub, []byte("hello"), root.PEM, "MalformedCertificateException"},
		{"two certificates", sub, append(append([]byte{}, good.PEM...), good.PEM...), root.PEM, "MalformedCertificateException"},
		{"a CSR", sub, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: env.CSR(t, sub).Raw}), root.PEM, "MalformedCertificateException"},
		{"garbage DER", sub, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), root.PEM, "MalformedCertificateException"},
		{"malformed chain", sub, good.PEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "MalformedCertificateException"},
		{"another key", sub, stranger.PEM, root.PEM, "CertificateMismatchException"},
		{"subordinate without chain", sub, good.PEM, nil, "InvalidRequestException"},
		{"self-signed for subordinate", sub, root.PEM, nil, "CertificateMismatchException"},
		{"chain with the certificate itself", sub, good.PEM, append(append([]byte{}, good.PEM...), root.PEM...), "InvalidRequestException"},
		{"chain that did not sign it", sub, good.PEM, testenv.NewExternalRoot(t, "Other Root").PEM, "InvalidRequestException"},
		{"expired certificate", sub, expired.PEM, root.PEM, "InvalidRequestException"},
		{"root CA with a certificate signed by another", rootCA, root.Sign(t, "R", env.CSR(t, rootCA).PublicKey, time.Now().AddDate(1, 0, 0)).PEM, root.PEM, "InvalidRequestException"},
		// Go reads them, OpenSSL does not, and what is imported is handed
		// out in every chain.
		{"an element after the signature", sub, elementAfterSignature(t, good.Cert.Raw), root.PEM, "MalformedCertificateException"},
		{"a chain with an element after a signature", sub, good.PEM, elementAfterSignature(t, root.Cert.Raw), "MalformedCertificateException"},
	}
	// Chains past the bounds of our own (checkChainSize).
	big := root.NewIntermediate(t, "Big", func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, Value: make([]byte, 33<<10)}}
	})
	sizes := []struct{ name, want string }{{"a chain of 11 certificates", "11 certificates"}, {"a chain certificate of 33 KiB", "bytes"}}
	tests = append(tests,
		importCase{sizes[0].name, sub, good.PEM, bytes.Repeat(root.PEM, 11), "InvalidRequestException"},
		importCase{sizes[1].name, sub, big.Sign(t, "Sub", subKey, time.Now().AddDate(1, 0, 0)).PEM, append(append([]byte{}, big.PEM...), root.PEM...), "InvalidRequestException"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
				CertificateAuthorityArn: aws.String(tt.arn), Certificate: tt.cert, CertificateChain: tt.chain,
			})
			testenv.WantError(t, err, tt.code)
			for _, sz := range sizes {
				if sz.name == tt.name && !strings.Contains(err.Error(), sz.want) {
					t.Errorf("message %q, want one with %q", err, sz.want)
				}
			}
		})
	}
	if s := env.Status(t, sub); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("refused imports changed the status to %s", s)
	}

}

// elementAfterSignature returns the certificate der, in PEM, with a NULL
// after its signature.
func elementAfterSignature(t *testing.T, der []byte) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var outer cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) {
		t.Fatal("not a certificate")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(outer)
		b.AddBytes([]byte{5, 0})
	})
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.BytesOrPanic()})
}

// TestImportChecksCertificateFields covers certificates for the right key
// whose fields or issuers AWS Private CA refuses.
func TestImportChecksCertificateFields(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Sub")
	subKey := env.CSR(t, sub).PublicKey
	years := func(n int) time.Time { return time.Now().AddDate(n, 0, 0) }
	pathLen0 := root.NewIntermediate(t, "PathLen0", func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true })
	constrained := root.NewIntermediate(t, "Constrained", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.com"} })

	tests := []struct {
		name  string
		cert  *testenv.ExternalCA
		chain []byte
		code  string
	}{
		{"not a CA", root.Sign(t, "Sub", subKey, years(1), func(c *x509.Certificate) { c.IsCA = false }), root.PEM, "MalformedCertificateException"},
		{"no basic constraints", root.Sign(t, "Sub", subKey, years(1), func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = false, false }), root.PEM, "MalformedCertificateException"},
		{"critical CRL distribution point", root.Sign(t, "Sub", subKey, years(1), func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 31}, Critical: true, Value: []byte{0x30, 0}}}
		}), root.PEM, "MalformedCertificateException"},
		{"outlives its issuer", root.Sign(t, "Sub", subKey, years(20)), root.PEM, "CertificateMismatchException"},
		{"issuer allows no sub-CA", pathLen0.Sign(t, "Sub", subKey, years(1)), append(append([]byte{}, pathLen0.PEM...), root.PEM...), "CertificateMismatchException"},
		{"issuer's name constraints", constrained.Sign(t, "Sub", subKey, years(1), func(c *x509.Certificate) { c.DNSNames = []string{"evil.test"} }),
			append(append([]byte{}, constrained.PEM...), root.PEM...), "CertificateMismatchException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
				CertificateAuthorityArn: &sub, Certificate: tt.cert.PEM, CertificateChain: tt.chain,
			})
			testenv.WantError(t, err, tt.code)
		})
	}
	if s := env.Status(t, sub); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("refused imports changed the status to %s", s)
	}
}

// TestRenewalKeepsStatus: importing a new certificate keeps DISABLED, and
// brings an EXPIRED CA back to the status it had.
func TestRenewalKeepsStatus(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	arn := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Renewed")
	key := env.CSR(t, arn).PublicKey
	importCert := func(notAfter time.Time) {
		t.Helper()
		c := root.Sign(t, "Renewed", key, notAfter)
		if _, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
			CertificateAuthorityArn: &arn, Certificate: c.PEM, CertificateChain: root.PEM,
		}); err != nil {
			t.Fatal(err)
		}
	}
	importCert(time.Now().AddDate(0, 0, 10))
	// A renewed certificate keeps the subject that the certificates issued
	// before name as their issuer, for their CRLs and OCSP answers.
	_, err := env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: root.Sign(t, "Renamed", key, time.Now().AddDate(1, 0, 0)).PEM, CertificateChain: root.PEM})
	testenv.WantError(t, err, "CertificateMismatchException")
	// And its subject key identifier, which they name as their authority
	// key identifier: the same key, identified otherwise (by a parent
	// that makes identifiers another way), is refused; identified as
	// before, it is taken.
	for _, tc := range []struct {
		name string
		ski  []byte
		want string
	}{
		{"another identifier", bytes.Repeat([]byte{1}, 20), "CertificateMismatchException"},
		{"the same", nil, ""},
	} {
		c := root.Sign(t, "Renewed", key, time.Now().AddDate(0, 0, 10), func(c *x509.Certificate) {
			if tc.ski != nil {
				c.SubjectKeyId = tc.ski
			}
		})
		_, err = env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
			CertificateAuthorityArn: &arn, Certificate: c.PEM, CertificateChain: root.PEM})
		if tc.want == "" && err != nil {
			t.Errorf("renewed with %s subject key identifier: %v", tc.name, err)
		} else if tc.want != "" {
			testenv.WantError(t, err, tc.want)
		}
	}
	if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &arn, Status: types.CertificateAuthorityStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	// A DISABLED CA's certificate cannot be updated, as AWS's table of CA
	// states says.
	_, err = env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &arn, Certificate: root.Sign(t, "Renewed", key, time.Now().AddDate(1, 0, 0)).PEM, CertificateChain: root.PEM})
	testenv.WantError(t, err, "InvalidStateException")
	env.Clock.Advance(11 * 24 * time.Hour)
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusExpired {
		t.Fatalf("status %s, want EXPIRED", s)
	}
	importCert(time.Now().AddDate(1, 0, 0))
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusDisabled {
		t.Errorf("status %s after renewing an expired DISABLED CA, want DISABLED", s)
	}
}

func TestStatusLifecycle(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	arn := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Lifecycle")
	update := func(status types.CertificateAuthorityStatus) error {
		_, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &arn, Status: status})
		return err
	}
	del := func(days int32) error {
		in := &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn}
		if days > 0 {
			in.PermanentDeletionTimeInDays = &days
		}
		_, err := env.Client.DeleteCertificateAuthority(ctx, in)
		return err
	}
	restore := func() error {
		_, err := env.Client.RestoreCertificateAuthority(ctx, &acmpca.RestoreCertificateAuthorityInput{CertificateAuthorityArn: &arn})
		return err
	}
	want := func(s types.CertificateAuthorityStatus) {
		t.Helper()
		if got := env.Status(t, arn); got != s {
			t.Fatalf("status %s, want %s", got, s)
		}
	}

	testenv.WantError(t, update(types.CertificateAuthorityStatusActive), "InvalidStateException")
	testenv.WantError(t, update(types.CertificateAuthorityStatusDisabled), "InvalidStateException")
	testenv.WantError(t, restore(), "InvalidStateException")

	// PENDING_CERTIFICATE → DELETED → restored to PENDING_CERTIFICATE.
	if err := del(7); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusDeleted)
	d, _ := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	if wantUntil := env.Clock.Now().Add(7 * 24 * time.Hour).Truncate(time.Second); d.CertificateAuthority.RestorableUntil == nil || d.CertificateAuthority.RestorableUntil.Truncate(time.Second).Sub(wantUntil).Abs() > time.Second {
		t.Errorf("RestorableUntil %v, want %v", d.CertificateAuthority.RestorableUntil, wantUntil)
	}
	testenv.WantError(t, del(0), "InvalidStateException")
	testenv.WantError(t, update(types.CertificateAuthorityStatusActive), "InvalidStateException")
	_, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &arn})
	testenv.WantError(t, err, "InvalidStateException")
	_, err = env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &arn})
	testenv.WantError(t, err, "InvalidStateException")
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusPendingCertificate)

	// ACTIVE cannot be deleted; DISABLED can, and comes back DISABLED.
	activateSubordinate(t, env, arn, root)
	want(types.CertificateAuthorityStatusActive)
	testenv.WantError(t, del(0), "InvalidStateException")
	testenv.WantError(t, update(types.CertificateAuthorityStatusPendingCertificate), "InvalidArgsException")
	if err := update(types.CertificateAuthorityStatusDisabled); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusDisabled)
	if err := update(types.CertificateAuthorityStatusActive); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusActive)
	if err := update(types.CertificateAuthorityStatusDisabled); err != nil {
		t.Fatal(err)
	}
	if err := del(0); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusDeleted)
	env.Clock.Advance(29 * 24 * time.Hour)
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	want(types.CertificateAuthorityStatusDisabled)

	// Past the restoration period the CA is gone.
	if err := del(7); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(7*24*time.Hour + time.Second)
	testenv.WantError(t, restore(), "ResourceNotFoundException")
	_, err = env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
	testenv.WantError(t, err, "ResourceNotFoundException")
	list, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.CertificateAuthorities) != 0 {
		t.Errorf("a CA deleted for good is still listed")
	}
}

func TestExpiredCertificateAuthority(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	arn := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Short")
	activateSubordinate(t, env, arn, root)
	env.Clock.Advance(6 * 365 * 24 * time.Hour)
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusExpired {
		t.Fatalf("status %s after the certificate expired, want EXPIRED", s)
	}
	_, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &arn, Status: types.CertificateAuthorityStatusActive})
	testenv.WantError(t, err, "InvalidStateException")
	// An expired CA can be deleted.
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn}); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredRootRenews: a ROOT CA whose certificate expired issues its
// own renewal with the root template, and nothing else, and the renewal's
// import brings back the status it had (AWS lets an EXPIRED CA's
// certificate be updated; a root's comes from nowhere else).
func TestExpiredRootRenews(t *testing.T) {
	env := testenv.Start(t)
	for _, disabled := range []bool{false, true} {
		arn, _ := env.NewActiveRoot(t, "Expiring")
		want := types.CertificateAuthorityStatusActive
		if disabled {
			want = types.CertificateAuthorityStatusDisabled
			if _, err := env.Client.UpdateCertificateAuthority(ctx, &acmpca.UpdateCertificateAuthorityInput{CertificateAuthorityArn: &arn, Status: want}); err != nil {
				t.Fatal(err)
			}
		}
		env.Clock.Advance(11 * 365 * 24 * time.Hour)
		d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if ca := d.CertificateAuthority; ca.Status != types.CertificateAuthorityStatusExpired || !ca.LastStateChangeAt.Equal(*ca.NotAfter) {
			t.Fatalf("status %s, last changed %s; want EXPIRED since its certificate's end, %s", ca.Status, ca.LastStateChangeAt, ca.NotAfter)
		}
		_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &arn, Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}}).CSRPEM,
			SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
		testenv.WantError(t, err, "InvalidStateException")
		renewed := env.ActivateRoot(t, arn)
		if !renewed.NotBefore.After(time.Now().Add(10 * 365 * 24 * time.Hour)) {
			t.Errorf("the renewal starts %s, not at the server's time", renewed.NotBefore)
		}
		d, err = env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if ca := d.CertificateAuthority; ca.Status != want || !ca.LastStateChangeAt.After(*ca.NotBefore) {
			t.Errorf("status %s after the renewal, last changed %s; want %s since the renewal (%s)", ca.Status, ca.LastStateChangeAt, want, ca.NotBefore)
		}
	}
	// A subordinate CA's renewal comes from its issuer.
	env = testenv.Start(t)
	sub := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Short")
	activateSubordinate(t, env, sub, testenv.NewExternalRoot(t, "Root"))
	env.Clock.Advance(6 * 365 * 24 * time.Hour)
	csr, err := env.Client.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &sub})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &sub, Csr: []byte(*csr.Csr),
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, TemplateArn: aws.String("arn:aws:acm-pca:::template/RootCACertificate/V1"),
		Validity: &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "InvalidArgsException")
}

// TestConcurrentTagging: requests changing one CA's tags at once all
// succeed (the model lists no ConcurrentModificationException for them),
// and none of their changes is lost.
func TestConcurrentTagging(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Tagged at once")
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := aws.String(fmt.Sprintf("k%02d", i))
			if _, err := env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &arn,
				Tags: []types.Tag{{Key: key}, {Key: aws.String("gone")}}}); err != nil {
				t.Error(err)
			}
			if _, err := env.Client.UntagCertificateAuthority(ctx, &acmpca.UntagCertificateAuthorityInput{CertificateAuthorityArn: &arn,
				Tags: []types.Tag{{Key: aws.String("gone")}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tags, err := env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != n || *tags.Tags[0].Key != "k00" {
		t.Errorf("%d tags after %d concurrent taggings: %v", len(tags.Tags), n, tags.Tags)
	}
}

func TestTags(t *testing.T) {
	env := testenv.Start(t)
	out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Tagged"),
		CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		Tags:                              []types.Tag{{Key: aws.String("team"), Value: aws.String("pki")}, {Key: aws.String("env")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.CertificateAuthorityArn
	tags := func() map[string]string {
		t.Helper()
		m := map[string]string{}
		p := acmpca.NewListTagsPaginator(env.Client, &acmpca.ListTagsInput{CertificateAuthorityArn: arn, MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range page.Tags {
				m[*tag.Key] = aws.ToString(tag.Value)
			}
		}
		return m
	}
	if got := tags(); len(got) != 2 || got["team"] != "pki" {
		t.Fatalf("tags %v", got)
	}
	if _, err := env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: arn,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("security")}, {Key: aws.String("cost"), Value: aws.String("42")}}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); len(got) != 3 || got["team"] != "security" || got["cost"] != "42" {
		t.Fatalf("tags after tagging %v", got)
	}
	// A value that does not match keeps the tag; no value removes it.
	if _, err := env.Client.UntagCertificateAuthority(ctx, &acmpca.UntagCertificateAuthorityInput{CertificateAuthorityArn: arn,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pki")}, {Key: aws.String("cost")}, {Key: aws.String("absent")}}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); len(got) != 2 || got["team"] != "security" {
		t.Fatalf("tags after untagging %v", got)
	}
	var many []types.Tag
	for i := range 49 {
		many = append(many, types.Tag{Key: aws.String("k" + string(rune('a'+i%26)) + string(rune('a'+i/26)))})
	}
	_, err = env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: arn, Tags: many})
	testenv.WantError(t, err, "TooManyTagsException")
	if got := tags(); len(got) != 2 {
		t.Errorf("a refused tagging changed the tags to %v", got)
	}
	// The reserved prefix, in any case that conditions take as it (U+017F,
	// the long s, is s to them).
	for _, key := range []string{"aws:x", "AWS:x", "aw\u017f:x"} {
		_, err = env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: arn, Tags: []types.Tag{{Key: aws.String(key)}}})
		testenv.WantError(t, err, "InvalidTagException")
	}
	// A key that differs from the CA's "team" only in case would let its
	// order decide what aws:ResourceTag/team is.
	_, err = env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: arn, Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("dev")}}})
	testenv.WantError(t, err, "InvalidTagException")
	if got := tags(); len(got) != 2 || got["team"] != "security" {
		t.Errorf("a refused tagging changed the tags to %v", got)
	}
	_, err = env.Client.UntagCertificateAuthority(ctx, &acmpca.UntagCertificateAuthorityInput{CertificateAuthorityArn: arn, Tags: []types.Tag{{Key: aws.String("aws:x")}}})
	testenv.WantError(t, err, "InvalidTagException")
	missing := testenv.MissingCA(*arn)
	_, err = env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &missing, Tags: []types.Tag{{Key: aws.String("a")}}})
	testenv.WantError(t, err, "ResourceNotFoundException")
	for _, token := range []string{"%%%", "garbage"} { // "garbage" decodes, to no key
		_, err = env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: arn, NextToken: aws.String(token)})
		testenv.WantError(t, err, "ValidationException") // the model gives ListTags no InvalidNextTokenException
	}
}

// TestPurgeAfterRestorationPeriod: the janitor removes a CA deleted for
// good, key and all, from the database.
func TestPurgeAfterRestorationPeriod(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Purged")
	keep := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Kept")
	if _, err := env.Client.DeleteCertificateAuthority(ctx, &acmpca.DeleteCertificateAuthorityInput{CertificateAuthorityArn: &arn, PermanentDeletionTimeInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(8 * 24 * time.Hour)
	env.Restart(t) // the janitor runs when the server starts
	env.Stop(t)
	var arns []string
	rows, err := env.DB(t).Query(`SELECT arn FROM certificate_authorities`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		rows.Scan(&a)
		arns = append(arns, a)
	}
	if len(arns) != 1 || arns[0] != keep {
		t.Errorf("CAs in the database after purging: %v, want only %s", arns, keep)
	}
}

// TestNextTokenOfAnotherList: a NextToken is refused by any list but the
// one it pages, as AWS refuses a token of another request: another
// operation's (read as a tag key to list after, one gave a 200 with an
// empty page and no NextToken, so that a paginator ended silently with
// tags left unlisted), another CA's, another account's, the other
// ResourceOwner's. A list's own tokens page through it.
func TestNextTokenOfAnotherList(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Foreign tokens")
	another := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Another")
	var tags []types.Tag
	for i := range 3 {
		tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
	}
	for _, ca := range []string{arn, another} {
		if _, err := env.Client.TagCertificateAuthority(ctx, &acmpca.TagCertificateAuthorityInput{CertificateAuthorityArn: &ca, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := env.NewAccount(t, "222233334444")
	cas, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{MaxResults: aws.Int32(1)})
	if err != nil || cas.NextToken == nil {
		t.Fatalf("ListCertificateAuthorities: %v, next token %v", err, cas)
	}
	tagged, err := env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &arn, MaxResults: aws.Int32(1)})
	if err != nil || tagged.NextToken == nil {
		t.Fatalf("ListTags: %v, next token %v", err, tagged)
	}
	listTags := func(ca string) func(*string) error {
		return func(token *string) error {
			_, err := env.Client.ListTags(ctx, &acmpca.ListTagsInput{CertificateAuthorityArn: &ca, NextToken: token})
			return err
		}
	}
	listPermissions := func(token *string) error {
		_, err := env.Client.ListPermissions(ctx, &acmpca.ListPermissionsInput{CertificateAuthorityArn: &arn, NextToken: token})
		return err
	}
	listCAs := func(client *acmpca.Client, owner types.ResourceOwner) func(*string) error {
		return func(token *string) error {
			_, err := client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{NextToken: token, ResourceOwner: owner})
			return err
		}
	}
	for _, tc := range []struct {
		name  string
		token *string
		call  func(token *string) error
		want  string // the model gives ListTags no InvalidNextTokenException
	}{
		{"another CA's tags, a token of ListTags", tagged.NextToken, listTags(another), "ValidationException"},
		{"the CA's permissions, a token of ListTags", tagged.NextToken, listPermissions, "InvalidNextTokenException"},
		{"the account's CAs, a token of ListTags", tagged.NextToken, listCAs(env.Client, ""), "InvalidNextTokenException"},
		{"the CA's tags, a token of the account's CAs", cas.NextToken, listTags(arn), "ValidationException"},
		{"the CA's permissions, a token of the account's CAs", cas.NextToken, listPermissions, "InvalidNextTokenException"},
		{"another account's CAs, a token of the account's", cas.NextToken, listCAs(b, ""), "InvalidNextTokenException"},
		{"the CAs shared with the account, a token of its own", cas.NextToken, listCAs(env.Client, types.ResourceOwnerOtherAccounts), "InvalidNextTokenException"},
	} {
		if err := tc.call(tc.token); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else {
			testenv.WantError(t, err, tc.want)
		}
	}
	// SELF, named, is the default's list.
	if err := listCAs(env.Client, types.ResourceOwnerSelf)(cas.NextToken); err != nil {
		t.Errorf("ResourceOwner SELF with the default's NextToken: %v", err)
	}
	// Its own tokens still page through every tag.
	var got int
	p := acmpca.NewListTagsPaginator(env.Client, &acmpca.ListTagsInput{CertificateAuthorityArn: &arn, MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(page.Tags)
	}
	if got != 3 {
		t.Errorf("paging ListTags listed %d tags, want 3", got)
	}
}

// TestImportMLDSAKeyUsage: an ML-DSA CA's own certificate may not have a
// key usage RFC 9881 forbids an ML-DSA key, as no certificate the server
// signs for such a key may; one with signing usages alone is imported.
func TestImportMLDSAKeyUsage(t *testing.T) {
	env := testenv.Start(t)
	root := testenv.NewExternalRoot(t, "Root")
	for _, tc := range []struct {
		usage x509.KeyUsage
		want  string // the error code, or "" for none
	}{
		{x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageKeyEncipherment, "MalformedCertificateException"},
		{x509.KeyUsageCertSign | x509.KeyUsageKeyAgreement, "MalformedCertificateException"},
		{x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, ""},
	} {
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmMlDsa44, "ML-DSA Sub"), CertificateAuthorityType: types.CertificateAuthorityTypeSubordinate})
		if err != nil {
			t.Fatal(err)
		}
		arn := *out.CertificateAuthorityArn
		pub, err := pki.ParsePublicKey(env.CSR(t, arn).RawSubjectPublicKeyInfo)
		if err != nil {
			t.Fatal(err)
		}
		ski, _ := pki.SubjectKeyID(pub)
		der, err := pki.CreateCertificate(&x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ML-DSA Sub"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: tc.usage,
			SubjectKeyId: ski, SignatureAlgorithm: x509.ECDSAWithSHA256}, root.Cert, pub, root.Key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.Client.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{CertificateAuthorityArn: &arn,
			Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), CertificateChain: root.PEM})
		if tc.want == "" {
			if err != nil {
				t.Errorf("key usage %b: %v", tc.usage, err)
			}
			continue
		}
		testenv.WantError(t, err, tc.want)
	}
}
