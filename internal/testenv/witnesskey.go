package testenv

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
)

// RenamedWitnessKey is the witness key vkey (name+hash+key, as
// c2sp.org/signed-note writes it) under another name, with the key hash
// that name gives it: the same witness's key, which its cosignatures,
// signing no name, verify under either.
func RenamedWitnessKey(vkey, name string) string {
	key64 := strings.SplitN(vkey, "+", 3)[2]
	key, _ := base64.StdEncoding.DecodeString(key64)
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:]), key64)
}
