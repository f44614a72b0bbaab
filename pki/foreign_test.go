package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// countedSigner counts its signatures, and gets those from the wrong-th
// on wrong (a faulty token; 0: none).
type countedSigner struct {
	crypto.Signer
	n, wrong int
}

func (s *countedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n++
	sig, err := s.Signer.Sign(r, digest, opts)
	if err == nil && s.wrong > 0 && s.n >= s.wrong {
		sig[len(sig)/2] ^= 1
	}
	return sig, err
}

// TestCreateCertificateSignsOnce: a CA's key signs a certificate once,
// whatever the keys (a CA certifying a key Go cannot use once signed for a
// stand-in key besides, outside every log), and a certificate whose
// signature does not verify is refused.
func TestCreateCertificateSignsOnce(t *testing.T) {
	algs := []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmRsa2048, openpca.KeyAlgorithmMlDsa65, openpca.KeyAlgorithmSm2}
	keys := map[openpca.KeyAlgorithm]crypto.Signer{}
	for _, alg := range algs {
		k, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = k
	}
	now := time.Now()
	signing := map[openpca.KeyAlgorithm]openpca.SigningAlgorithm{openpca.KeyAlgorithmEcPrime256v1: openpca.SigningAlgorithmSha256withecdsa,
		openpca.KeyAlgorithmRsa2048: openpca.SigningAlgorithmSha256withrsa, openpca.KeyAlgorithmMlDsa65: openpca.SigningAlgorithmMlDsa65, openpca.KeyAlgorithmSm2: openpca.SigningAlgorithmSm3withsm2}
	for _, caAlg := range algs {
		sigAlg, err := SignatureAlgorithm(caAlg, signing[caAlg])
		if err != nil {
			t.Fatal(err)
		}
		root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now, NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SignatureAlgorithm: sigAlg}
		der, err := CreateCertificate(root, root, keys[caAlg].Public(), keys[caAlg])
		if err != nil {
			t.Fatal(err)
		}
		ca, err := ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		// A foreign key wrapped would be taken for none: those sign as
		// they are.
		wrongs, wrapped := []int{0, 1}, !foreign(keys[caAlg])
		if !wrapped {
			wrongs = []int{0}
		}
		for _, alg := range algs {
			for _, wrong := range wrongs {
				t.Run(fmt.Sprintf("%s CA/%s key/wrong %v", caAlg, alg, wrong > 0), func(t *testing.T) {
					signer := &countedSigner{Signer: keys[caAlg], wrong: wrong}
					leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now, NotAfter: now.Add(time.Hour),
						KeyUsage: x509.KeyUsageDigitalSignature, SignatureAlgorithm: sigAlg}
					var s crypto.Signer = signer
					if !wrapped {
						s, signer.n = keys[caAlg], 1
					}
					der, err := CreateCertificate(leaf, ca, keys[alg].Public(), s)
					switch {
					case signer.n != 1:
						t.Fatalf("the CA's key signed %d times", signer.n)
					case wrong > 0 && err == nil:
						t.Fatal("a certificate whose signature went wrong was returned")
					case wrong > 0:
						return
					case err != nil:
						t.Fatal(err)
					}
					if err := checkSigned(der, ca, sigAlg); err != nil {
						t.Fatalf("the certificate does not verify: %v", err)
					}
				})
			}
		}
	}
}
