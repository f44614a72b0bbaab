package authority

import (
	"encoding/base64"
	"encoding/json"
)

// nextToken is what a list operation's NextToken holds: the place its
// page ended, and the list it pages (the operation, and the account or
// CA listed). AWS refuses a token of another request; bound to its list,
// a token a client mixed up (another CA's, another account's, another
// operation's) is refused too, rather than give a page from another
// list's place. Tokens are neither secret nor signed: every list is
// filtered by the caller's account and rights, whatever place a token
// names.
type nextToken struct {
	List  string          `json:"l"`
	Place json.RawMessage `json:"p"`
}

// encodeNextToken returns the NextToken of list after place.
func encodeNextToken(list string, place any) string {
	p, _ := json.Marshal(place)
	b, _ := json.Marshal(nextToken{List: list, Place: p})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeNextToken reads into place a token of list that encodeNextToken
// returned, and reports whether it was one.
func decodeNextToken(token, list string, place any) bool {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	var t nextToken
	return json.Unmarshal(b, &t) == nil && t.List == list && json.Unmarshal(t.Place, place) == nil
}
