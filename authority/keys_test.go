package authority_test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/seal"
)

// TestCopiedDatabaseRevealsNoKey reads the database file the way someone
// who copied it would, and finds only sealed keys that the master key,
// kept outside the database, opens.
func TestCopiedDatabaseRevealsNoKey(t *testing.T) {
	env := testenv.Start(t)
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Sealed")
	csr := env.CSR(t, arn)
	env.Stop(t)

	var sealed []byte
	if err := env.DB(t).QueryRow(`SELECT key_handle FROM certificate_authorities WHERE arn = ?`, arn).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(sealed); err == nil {
		t.Fatal("the stored key parses as a plain private key")
	}

	keyFile, err := os.ReadFile(filepath.Join(env.Config.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := seal.ParseKey(string(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := seal.New(master)
	der, err := s.Open(sealed, []byte(arn))
	if err != nil {
		t.Fatalf("the master key does not open the sealed key: %v", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(csr.PublicKey) {
		t.Error("the sealed key is not the CA's key")
	}
}

// TestKeysAreBounded opens more CA keys than a server keeps open: no more
// than KeyCacheSize stay open, and a forgotten CA's key is closed at once.
func TestKeysAreBounded(t *testing.T) {
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	store := seal.NewKeyStore(sealer)
	keys := authority.NewKeys([]authority.KeyStore{{KeyStore: store}}, slog.New(slog.DiscardHandler), nil)
	cas := make([]*openpca.CA, authority.KeyCacheSize+100)
	for i := range cas {
		id := uuid.NewString()
		ca := &openpca.CA{ID: id, AccountID: "111122223333", ARN: openpca.CAARN("us-east-1", "111122223333", id), KeyStore: store.Name()}
		if ca.KeyHandle, _, err = store.GenerateKey(ctx, ca, openpca.KeyAlgorithmEcPrime256v1); err != nil {
			t.Fatal(err)
		}
		cas[i] = ca
		if _, err := keys.Signer(ctx, ca); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.Open(); n != authority.KeyCacheSize {
		t.Errorf("%d keys open, want at most %d", n, authority.KeyCacheSize)
	}
	keys.Forget(cas[len(cas)-1].ID)
	if n := keys.Open(); n != authority.KeyCacheSize-1 {
		t.Errorf("%d keys open after forgetting one of %d", n, authority.KeyCacheSize)
	}
}

// TestKeyReplacedInItsStore: a CA whose key store holds another key under
// its handle (another CA's, put there by someone with the store in hand)
// signs nothing: not a certificate, not an OCSP answer. It says why, and
// the CA whose key it is still signs.
func TestKeyReplacedInItsStore(t *testing.T) {
	env := testenv.Start(t)
	victim, _ := env.NewActiveRoot(t, "Victim")
	other, _ := env.NewActiveRoot(t, "Other")
	env.Stop(t)
	admin, err := app.OpenAdmin(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	db := env.DB(t)
	var sealed []byte
	if err := db.QueryRow(`SELECT key_handle FROM certificate_authorities WHERE arn = ?`, other).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	key, err := admin.Sealer.Open(sealed, []byte(other))
	if err == nil {
		sealed, err = admin.Sealer.Seal(key, []byte(victim))
	}
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE certificate_authorities SET key_handle = ?, version = version + 1 WHERE arn = ?`, sealed, victim); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	unavailable := func(n int) {
		t.Helper()
		if m := metrics(t, env.URL); !strings.Contains(m, fmt.Sprintf("openpca_ca_keys_unavailable_total{key_store=%q} %d\n", seal.SoftwareStore, n)) {
			t.Errorf("the metrics do not count %d CA keys unavailable", n)
		}
	}
	unavailable(0)
	csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM
	_, err = env.Client.IssueCertificate(ctx, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &victim, Csr: csr,
		SigningAlgorithm: types.SigningAlgorithmSha256withecdsa, Validity: &types.Validity{Type: types.ValidityPeriodTypeDays, Value: aws.Int64(1)}})
	testenv.WantError(t, err, "ServiceUnavailableException")
	if err == nil || !strings.Contains(err.Error(), "holds another key than the one") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	unavailable(1)
	env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &other, Csr: csr})
	unavailable(1)
}
