package awsjson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/openpca/openpca"
)

// kind is the type of a shape in the model.
type kind int

const (
	kindString kind = iota + 1
	kindBoolean
	kindInteger
	kindLong
	kindBlob
	kindTimestamp
	kindStructure
	kindList
)

// shape is one shape of the model with the constraints a value must meet.
// The tables in shapes_gen.go are generated from the botocore model.
type shape struct {
	name    string
	kind    kind
	min     *int64 // length for strings, blobs and lists; value for numbers
	max     *int64
	pattern string // as the model writes it, for messages
	re      *regexp.Regexp
	enum    []string
	member  *shape   // element of a list
	members []member // of a structure, in model order
}

// member is a member of a structure shape.
type member struct {
	name     string
	shape    *shape
	required bool
}

// operation is one operation of the model: its input shape, the errors the
// model lists for it, and how to call it on the service.
type operation struct {
	name   string
	input  *shape
	errors []string
	invoke func(ctx context.Context, svc openpca.PrivateCA, decode func(any) error) (any, error)
}

func ptr[T any](v T) *T { return &v }

// maxViolations bounds how many constraint violations one message lists.
const maxViolations = 10

// violations counts a body's constraint violations, and keeps the first
// maxViolations to list: a body of a million bad elements is a million
// violations, but only ten messages.
type violations struct {
	n     int
	shown []string
}

func (v *violations) add(format string, args ...any) {
	v.n++
	if len(v.shown) < maxViolations {
		v.shown = append(v.shown, fmt.Sprintf(format, args...))
	}
}

// maxStructure bounds the objects, arrays and commas of a request body.
// The value decodeInput checks costs tens of bytes of memory for each
// JSON value, so that a 4 MiB body of "{}," would take hundreds of MiB;
// requests that AWS clients send have at most a few hundred.
const maxStructure = 20000

// structure counts the objects, arrays and commas of a JSON text outside
// its strings, or returns early with a count past limit.
func structure(body []byte, limit int) int {
	// Counting them inside strings too is a bound, and fast.
	if n := bytes.Count(body, []byte("{")) + bytes.Count(body, []byte("[")) + bytes.Count(body, []byte(",")); n <= limit {
		return n
	}
	n, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[' || c == ',':
			if n++; n > limit {
				return n
			}
		}
	}
	return n
}

