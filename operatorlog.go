package openpca

import (
	"context"
	"time"
)

// OperatorAction is a change an operator made with an openpca command on
// a server's data (accounts, access keys and their policies, buckets, the
// master key): who ran it, where, when, and what it changed. The API's
// requests are in the server's request log; these are not requests.
type OperatorAction struct {
	At      time.Time
	User    string // the operating system's user that ran the command
	Host    string
	Command string // such as "keys revoke"
	Detail  string // what it changed, such as the key's id; never a secret
}

// OperatorLog keeps the operators' actions, so that the change of a key's
// rights, say, can be traced to who made it. Whoever can write the
// database can change it too: it records, it does not prove.
type OperatorLog interface {
	// RecordOperatorAction adds an action to the log.
	RecordOperatorAction(ctx context.Context, a *OperatorAction) error
	// ListOperatorActions returns at most limit actions, the newest first.
	ListOperatorActions(ctx context.Context, limit int) ([]*OperatorAction, error)
}
