package witness_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca/witness"
)

// forgedDuplicate returns signed with a second signature line of its first
// signature's key (the same name and key ID) whose signature is garbage.
func forgedDuplicate(t *testing.T, signed []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(signed, []byte("\n\n"))
	line := strings.TrimSuffix(string(signed[i+2:]), "\n")
	name, b64, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(sig)
	for j := 4; j < len(bad); j++ {
		bad[j] ^= 0xff
	}
	return fmt.Appendf(bytes.Clone(signed), "— %s %s\n", name, base64.StdEncoding.EncodeToString(bad))
}

// TestWitnessRefusesAnInvalidDuplicateSignature: c2sp.org/tlog-witness:
// "The witness MUST respond with a "403 Forbidden" HTTP status code if
// [...] a signature line's key name and ID match a trusted key but the
// signature itself fails to verify"; c2sp.org/signed-note: "If the key
// name and ID match a known key, verifiers MUST verify the signature."
// x/mod's note.Open drops a second line of a key it has verified without
// verifying it, and the witness cosigns such a note.
func TestWitnessRefusesAnInvalidDuplicateSignature(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	c, _ := startWitness(t, trust(t, l.origin, l))
	_, err := c.AddCheckpoint(t.Context(), 0, nil, forgedDuplicate(t, l.checkpoint(t, 3)))
	var refused *witness.RefusedError
	if !errors.As(err, &refused) || refused.Status != http.StatusForbidden {
		t.Errorf("a checkpoint with a second, invalid signature of the log's key: %v; want a 403", err)
	}
}

// TestClientRefusesAnInvalidDuplicateCosignature: the client takes a
// witness's answer whose second line of the witness's key does not verify
// (signed-note: verifiers MUST verify every line of a known key, and
// SHOULD reject the note if one fails).
func TestClientRefusesAnInvalidDuplicateCosignature(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	wc, _ := startWitness(t, trust(t, l.origin, l))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A real cosignature, then a garbage one of the same key.
		res, err := http.Post(wc.URL+"/add-checkpoint", "text/plain", r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		defer res.Body.Close()
		var answer bytes.Buffer
		answer.ReadFrom(res.Body)
		line := strings.TrimSuffix(answer.String(), "\n")
		name, b64, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
		sig, _ := base64.StdEncoding.DecodeString(b64)
		for j := 12; j < len(sig); j++ {
			sig[j] ^= 0xff
		}
		fmt.Fprintf(w, "%s\n— %s %s\n", line, name, base64.StdEncoding.EncodeToString(sig))
	}))
	defer srv.Close()
	c := &witness.Client{URL: srv.URL, Verifier: wc.Verifier}
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 3)); err == nil {
		t.Error("an answer with a cosignature line of the witness's key that does not verify was taken")
	}
}

// TestWitnessRefusesAProofBetweenEqualSizes: c2sp.org/tlog-witness: the
// proof lines "MUST encode a Merkle Consistency Proof from the old size to
// the checkpoint size according to RFC 6962", and "if a Merkle Consistency
// Proof doesn't verify, the witness MUST respond with a 422". Between
// equal sizes RFC 6962's proof is empty (x/mod's tlog.CheckTree refuses
// any other); the witness ignores the lines and cosigns.
func TestWitnessRefusesAProofBetweenEqualSizes(t *testing.T) {
	l := newLog(t, "example.com/log", 10)
	c, _ := startWitness(t, trust(t, l.origin, l))
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 10)); err != nil {
		t.Fatal(err)
	}
	root, _ := l.tree.Root(10)
	_, err := c.AddCheckpoint(t.Context(), 10, []tlog.Hash{root}, l.checkpoint(t, 10))
	var refused *witness.RefusedError
	if !errors.As(err, &refused) || refused.Status != http.StatusUnprocessableEntity {
		t.Errorf("a checkpoint of the cosigned size with a proof of one hash: %v; want a 422", err)
	}
}
