package audit

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/openpca/openpca"
)

// recordParser decodes key-use records, which must be ones a server
// writes (openpca.RecordChecker). Its zero value is ready.
type recordParser struct{ check openpca.RecordChecker }

// parse decodes b into r. The records OpenPCA writes (one flat object of
// known members, without spaces, strings without escapes) take a path of
// their own, about ten times faster: a report's log has millions.
// Anything else goes through encoding/json.
func (p *recordParser) parse(b []byte, r *openpca.KeyUseRecord) error {
	if err := decodeRecord(b, r); err != nil {
		return err
	}
	return p.check.Check(b, r)
}

// decodeRecord decodes b into r as parse does, without checking that it
// is a record a server writes: for a record checked already.
func decodeRecord(b []byte, r *openpca.KeyUseRecord) error {
	*r = openpca.KeyUseRecord{}
	if parseFlatRecord(b, r) {
		return nil
	}
	*r = openpca.KeyUseRecord{}
	return json.Unmarshal(b, r)
}

// parseFlatRecord decodes b into r if b is a record as OpenPCA writes
// them, and reports whether it was; when it was not, r holds whatever it
// had read.
func parseFlatRecord(b []byte, r *openpca.KeyUseRecord) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	var seen uint32
	i := 1
	if b[i] == '}' {
		return i == len(b)-1
	}
	for {
		key, next, ok := flatString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return false
		}
		i = next + 1
		bit, str, integer, ok := recordField(r, key)
		if !ok || seen&(1<<bit) != 0 {
			return false // a member encoding/json would ignore or take the last of
		}
		seen |= 1 << bit
		if str != nil {
			value, next, ok := flatString(b, i)
			if !ok {
				return false
			}
			*str = string(value)
			i = next
		} else {
			end := i
			for end < len(b) && (b[end] >= '0' && b[end] <= '9' || b[end] == '-') {
				end++
			}
			n, ok := flatInt(b[i:end])
			if !ok {
				return false
			}
			integer(n)
			i = end
		}
		switch {
		case i == len(b)-1 && b[i] == '}':
			return true
		case i < len(b)-1 && b[i] == ',':
			i++
		default:
			return false
		}
	}
}

// flatString reads the JSON string at b[i:] if it has no escape and no
// control character and is valid UTF-8, and returns it and the index
// after it.
func flatString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return s, j + 1, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// flatInt parses a JSON integer without fraction or exponent.
func flatInt(b []byte) (int64, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// recordField returns the member of KeyUseRecord named key in JSON, as
// its struct tags name them: a string, or an integer; ok is false for a
// name it does not have.
func recordField(r *openpca.KeyUseRecord, key []byte) (bit uint, str *string, integer func(int64), ok bool) {
	switch string(key) {
	case "kind":
		return 0, &r.Kind, nil, true
	case "certificateAuthorityArn":
		return 1, &r.CertificateAuth, nil, true
	case "at":
		return 2, &r.At, nil, true
	case "awsAccountId":
		return 3, &r.Account, nil, true
	case "requestedBy":
		return 4, &r.RequestedBy, nil, true
	case "requestId":
		return 5, &r.RequestID, nil, true
	case "certificateArn":
		return 6, &r.CertificateArn, nil, true
	case "serial":
		return 7, &r.Serial, nil, true
	case "subject":
		return 8, &r.Subject, nil, true
	case "notBefore":
		return 9, &r.NotBefore, nil, true
	case "notAfter":
		return 10, &r.NotAfter, nil, true
	case "templateArn":
		return 11, &r.TemplateArn, nil, true
	case "revocationReason":
		return 12, &r.RevocationReason, nil, true
	case "thisUpdate":
		return 13, &r.ThisUpdate, nil, true
	case "nextUpdate":
		return 14, &r.NextUpdate, nil, true
	case "certStatus":
		return 15, &r.CertStatus, nil, true
	case "signedSha256":
		return 16, &r.SignedSHA256, nil, true
	case "crlNumber":
		return 17, nil, func(n int64) { r.CRLNumber = n }, true
	case "revokedCertificates":
		return 18, nil, func(n int64) { v := int(n); r.Revoked = &v }, true
	case "revocationsBefore":
		return 19, nil, func(n int64) { r.RevocationsBefore = &n }, true
	case "revocationsFrom":
		return 24, nil, func(n int64) { r.RevocationsFrom = &n }, true
	case "expiringFrom":
		return 20, &r.ExpiringFrom, nil, true
	case "entriesSha256":
		return 21, &r.EntriesSHA256, nil, true
	case "certificateSha256":
		return 22, &r.CertificateSHA256, nil, true
	case "chainSha256":
		return 23, &r.ChainSHA256, nil, true
	}
	return 0, nil, nil, false
}
