package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// TestOpenWitnessedVerifiesEveryLine: a witnessed checkpoint with a second
// cosignature line of a known witness that does not verify is refused
// (c2sp.org/signed-note: verifiers MUST verify every line of a known
// key); x/mod's note.Open drops such a line unverified.
func TestOpenWitnessedVerifiesEveryLine(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "openpca-audit")
	if err != nil {
		t.Fatal(err)
	}
	server, _ := note.NewSigner(skey)
	_, wkey, _ := ed25519.GenerateKey(nil)
	witness, err := torchwood.NewCosignatureSigner("witness.example/one", wkey)
	if err != nil {
		t.Fatal(err)
	}
	text := "openpca/log\n3\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\ntime 2026-12-05T09:00:00Z\n"
	signed, err := note.Sign(&note.Note{Text: text}, server, witness)
	if err != nil {
		t.Fatal(err)
	}
	witnesses := []note.Verifier{witness.Verifier()}
	if _, _, err := OpenWitnessed(signed, vkey, witnesses, 1, time.Time{}); err != nil {
		t.Fatalf("the checkpoint as cosigned: %v", err)
	}
	// The witness's line again, its signature's last bytes changed.
	lines := strings.Split(strings.TrimSuffix(string(signed), "\n"), "\n")
	last := lines[len(lines)-1]
	name, b64, _ := strings.Cut(strings.TrimPrefix(last, "— "), " ")
	sig, _ := base64.StdEncoding.DecodeString(b64)
	sig[len(sig)-1] ^= 1
	forged := string(signed) + "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	if _, _, err := OpenWitnessed([]byte(forged), vkey, witnesses, 1, time.Time{}); err == nil {
		t.Error("a checkpoint with a second cosignature of the witness that does not verify was taken")
	}
}
