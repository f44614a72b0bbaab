package openpca

import (
	"context"
	"errors"
	"time"
)

// ErrNotWitnessed says that no witnessed checkpoint covers the entries
// asked for in time.
var ErrNotWitnessed = errors.New("witnessing: too few witnesses have cosigned a checkpoint of the log that far")

// WitnessJob is a CA whose key-use log has grown past the checkpoint
// witnesses last cosigned, which a server has claimed, to have them cosign
// a new one.
type WitnessJob struct {
	CAID, AccountID string
	// Sizes are what each witness, by its public key, last cosigned of
	// the CA's log: its next consistency proof starts there.
	Sizes map[string]int64
}

// WitnessedCheckpoint is the latest checkpoint of a CA's log that enough
// witnesses cosigned: a signed note with the server's signature and
// theirs.
type WitnessedCheckpoint struct {
	Size      int64
	Note      []byte
	Cosigners int
	// Answers is how many of the CA's WitnessAgain asks came before the
	// round that had it cosigned began: the asks it answers.
	Answers int64
}

// WitnessStore keeps what witnesses cosigned of each CA's log.
type WitnessStore interface {
	// ClaimWitnessing gives owner, for lease, a CA whose log has entries
	// past its witnessed checkpoint, or a round asked of WitnessAgain,
	// that is due at now (a time due more than ClockStep after it does
	// not count) and that no other owner holds; ErrNotFound if none.
	ClaimWitnessing(ctx context.Context, owner string, now time.Time, lease time.Duration) (*WitnessJob, error)

	// RenewWitnessing extends owner's lease; ErrConflict if owner no
	// longer holds it.
	RenewWitnessing(ctx context.Context, caID, owner string, until time.Time) error

	// FinishWitnessing records what the witnesses now know of the CA's
	// log (sizes, by witness) and, if enough cosigned, the new witnessed
	// checkpoint; it releases owner's hold until nextAt. ErrConflict if
	// owner no longer holds it.
	FinishWitnessing(ctx context.Context, caID, owner string, sizes map[string]int64, witnessed *WitnessedCheckpoint, nextAt time.Time) error

	// WitnessAgain asks for a round of the CA's log begun after the ask,
	// even if the log has not grown, and makes the CA due at once: an
	// audit report wants cosignatures made after it was requested. It
	// returns the ask's number: a witnessed checkpoint whose Answers is at
	// least that was cosigned in such a round (the count of asks a round
	// claimed at its start goes with its checkpoint, in
	// FinishWitnessing). Counted, not timed: a round's time and a
	// report's come from the clocks of the servers that ran them, which
	// may differ.
	WitnessAgain(ctx context.Context, caID string) (int64, error)

	// WitnessedCheckpoint returns the CA's witnessed checkpoint, or
	// ErrNotFound if it has none.
	WitnessedCheckpoint(ctx context.Context, caID string) (*WitnessedCheckpoint, error)
}
