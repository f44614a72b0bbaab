package awsjson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

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

// decodeInput checks body against sh and, when it conforms, decodes it
// into in. A body that is not JSON or has members of the wrong type is a
// SerializationException; members that break the model's constraints are a
// ValidationException naming each member and constraint. Members the
// model does not have are ignored, as AWS ignores them.
func decodeInput(sh *shape, body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
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
	var violations []string
	if err := sh.check(v, "", &violations); err != nil {
		return err
	}
	if len(violations) > 0 {
		noun := "error"
		if len(violations) > 1 {
			noun = "errors"
		}
		shown := violations
		if len(shown) > maxViolations {
			shown = shown[:maxViolations]
		}
		return openpca.Errorf(openpca.CodeValidation, "%d validation %s detected: %s", len(violations), noun, strings.Join(shown, "; "))
	}
	// encoding/json matches member names regardless of case, so an unknown
	// member such as "validity" would overwrite the checked "Validity":
	// only what was checked may be decoded.
	if sh.dropUnknown(v) {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(body, in); err != nil {
		return openpca.Errorf(openpca.CodeSerialization, "cannot decode request body: %v", err)
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
func (s *shape) check(v any, path string, violations *[]string) error {
	// shown renders the value for a message; it runs only on a violation.
	violate := func(shown func() string, constraint string) {
		*violations = append(*violations, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", shown(), path, constraint))
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
			return openpca.Errorf(openpca.CodeSerialization, "member '%s' must be a %d-bit integer, not %s", path, bits, num)
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
				*violations = append(*violations, fmt.Sprintf("Value null at '%s.%d.member' failed to satisfy constraint: Member must not be null", path, i+1))
				continue
			}
			if err := s.member.check(elem, fmt.Sprintf("%s.%d.member", path, i+1), violations); err != nil {
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
					*violations = append(*violations, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", memberPath(path, m.name)))
				}
				continue
			}
			if err := m.shape.check(mv, memberPath(path, m.name), violations); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropUnknown removes from v, which conforms to s, every member of an
// object that s does not have, and reports whether it removed any.
func (s *shape) dropUnknown(v any) bool {
	dropped := false
	switch s.kind {
	case kindList:
		for _, elem := range v.([]any) {
			dropped = s.member.dropUnknown(elem) || dropped
		}
	case kindStructure:
		obj := v.(map[string]any)
		for name, mv := range obj {
			i := slices.IndexFunc(s.members, func(m member) bool { return m.name == name })
			switch {
			case i < 0:
				delete(obj, name)
				dropped = true
			case mv != nil:
				dropped = s.members[i].shape.dropUnknown(mv) || dropped
			}
		}
	}
	return dropped
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
