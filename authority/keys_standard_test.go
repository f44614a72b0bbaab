package authority_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestKeyStorageSecurityStandard: a CA reports only the standard its key's
// store is declared to meet. A request that names none works on every
// server; one that names a standard no store meets is refused, unless the
// operator allows the claim; one a declared token meets puts the key
// there.
func TestKeyStorageSecurityStandard(t *testing.T) {
	const l3, l2 = types.KeyStorageSecurityStandardFips1402Level3OrHigher, types.KeyStorageSecurityStandardFips1402Level2OrHigher
	create := func(env *testenv.Env, want types.KeyStorageSecurityStandard) (types.KeyStorageSecurityStandard, error) {
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{CertificateAuthorityType: types.CertificateAuthorityTypeRoot,
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmEcPrime256v1, "Standard"), KeyStorageSecurityStandard: want})
		if err != nil {
			return "", err
		}
		d, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: out.CertificateAuthorityArn})
		if err != nil {
			return "", err
		}
		return d.CertificateAuthority.KeyStorageSecurityStandard, nil
	}
	t.Run("software", func(t *testing.T) {
		env := testenv.Start(t)
		if got, err := create(env, ""); err != nil || got != "" {
			t.Errorf("without a standard: %q, %v; want none reported", got, err)
		}
		_, err := create(env, l3)
		testenv.WantError(t, err, "InvalidArgsException")
		if err != nil && !strings.Contains(err.Error(), "meet no FIPS level") {
			t.Errorf("the refusal does not say why: %v", err)
		}
	})
	t.Run("software, the operator allows the claim", func(t *testing.T) {
		env := testenv.Start(t, func(c *app.Config) { c.AllowUnmetKeyStandard = true })
		if got, err := create(env, l3); err != nil || got != l3 {
			t.Errorf("%q, %v", got, err)
		}
	})
	t.Run("a token declared to meet level 3 beside the software default", func(t *testing.T) {
		hsm := testenv.NewSoftHSM(t)
		env := testenv.Start(t, func(c *app.Config) { c.PKCS11, c.PKCS11Standard = hsm.Config(), string(l3) })
		if got, err := create(env, ""); err != nil || got != "" {
			t.Errorf("without a standard: %q, %v", got, err)
		}
		for _, want := range []types.KeyStorageSecurityStandard{l3, l2} {
			if got, err := create(env, want); err != nil || got != want {
				t.Errorf("%s: %q, %v", want, got, err)
			}
		}
		_, err := create(env, types.KeyStorageSecurityStandardCcpcLevel1OrHigher)
		testenv.WantError(t, err, "InvalidArgsException")
		m := metrics(t, env.URL)
		for _, want := range []string{`{key_store="pkcs11",status="PENDING_CERTIFICATE"} 2`, `{key_store="software",status="PENDING_CERTIFICATE"} 1`} {
			if !strings.Contains(m, "openpca_certificate_authorities"+want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	t.Run("hardware required", func(t *testing.T) {
		hsm := testenv.NewSoftHSM(t)
		env := testenv.Start(t, hsm.Use(), func(c *app.Config) { c.RequireHardwareKeys = true })
		if _, err := create(env, ""); err != nil {
			t.Fatal(err)
		}
		cfg := env.Config
		cfg.KeyStore = "software"
		env.Stop(t)
		if a, err := app.Open(ctx, cfg); err == nil {
			a.Close()
			t.Error("a server that requires hardware keys started with the software store as its default")
		}
	})
}
