package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// testWitnessing: a CA whose log grew past its witnessed checkpoint is
// claimed by one owner at a time, once due; what the witnesses cosigned is
// kept, and a smaller checkpoint never replaces a larger one.
func testWitnessing(t *testing.T, s openpca.Store) {
	t0 := now()
	lease := time.Minute
	if _, err := s.ClaimWitnessing(ctx, "a", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a claim with no log: %v", err)
	}
	ca := activeCA(t, s) // its log holds its CSR's signing
	job, err := s.ClaimWitnessing(ctx, "a", t0, lease)
	if err != nil || job.CAID != ca.ID || job.AccountID != ca.AccountID || len(job.Sizes) != 0 {
		t.Fatalf("the first claim: %+v, %v", job, err)
	}
	if _, err := s.ClaimWitnessing(ctx, "b", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a second owner claimed a held log: %v", err)
	}
	if err := s.RenewWitnessing(ctx, ca.ID, "b", t0.Add(lease)); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("an owner renewed a lease it does not hold: %v", err)
	}
	if err := s.RenewWitnessing(ctx, ca.ID, "a", t0.Add(2*lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WitnessedCheckpoint(ctx, ca.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a witnessed checkpoint before any: %v", err)
	}
	witnessed := &openpca.WitnessedCheckpoint{Size: 1, Note: []byte("note of 1"), Cosigners: 2}
	if err := s.FinishWitnessing(ctx, ca.ID, "b", nil, witnessed, t0); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a server that does not hold the log finished it: %v", err)
	}
	if err := s.FinishWitnessing(ctx, ca.ID, "a", map[string]int64{"w1": 1, "w2": 1}, witnessed, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if w, err := s.WitnessedCheckpoint(ctx, ca.ID); err != nil || w.Size != 1 || string(w.Note) != "note of 1" || w.Cosigners != 2 {
		t.Errorf("the witnessed checkpoint: %+v, %v", w, err)
	}
	if _, err := s.ClaimWitnessing(ctx, "b", t0.Add(time.Hour), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a log witnessed to its end was claimed: %v", err)
	}

	// The log grows: it is claimed again once due, with what each witness
	// cosigned.
	if err := s.RecordOCSP(ctx, openpca.OCSPUse(ca, "01", "unknown", t0, []byte("ocsp")), nil, active); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimWitnessing(ctx, "b", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a log was claimed before it was due: %v", err)
	}
	job, err = s.ClaimWitnessing(ctx, "b", t0.Add(2*time.Second), lease)
	if err != nil || job.Sizes["w1"] != 1 || job.Sizes["w2"] != 1 {
		t.Fatalf("the claim of the grown log: %+v, %v", job, err)
	}
	// Only w1 cosigns this time, too few: the witnessed checkpoint stays.
	if err := s.FinishWitnessing(ctx, ca.ID, "b", map[string]int64{"w1": 2}, nil, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(3*time.Second), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a log was claimed before its retry: %v", err)
	}
	// Due minutes ahead (another server's clock runs ahead), it waits;
	// due more than openpca.ClockStep ahead, it is due now (a clock
	// stepped back since).
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(10*time.Second-5*time.Minute), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a log due 5 minutes ahead was claimed: %v", err)
	}
	if job, err := s.ClaimWitnessing(ctx, "a", t0.Add(10*time.Second-openpca.ClockStep-time.Second), lease); err != nil {
		t.Errorf("a log due %s ahead was not claimed: %v", openpca.ClockStep+time.Second, err)
	} else if err := s.FinishWitnessing(ctx, ca.ID, "a", job.Sizes, nil, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A report waits for a witnessed checkpoint: the retry comes sooner.
	first, err := s.WitnessAgain(ctx, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	job, err = s.ClaimWitnessing(ctx, "a", t0.Add(3*time.Second), lease)
	if err != nil || job.Sizes["w1"] != 2 || job.Sizes["w2"] != 1 {
		t.Fatalf("the claim after w1 alone cosigned: %+v, %v", job, err)
	}
	if err := s.FinishWitnessing(ctx, ca.ID, "a", nil, &openpca.WitnessedCheckpoint{Size: 0, Note: []byte("older"), Cosigners: 2}, t0); err != nil {
		t.Fatal(err)
	}
	if w, err := s.WitnessedCheckpoint(ctx, ca.ID); err != nil || w.Size != 1 || w.Answers >= first {
		t.Errorf("a smaller checkpoint replaced the witnessed one, or answered the ask: %+v, %v", w, err)
	}

	// The ask stays open until a checkpoint of a round claimed after it
	// is cosigned; then the log, which has not grown, is not claimed.
	job, err = s.ClaimWitnessing(ctx, "a", t0.Add(4*time.Second), lease)
	if err != nil {
		t.Fatalf("the claim of a round asked for, after a smaller checkpoint: %v", err)
	}
	if err := s.FinishWitnessing(ctx, ca.ID, "a", nil, &openpca.WitnessedCheckpoint{Size: 2, Note: []byte("note of 2"), Cosigners: 2}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if w, err := s.WitnessedCheckpoint(ctx, ca.ID); err != nil || w.Size != 2 || w.Answers != first {
		t.Errorf("the witnessed checkpoint of 2: %+v, %v; want it to answer ask %d", w, err, first)
	}
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(5*time.Second), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a round was claimed after its ask was met: %v", err)
	}
	// An ask made during a round, however its servers' clocks read, is
	// not answered by it: another round is.
	asked, err := s.WitnessAgain(ctx, ca.ID)
	if err != nil || asked <= first {
		t.Fatalf("the next ask: %d, %v", asked, err)
	}
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(5*time.Second), lease); err != nil {
		t.Fatalf("a round asked for, of a log that has not grown: %v", err)
	}
	during, err := s.WitnessAgain(ctx, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishWitnessing(ctx, ca.ID, "a", nil, &openpca.WitnessedCheckpoint{Size: 2, Note: []byte("early"), Cosigners: 2}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if w, err := s.WitnessedCheckpoint(ctx, ca.ID); err != nil || w.Answers != asked {
		t.Errorf("the checkpoint of a round claimed after ask %d and before ask %d: %+v, %v", asked, during, w, err)
	}
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(6*time.Second), lease); err != nil {
		t.Fatalf("the claim for an ask made during the last round: %v", err)
	}
	if err := s.FinishWitnessing(ctx, ca.ID, "a", nil, &openpca.WitnessedCheckpoint{Size: 2, Note: []byte("fresh"), Cosigners: 2}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if w, err := s.WitnessedCheckpoint(ctx, ca.ID); err != nil || w.Answers != during {
		t.Errorf("the checkpoint of a round claimed after ask %d: %+v, %v", during, w, err)
	}
	if _, err := s.ClaimWitnessing(ctx, "a", t0.Add(time.Hour), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a round was claimed after every ask was met: %v", err)
	}
	// Asked of a CA no round has touched yet, it is claimed too.
	other := activeCA(t, s)
	if _, err := s.WitnessAgain(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if job, err := s.ClaimWitnessing(ctx, "b", t0.Add(time.Hour), lease); err != nil || job.CAID != other.ID {
		t.Errorf("the claim of a CA asked of before any round: %+v, %v", job, err)
	}
	// A hold, though it ends more than openpca.ClockStep after now (its
	// owner's clock runs ahead), is its owner's while it renews it.
	ahead := t0.Add(time.Hour + 2*openpca.ClockStep)
	if err := s.RenewWitnessing(ctx, other.ID, "b", ahead.Add(lease)); err != nil {
		t.Fatal(err)
	}
	if job, err := s.ClaimWitnessing(ctx, "c", t0.Add(time.Hour+time.Minute), lease); err == nil && job.CAID == other.ID {
		t.Errorf("a hold renewed by a clock hours ahead was taken: %+v", job)
	}
	if err := s.FinishWitnessing(ctx, other.ID, "b", nil, &openpca.WitnessedCheckpoint{Size: 1, Note: []byte("n"), Cosigners: 1}, ahead); err != nil {
		t.Errorf("its owner's round could not be recorded: %v", err)
	}
}
