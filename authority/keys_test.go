package authority_test

import (
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

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
