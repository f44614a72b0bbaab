package witness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// ConflictError says that a witness last cosigned a checkpoint of Size
// entries, not the old size a request gave.
type ConflictError struct{ Size int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the witness last cosigned a checkpoint of %d entries", e.Size)
}

// RefusedError is a witness's refusal, a 4xx status: 422 says the
// checkpoint is not consistent with what the witness cosigned before; 403
// and 404, that the witness does not trust the log's key or know its
// origin; 400, that the request is malformed.
type RefusedError struct {
	Status  int
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the witness refused the checkpoint (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Client asks one witness for cosignatures.
type Client struct {
	// URL is the witness's submission prefix: requests go to
	// URL/add-checkpoint.
	URL string
	// Verifier checks the witness's cosignatures (see auditlog.NewWitnessVerifier).
	Verifier note.Verifier
	HTTP     *http.Client
}

// maxResponse bounds what a witness's answer may be, and maxSaid what an
// error quotes of it.
const (
	maxResponse = 64 << 10
	maxSaid     = 256
)

// AddCheckpoint asks the witness to cosign checkpoint, a signed note,
// with proof that it extends the checkpoint of oldSize entries the witness
// last cosigned (none for 0). It returns checkpoint with the witness's
// cosignature added, once it verifies; a *ConflictError if the witness
// last cosigned another size; a *RefusedError if it refuses.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize int64, proof tlog.TreeProof, checkpoint []byte) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", h)
	}
	body.WriteByte('\n')
	body.Write(checkpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", &body)
	if err != nil {
		return nil, err
	}
	// Adding a checkpoint twice is adding it once: this lets Go send the
	// request again on a fresh connection when the witness closed the
	// idle one as it went out (the header itself is not sent).
	req.Header["Idempotency-Key"] = nil
	hc := c.HTTP
	if hc == nil {
		// A witness's redirect is not followed: whoever runs a witness
		// would have the server post to any address it can reach, such
		// as one on the operator's own network.
		hc = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return nil, err
	}
	// What the witness says goes to the server's log at each round: as
	// much as a reason takes, not the 64 KiB an answer may be.
	said, cut := openpca.CutText(strings.TrimSpace(string(answer)), maxSaid)
	if cut {
		said += "…"
	}
	switch {
	case res.StatusCode == http.StatusConflict:
		size, err := strconv.ParseInt(strings.TrimSpace(string(answer)), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("the witness answered 409 without a size: %q", said)
		}
		return nil, &ConflictError{Size: size}
	case res.StatusCode >= 500:
		// A witness that fails is one that did not answer, not a refusal.
		return nil, fmt.Errorf("the witness failed: %s: %q", res.Status, said)
	case res.StatusCode != http.StatusOK:
		return nil, &RefusedError{Status: res.StatusCode, Message: said}
	}
	// The answer is signature lines: added to the checkpoint, they make a
	// note the witness's key must verify.
	cosigned := append(bytes.Clone(checkpoint), answer...)
	n, err := auditlog.OpenNote(cosigned, c.Verifier)
	if err != nil {
		return nil, fmt.Errorf("the witness's answer holds no valid cosignature of its key: %v", err)
	}
	for _, sig := range n.Sigs {
		if sig.Hash == c.Verifier.KeyHash() && sig.Name == c.Verifier.Name() {
			return append(bytes.Clone(checkpoint), []byte("— "+sig.Name+" "+sig.Base64+"\n")...), nil
		}
	}
	return nil, fmt.Errorf("the witness's answer holds no cosignature of its key")
}
