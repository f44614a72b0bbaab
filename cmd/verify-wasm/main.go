//go:build js && wasm

// Command verify-wasm is the audit report verifier of "openpca audit
// verify", compiled to WebAssembly for the console's verify page: the
// browser checks a report and its proof file itself, without sending them
// anywhere. The page and this verifier come from the server, so they show
// nothing its operator could not fake: an auditor who does not trust the
// operator runs openpca audit verify on their own machine. Build it with
// go generate ./console.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"syscall/js"
	"time"

	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
)

// result is what openpcaVerify returns, as JSON.
type result struct {
	Rows         int    `json:"rows"`
	Certificates int    `json:"certificates"`
	Report       string `json:"report,omitempty"` // the id its proof file signs
	// CA, Size and Signed are what the report verified as: the CA whose
	// log it is, how many entries of it, and when the checkpoint was
	// signed (RFC 3339), as the CLI prints them; empty when no checkpoint
	// holds.
	CA           string           `json:"ca,omitempty"`
	Size         int64            `json:"size,omitempty"`
	Signed       string           `json:"signed,omitempty"`
	Witnessed    *audit.Witnessed `json:"witnessed,omitempty"`
	NotWitnessed string           `json:"notWitnessed,omitempty"` // why, as the server says, when witnesses were not checked
	// Unchecked says that the proof file has a witnessed checkpoint,
	// which was not checked: no witness keys were given.
	Unchecked bool      `json:"unchecked,omitempty"`
	Problems  []problem `json:"problems"`
	Notes     []string  `json:"notes,omitempty"` // what proves nothing wrong, but a reader should know
}

type problem struct {
	Check   string `json:"check"`
	Row     int    `json:"row,omitempty"`
	Message string `json:"message"`
}

// usage is what openpcaVerify answers to arguments it cannot read.
const usage = `{"problems":[{"check":"usage","message":"openpcaVerify(report, proof, key, reportName, witnessKeys, quorum, witnessedAfter)"}]}`

func main() {
	// openpcaVerify(report Uint8Array, proof Uint8Array, key string,
	// reportName string, witnessKeys string (space-separated), quorum
	// number (0: all), witnessedAfter string (RFC 3339, or "")) string
	js.Global().Set("openpcaVerify", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 7 {
			return usage
		}
		report, proof, key := bytesOf(args[0]), bytesOf(args[1]), args[2].String()
		var problems []problem
		witnesses, err := auditlog.NewWitnessVerifiers(strings.Fields(args[4].String()))
		if err != nil {
			problems = append(problems, problem{Check: "witness", Message: "the witness keys: " + err.Error()})
		}
		quorum := args[5].Int()
		var notes []string
		switch {
		case quorum < 0 || quorum > len(witnesses):
			problems = append(problems, problem{Check: "witness", Message: fmt.Sprintf("%d witnesses must have cosigned, of the %d whose keys are given", quorum, len(witnesses))})
		case quorum == 0:
			quorum = len(witnesses)
		}
		if why := audit.SplitView(quorum, len(witnesses)); why != "" && quorum > 0 {
			notes = append(notes, "Witnesses: "+why+". Require more than half of them.")
		}
		var after time.Time
		if s := strings.TrimSpace(args[6].String()); s != "" {
			var err error
			if after, err = time.Parse(time.RFC3339, s); err != nil {
				problems = append(problems, problem{Check: "witness", Message: "the time the witnesses must have cosigned after is not RFC 3339, such as 2026-12-01T09:00:00Z"})
			}
			if len(witnesses) == 0 {
				problems = append(problems, problem{Check: "witness", Message: "a time the witnesses must have cosigned after needs their keys"})
			}
		}
		v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), key)
		if len(witnesses) > 0 {
			v.CheckWitnesses(key, witnesses, quorum, after)
		}
		v.CheckIdentity(args[3].String(), "", "", false)
		out := result{Rows: v.Rows, Certificates: v.Certificates, Witnessed: v.Witnessed, Problems: problems, Notes: append(notes, v.Notes...)}
		if v.Statement != nil {
			out.Report = audit.Printable(v.Statement.ID)
		}
		if v.Checkpoint != nil {
			out.CA = audit.Printable(v.Header.CertificateAuthorityArn)
			out.Size, out.Signed = v.Checkpoint.Size, v.Checkpoint.Time.Format(time.RFC3339)
		}
		if v.Header != nil && len(witnesses) == 0 {
			// The header's word, which nothing signs: shown as the CLI
			// shows what it quotes of the files, escaped and cut.
			out.NotWitnessed = audit.Printable(v.Header.NotWitnessed)
			if v.Header.WitnessedCheckpoint != "" {
				out.NotWitnessed, out.Unchecked = "", true
			}
		}
		if out.Problems == nil {
			out.Problems = []problem{}
		}
		for _, p := range v.Problems {
			out.Problems = append(out.Problems, problem{Check: p.Check, Row: p.Row, Message: p.Detail})
		}
		b, _ := json.Marshal(out)
		return string(b)
	}))
	select {}
}

func bytesOf(v js.Value) []byte {
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b
}
