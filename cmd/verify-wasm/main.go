//go:build js && wasm

// Command verify-wasm is the audit report verifier of "openpca audit
// verify", compiled to WebAssembly for the console's verify page: the
// browser checks a report and its proof file itself, so that the result
// does not rest on trusting the server that served the page. Build it with
// go generate ./console.
package main

import (
	"bytes"
	"encoding/json"
	"syscall/js"

	"github.com/openpca/openpca/audit"
)

// result is what openpcaVerify returns, as JSON.
type result struct {
	Rows         int       `json:"rows"`
	Certificates int       `json:"certificates"`
	Problems     []problem `json:"problems"`
}

type problem struct {
	Check   string `json:"check"`
	Row     int    `json:"row,omitempty"`
	Message string `json:"message"`
}

func main() {
	// openpcaVerify(report Uint8Array, proof Uint8Array, key string) string
	js.Global().Set("openpcaVerify", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 3 {
			return `{"problems":[{"check":"usage","message":"openpcaVerify(report, proof, key)"}]}`
		}
		report, proof := bytesOf(args[0]), bytesOf(args[1])
		v := audit.Verify(bytes.NewReader(report), bytes.NewReader(proof), args[2].String())
		out := result{Rows: v.Rows, Certificates: v.Certificates, Problems: []problem{}}
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
