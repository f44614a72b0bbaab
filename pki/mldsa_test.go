package pki

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign"

	"github.com/openpca/openpca"
)

// TestMLDSA: for each ML-DSA scheme, a key survives PKCS #8 in the seed
// form; its CSR, a root certificate it signs for itself, a certificate it
// signs for an EC key and one an EC CA signs for it, and its CRL all
// verify, and carry the pure ML-DSA algorithm identifiers with absent
// parameters and the raw public key.
func TestMLDSA(t *testing.T) {
	ecKey, err := GenerateKey(openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	for _, alg := range []openpca.KeyAlgorithm{openpca.KeyAlgorithmMlDsa44, openpca.KeyAlgorithmMlDsa65, openpca.KeyAlgorithmMlDsa87} {
		t.Run(string(alg), func(t *testing.T) {
			key, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			if KeyAlgorithmOf(key.Public()) != alg {
				t.Errorf("KeyAlgorithmOf says %s", KeyAlgorithmOf(key.Public()))
			}
			der, err := MarshalPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKey(der)
			if err != nil || !back.Public().(sign.PublicKey).Equal(key.Public()) {
				t.Fatalf("the key read back: %v", err)
			}
			if _, err := ParsePrivateKey(der[:len(der)-1]); err == nil {
				t.Error("a cut key was read")
			}

			csrDER, err := CreateCSR(key, &openpca.CertificateAuthorityConfiguration{KeyAlgorithm: alg, SigningAlgorithm: openpca.SigningAlgorithm(alg),
				Subject: &openpca.ASN1Subject{CommonName: "ML-DSA Root"}})
			if err != nil {
				t.Fatal(err)
			}
			csr, err := ParseCSR(csrDER)
			if err != nil {
				t.Fatal(err)
			}
			if !csr.PublicKey.(sign.PublicKey).Equal(key.Public()) {
				t.Error("the CSR's key is not the CA's")
			}
			forged := bytes.Clone(csrDER)
			forged[len(forged)-10] ^= 1
			if _, err := ParseCSR(forged); err == nil {
				t.Error("a CSR with a broken signature was accepted")
			}

			ski, _ := SubjectKeyID(key.Public())
			rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ML-DSA Root"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
				IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski}
			rootDER, err := CreateCertificate(rootTmpl, rootTmpl, key.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			root, err := x509.ParseCertificate(rootDER)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckSignatureFrom(root, root); err != nil {
				t.Errorf("the root's own signature: %v", err)
			}
			if pub, err := ParsePublicKey(root.RawSubjectPublicKeyInfo); err != nil || !pub.(sign.PublicKey).Equal(key.Public()) {
				t.Errorf("the root's public key: %v", err)
			}
			wantAlgID := algorithmIdentifier(key.(sign.PrivateKey).Scheme())
			if algID, _, _ := SignatureParts(rootDER); !bytes.Equal(algID, wantAlgID) {
				t.Errorf("the root's signature algorithm %x, want %x", algID, wantAlgID)
			}

			leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf.example"}, NotBefore: now, NotAfter: now.AddDate(0, 1, 0)}
			leafDER, err := CreateCertificate(leafTmpl, root, ecKey.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(leafDER)
			if err := CheckSignatureFrom(leaf, root); err != nil {
				t.Errorf("an EC leaf of the ML-DSA root: %v", err)
			}
			other, _ := GenerateKey(alg)
			if _, err := CreateCertificate(leafTmpl, root, ecKey.Public(), other); err == nil {
				t.Error("a certificate signed by another key than its issuer's was made")
			}
			tampered := bytes.Clone(leafDER)
			tampered[len(tampered)-1] ^= 1 // in the signature
			if c, err := x509.ParseCertificate(tampered); err != nil || CheckSignatureFrom(c, root) == nil {
				t.Errorf("a certificate whose signature was changed verified (%v)", err)
			}

			// An EC CA certifies an ML-DSA key.
			ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "EC CA"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
				IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, SignatureAlgorithm: x509.ECDSAWithSHA256}
			ecDER, _ := x509.CreateCertificate(nil, ecTmpl, ecTmpl, ecKey.Public(), ecKey)
			ecCA, _ := x509.ParseCertificate(ecDER)
			mlLeafTmpl := &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "ml.example"}, NotBefore: now, NotAfter: now.AddDate(0, 1, 0),
				SignatureAlgorithm: x509.ECDSAWithSHA256}
			mlLeafDER, err := CreateCertificate(mlLeafTmpl, ecCA, key.Public(), ecKey)
			if err != nil {
				t.Fatal(err)
			}
			mlLeaf, _ := x509.ParseCertificate(mlLeafDER)
			if err := mlLeaf.CheckSignatureFrom(ecCA); err != nil {
				t.Errorf("the EC CA's certificate of an ML-DSA key: %v", err)
			}
			if pub, err := ParsePublicKey(mlLeaf.RawSubjectPublicKeyInfo); err != nil || !pub.(sign.PublicKey).Equal(key.Public()) {
				t.Errorf("the certified key: %v", err)
			}

			var revoked RevokedCertificates
			revoked.Add(big.NewInt(2), now, 0)
			crlDER, err := CreateRevocationList(&x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.AddDate(0, 0, 7)}, &revoked, root, key)
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(crlDER)
			if err != nil {
				t.Fatal(err)
			}
			algID, sig, _ := SignatureParts(crlDER)
			if err := checkMLDSASignature(key.Public().(sign.PublicKey), algID, crl.RawTBSRevocationList, sig); err != nil {
				t.Errorf("the CRL's signature: %v", err)
			}
			if len(crl.RevokedCertificateEntries) != 1 {
				t.Errorf("the CRL lists %d certificates", len(crl.RevokedCertificateEntries))
			}

			// OpenSSL parses what Go made (3.0 cannot check ML-DSA
			// signatures; it shows the algorithm's OID).
			if openssl, err := exec.LookPath("openssl"); err == nil {
				path := filepath.Join(t.TempDir(), "root.der")
				os.WriteFile(path, rootDER, 0o600)
				if out, err := exec.Command(openssl, "x509", "-inform", "DER", "-in", path, "-noout", "-text").CombinedOutput(); err != nil {
					t.Errorf("openssl x509: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestMLDSAHedged: ML-DSA signatures are FIPS 204's hedged ones, fresh
// randomness in each, so the same object signed twice differs, and each
// verifies with the empty context string.
func TestMLDSAHedged(t *testing.T) {
	for alg := range mldsaSchemes {
		key, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("the same object")
		var sigs [][]byte
		for range 2 {
			_, sig, err := signBytes(msg, key, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkMLDSASignature(key.Public().(sign.PublicKey), algorithmIdentifier(mldsaSchemes[alg]), msg, sig); err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
			sigs = append(sigs, sig)
		}
		if bytes.Equal(sigs[0], sigs[1]) {
			t.Errorf("%s: the same message signed twice alike, as only the deterministic form signs", alg)
		}
	}
}

// FuzzParseCSR feeds ParseCSR, which reads every CSR a client sends, DER
// it never saw: it returns a request or an error, never panics, and a
// request it returns has a key this package knows and a signature that
// holds.
func FuzzParseCSR(f *testing.F) {
	for _, alg := range []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmRsa2048, openpca.KeyAlgorithmMlDsa44, openpca.KeyAlgorithmSm2} {
		key, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		der, err := CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fuzz.example"}, DNSNames: []string{"fuzz.example"}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := ParseCSR(der)
		if err != nil {
			return
		}
		if KeyAlgorithmOf(csr.PublicKey) == "" && csr.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
			t.Fatalf("a CSR of an unknown key was accepted: %T", csr.PublicKey)
		}
		if _, err := ParseCSR(csr.Raw); err != nil {
			t.Fatalf("a CSR accepted once is refused again: %v", err)
		}
	})
}