// loneSurrogate reports whether the strings of body, JSON, have a \u
// escape of a surrogate (D800-DFFF) that is not half of a high-low pair.
// A body that is not JSON may give either answer: the decoder refuses it.
func loneSurrogate(body []byte) bool {
	escape := []byte(`\u`)
	if !bytes.Contains(body, escape) {
		return false
	}
	hex := func(b []byte) rune {
		r, err := strconv.ParseUint(string(b), 16, 16)
		if err != nil {
			return -1
		}
		return rune(r)
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(body):
			if body[i+1] != 'u' || i+6 > len(body) {
				i++ // an escaped character, '"' and '\\' included
				continue
			}
			r := hex(body[i+2 : i+6])
			i += 5
			switch {
			case 0xdc00 <= r && r <= 0xdfff:
				return true // a low half, with no high one before it
			case 0xd800 <= r && r <= 0xdbff:
				if i+7 > len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
					return true
				}
				if low := hex(body[i+3 : i+7]); low < 0xdc00 || low > 0xdfff {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// decodeInput checks body against sh and, when it conforms, decodes it
// into in. A body that is not JSON or has members of the wrong type is a
// SerializationException; members that break the model's constraints are a
// ValidationException naming each member and constraint. Members the
// model does not have are ignored, as AWS ignores them.
func decodeInput(sh *shape, body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if structure(body, maxStructure) > maxStructure {
		return openpca.Errorf(openpca.CodeSerialization, "request body has more than %d objects, arrays and elements; no request needs as many", maxStructure)
	}
	// encoding/json would read bytes that are not UTF-8, and an escaped
	// half of a UTF-16 surrogate pair, as U+FFFD: a CA would keep a name
	// the client never sent.
	if !utf8.Valid(body) {
		return openpca.Errorf(openpca.CodeSerialization, "request body is not valid UTF-8")
	}
	if loneSurrogate(body) {
		return openpca.Errorf(openpca.CodeSerialization, "request body has a \\u escape of half a UTF-16 surrogate pair")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return openpca.Errorf(openpca.CodeSerialization, "request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return openpca.Errorf(openpca.CodeSerialization, "request body has data after the JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return openpca.Errorf(openpca.CodeSerialization, "request body must be a JSON object")
	}
	var vs violations
	if err := sh.check(v, "", &vs); err != nil {
		return err
	}
	if vs.n > 0 {
		noun := "error"
		if vs.n > 1 {
			noun = "errors"
		}
		return openpca.Errorf(openpca.CodeValidation, "%d validation %s detected: %s", vs.n, noun, strings.Join(vs.shown, "; "))
	}
	// Only what was checked may be decoded, so the request is set from the
	// checked value, not decoded from the body again. encoding/json matches
	// member names regardless of case, so that an unknown member such as
	// "validity" would overwrite the checked "Validity"; and of a member
	// given twice, the value checked is the last, while decoding the body
	// again would merge the first's members into it, unchecked. Setting it
	// directly also costs a fifth of encoding it again and decoding that
	// (5% of the server's CPU per certificate under load).
	if err := sh.set(v, reflect.ValueOf(in).Elem()); err != nil {
		return openpca.Errorf(openpca.CodeSerialization, "cannot decode request body: %v", err)
	}
	return nil
}

// set stores v, which conforms to s, in dst, the Go value of s's type in
// the openpca package: a struct's field is named as its member, and holds
// a list as a slice, a blob as bytes and a timestamp as a json.Unmarshaler.
// Members that s does not have are left out, and a null leaves dst as it
// is, as encoding/json would.
func (s *shape) set(v any, dst reflect.Value) error {
	if v == nil {
		return nil
	}
	if u, ok := dst.Addr().Interface().(json.Unmarshaler); ok {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return u.UnmarshalJSON(b)
	}
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return s.set(v, dst.Elem())
	}
	switch s.kind {
	case kindString:
		dst.SetString(v.(string))
	case kindBoolean:
		dst.SetBool(v.(bool))
	case kindInteger, kindLong:
		n, err := strconv.ParseInt(v.(json.Number).String(), 10, 64)
		if err != nil || dst.OverflowInt(n) {
			return fmt.Errorf("%s does not fit %s", v, dst.Type())
		}
		dst.SetInt(n)
	case kindBlob:
		raw, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			return err
		}
		dst.SetBytes(raw)
	case kindList:
		list := v.([]any)
		dst.Set(reflect.MakeSlice(dst.Type(), len(list), len(list)))
		for i, elem := range list {
			if err := s.member.set(elem, dst.Index(i)); err != nil {
				return err
			}
		}
	case kindStructure:
		obj := v.(map[string]any)
		for _, m := range s.members {
			mv, ok := obj[m.name]
			if !ok {
				continue
			}
			f := dst.FieldByName(m.name)
			if !f.IsValid() {
				return fmt.Errorf("%s has no field %s", dst.Type(), m.name)
			}
			if err := m.shape.set(mv, f); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("no way to set a %s", s.name)
	}
	return nil
}

// memberPath names a member the way AWS validation messages do:
// lower camel case, dotted, with lists as "name.N.member".
func memberPath(parent, name string) string {
	n := strings.ToLower(name[:1]) + name[1:]
	if parent == "" {
		return n
	}
	return parent + "." + n
}

func typeError(path, want string, v any) error {
	got := "null"
	switch v.(type) {
	case string:
		got = "a string"
	case json.Number:
		got = "a number"
	case bool:
		got = "a boolean"
	case map[string]any:
		got = "an object"
	case []any:
		got = "an array"
	}
	return openpca.Errorf(openpca.CodeSerialization, "member '%s' must be %s, not %s", path, want, got)
}

// check walks v, reporting a type mismatch as an error and appending every
// constraint violation to violations.
func (s *shape) check(v any, path string, vs *violations) error {
	// shown renders the value for a message; it runs only on a violation
	// that the message lists.
	violate := func(shown func() string, constraint string) {
		if len(vs.shown) == maxViolations {
			vs.n++
			return
		}
		vs.add("Value %s at '%s' failed to satisfy constraint: Member must %s", shown(), path, constraint)
	}
	switch s.kind {
	case kindString:
		str, ok := v.(string)
		if !ok {
			return typeError(path, "a string", v)
		}
		shown := func() string { return quote(str) }
		s.checkLength(utf16Len(str), shown, violate)
		if s.re != nil && !s.re.MatchString(str) {
			violate(shown, "satisfy regular expression pattern: "+s.pattern)
		}
		if len(s.enum) > 0 && !contains(s.enum, str) {
			violate(shown, "satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
		}
	case kindBoolean:
		if _, ok := v.(bool); !ok {
			return typeError(path, "a boolean", v)
		}
	case kindInteger, kindLong:
		num, ok := v.(json.Number)
		if !ok {
			return typeError(path, "an integer", v)
		}
		bits := 64
		if s.kind == kindInteger {
			bits = 32
		}
		n, err := strconv.ParseInt(num.String(), 10, bits)
		if err != nil {
			return openpca.Errorf(openpca.CodeSerialization, "member '%s' must be a %d-bit integer, not %s", path, bits, quote(num.String()))
		}
		shown := func() string { return quote(num.String()) }
		if s.min != nil && n < *s.min {
			violate(shown, fmt.Sprintf("have value greater than or equal to %d", *s.min))
		}
		if s.max != nil && n > *s.max {
			violate(shown, fmt.Sprintf("have value less than or equal to %d", *s.max))
		}
	case kindTimestamp:
		num, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a number of epoch seconds", v)
		}
		if f, err := num.Float64(); err != nil || math.IsInf(f, 0) {
			return openpca.Errorf(openpca.CodeSerialization, "member '%s' must be a number of epoch seconds", path)
		}
	case kindBlob:
		str, ok := v.(string)
		if !ok {
			return typeError(path, "a base64 string", v)
		}
		raw, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return openpca.Errorf(openpca.CodeSerialization, "member '%s' is not valid base64: %v", path, err)
		}
		s.checkLength(int64(len(raw)), func() string { return "(blob)" }, violate)
	case kindList:
		list, ok := v.([]any)
		if !ok {
			return typeError(path, "an array", v)
		}
		s.checkLength(int64(len(list)), func() string { return shortJSON(list) }, violate)
		for i, elem := range list {
			if elem == nil {
				vs.add("Value null at '%s.%d.member' failed to satisfy constraint: Member must not be null", path, i+1)
				continue
			}
			if err := s.member.check(elem, fmt.Sprintf("%s.%d.member", path, i+1), vs); err != nil {
				return err
			}
		}
	case kindStructure:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeError(path, "an object", v)
		}
		for _, m := range s.members {
			mv := obj[m.name]
			if mv == nil {
				if m.required {
					vs.add("Value null at '%s' failed to satisfy constraint: Member must not be null", memberPath(path, m.name))
				}
				continue
			}
			if err := m.shape.check(mv, memberPath(path, m.name), vs); err != nil {
				return err
			}
		}
	}
	return nil
}

// utf16Len is the length of s in UTF-16 code units, as the model's
// length constraints count it.
func utf16Len(s string) int64 {
	var n int64
	for _, r := range s {
		n += int64(utf16.RuneLen(r))
	}
	return n
}

func (s *shape) checkLength(n int64, shown func() string, violate func(shown func() string, constraint string)) {
	if s.min != nil && n < *s.min {
		violate(shown, fmt.Sprintf("have length greater than or equal to %d", *s.min))
	}
	if s.max != nil && n > *s.max {
		violate(shown, fmt.Sprintf("have length less than or equal to %d", *s.max))
	}
}

// maxShown bounds how much of a value a message repeats.
const maxShown = 100

func quote(s string) string {
	r := []rune(s)
	if len(r) > maxShown {
		return "'" + string(r[:maxShown]) + "...'"
	}
	return "'" + s + "'"
}

func shortJSON(v any) string {
	b, _ := json.Marshal(v)
	return quote(string(b))
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
