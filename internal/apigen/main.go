// Command apigen generates package api from the botocore service model of
// AWS Private CA (acm-pca, 2017-08-22).
//
// It carries over the model's facts (shapes, members, constraints, enums,
// operations and their error lists) and none of its documentation text. The
// model is read from the botocore installation that ships with the AWS CLI v1
// and boto3; -model overrides the location.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

const modelSubdir = "data/acm-pca/2017-08-22/service-2.json.gz"

type model struct {
	Metadata struct {
		APIVersion   string `json:"apiVersion"`
		TargetPrefix string `json:"targetPrefix"`
		JSONVersion  string `json:"jsonVersion"`
		SigningName  string `json:"signingName"`
	} `json:"metadata"`
	Operations map[string]operation `json:"operations"`
	Shapes     map[string]shape     `json:"shapes"`
}

type operation struct {
	Input      *ref  `json:"input"`
	Output     *ref  `json:"output"`
	Errors     []ref `json:"errors"`
	Idempotent bool  `json:"idempotent"`
}

type ref struct {
	Shape string `json:"shape"`
	Box   bool   `json:"box"`
}

type shape struct {
	Type      string         `json:"type"`
	Members   map[string]ref `json:"members"`
	Member    *ref           `json:"member"`
	Required  []string       `json:"required"`
	Min       *int64         `json:"min"`
	Max       *int64         `json:"max"`
	Pattern   string         `json:"pattern"`
	Enum      []string       `json:"enum"`
	Exception bool           `json:"exception"`
	Box       bool           `json:"box"`
}

func main() {
	log.SetFlags(0)
	modelPath := flag.String("model", "", "path to service-2.json(.gz); default: the installed botocore's acm-pca model")
	domainDir := flag.String("domain", ".", "directory of package openpca (types and the service interface)")
	wireDir := flag.String("wire", "awsjson", "directory of package awsjson (constraint tables and dispatch)")
	flag.Parse()

	path := *modelPath
	if path == "" {
		var err error
		if path, err = botocoreModelPath(); err != nil {
			log.Fatalf("apigen: %v (pass -model)", err)
		}
	}
	m, err := readModel(path)
	if err != nil {
		log.Fatalf("apigen: %v", err)
	}
	order, err := memberOrder(path)
	if err != nil {
		log.Fatalf("apigen: %v", err)
	}
	files, err := generate(m, order)
	if err != nil {
		log.Fatalf("apigen: %v", err)
	}
	dirs := map[string]string{"openpca": *domainDir, "awsjson": *wireDir}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dirs[f.pkg], f.name), f.src, 0o644); err != nil {
			log.Fatalf("apigen: %v", err)
		}
	}
}

// botocoreModelPath asks the local Python for the botocore installation.
func botocoreModelPath() (string, error) {
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		return "", fmt.Errorf("locating botocore: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), modelSubdir), nil
}

func readRaw(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	}
	return io.ReadAll(r)
}

func readModel(path string) (*model, error) {
	raw, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return &m, nil
}

// memberOrder recovers the order in which each structure's members appear in
// the model file, which Go's map decoding loses. Clients print members in
// this order, and so do we.
func memberOrder(path string) (map[string][]string, error) {
	raw, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Shapes map[string]json.RawMessage `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	order := make(map[string][]string)
	for name, body := range doc.Shapes {
		var s struct {
			Members json.RawMessage `json:"members"`
		}
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, err
		}
		if len(s.Members) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(s.Members))
		if _, err := dec.Token(); err != nil { // {
			return nil, err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			order[name] = append(order[name], tok.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

type generator struct {
	m     *model
	order map[string][]string
}

type file struct {
	pkg, name string
	src       []byte
}

// generate renders the generated files: the model's types and service
// interface into package openpca, its constraint tables and operation
// dispatch into package awsjson.
func generate(m *model, order map[string][]string) ([]file, error) {
	g := &generator{m: m, order: order}
	files := []struct {
		pkg, name string
		fn        func(*bytes.Buffer) error
	}{
		{"openpca", "types_gen.go", g.types},
		{"openpca", "service_gen.go", g.service},
		{"awsjson", "shapes_gen.go", g.shapes},
		{"awsjson", "operations_gen.go", g.operations},
	}
	var out []file
	for _, f := range files {
		var b bytes.Buffer
		b.WriteString("// Code generated by internal/apigen from the botocore acm-pca " + m.Metadata.APIVersion + " model. DO NOT EDIT.\n\npackage " + f.pkg + "\n\n")
		if err := f.fn(&b); err != nil {
			return nil, err
		}
		src, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("formatting %s: %w\n%s", f.name, err, b.String())
		}
		out = append(out, file{f.pkg, f.name, src})
	}
	return out, nil
}

func (g *generator) sortedShapes() []string {
	names := make([]string, 0, len(g.m.Shapes))
	for n := range g.m.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *generator) sortedOps() []string {
	names := make([]string, 0, len(g.m.Operations))
	for n := range g.m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *generator) isEnum(name string) bool {
	s := g.m.Shapes[name]
	return s.Type == "string" && len(s.Enum) > 0
}

// goType is the Go type of a member referring to shape name.
func (g *generator) goType(r ref) string {
	s := g.m.Shapes[r.Shape]
	switch s.Type {
	case "string":
		if g.isEnum(r.Shape) {
			return r.Shape
		}
		return "string"
	case "boolean":
		if r.Box || s.Box {
			return "*bool"
		}
		return "bool"
	case "integer":
		return "int32"
	case "long":
		return "int64"
	case "blob":
		return "[]byte"
	case "timestamp":
		return "*Timestamp"
	case "structure":
		return "*" + r.Shape
	case "list":
		elem := g.goType(*s.Member)
		if strings.HasPrefix(elem, "*") && g.m.Shapes[s.Member.Shape].Type == "structure" {
			elem = elem[1:]
		}
		return "[]" + elem
	}
	panic("apigen: unsupported shape type " + s.Type + " of " + r.Shape)
}

func (g *generator) types(b *bytes.Buffer) error {
	b.WriteString("// APIVersion is the model's API version.\nconst APIVersion = \"" + g.m.Metadata.APIVersion + "\"\n\n")
	b.WriteString("// TargetPrefix prefixes every operation name in the X-Amz-Target header.\nconst TargetPrefix = \"" + g.m.Metadata.TargetPrefix + "\"\n\n")
	b.WriteString("// SigningName is the service name in SigV4 credential scopes.\nconst SigningName = \"" + g.m.Metadata.SigningName + "\"\n\n")
	outputs := map[string]bool{}
	for _, op := range g.m.Operations {
		if op.Output != nil {
			outputs[op.Output.Shape] = true
		}
	}
	for _, name := range g.sortedShapes() {
		s := g.m.Shapes[name]
		switch {
		case g.isEnum(name):
			fmt.Fprintf(b, "// %s is an enumeration of the model.\ntype %s string\n\n", name, name)
			b.WriteString("const (\n")
			for _, v := range s.Enum {
				fmt.Fprintf(b, "\t%s %s = %q\n", name+constSuffix(v), name, v)
			}
			b.WriteString(")\n\n")
			fmt.Fprintf(b, "// Values lists every %s the model allows.\nfunc (%s) Values() []%s {\n\treturn []%s{", name, name, name, name)
			for i, v := range s.Enum {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(name + constSuffix(v))
			}
			b.WriteString("}\n}\n\n")
		case s.Type == "structure" && !s.Exception:
			fmt.Fprintf(b, "// %s is a structure of the model.\ntype %s struct {\n", name, name)
			for _, mn := range g.order[name] {
				// An operation's output lists its list members even when
				// they are empty, as AWS does.
				tag := mn + ",omitempty"
				if outputs[name] && g.m.Shapes[s.Members[mn].Shape].Type == "list" {
					tag = mn
				}
				fmt.Fprintf(b, "\t%s %s `json:\"%s\"`\n", mn, g.goType(s.Members[mn]), tag)
			}
			b.WriteString("}\n\n")
		}
	}
	return nil
}

// constSuffix turns an enum value into the tail of a Go identifier, one
// title-cased word per underscore-separated part: "PENDING_CERTIFICATE"
// becomes "PendingCertificate", "EC_prime256v1" "EcPrime256v1" and
// "IssueCertificate" stays.
func constSuffix(v string) string {
	var out strings.Builder
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if part == strings.ToUpper(part) {
			part = strings.ToLower(part)
		}
		out.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return out.String()
}

func shapeVar(name string) string { return "shape" + name }

var kinds = map[string]string{
	"string": "kindString", "boolean": "kindBoolean", "integer": "kindInteger", "long": "kindLong",
	"blob": "kindBlob", "timestamp": "kindTimestamp", "structure": "kindStructure", "list": "kindList",
}

// inputShapes lists, sorted, the shapes reachable from operation inputs:
// the only ones a request is checked against.
func (g *generator) inputShapes() []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		s := g.m.Shapes[name]
		if s.Member != nil {
			visit(s.Member.Shape)
		}
		for _, m := range s.Members {
			visit(m.Shape)
		}
	}
	for _, op := range g.m.Operations {
		visit(op.Input.Shape)
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *generator) shapes(b *bytes.Buffer) error {
	b.WriteString("import \"regexp\"\n\n")
	for _, name := range g.inputShapes() {
		s := g.m.Shapes[name]
		kind, ok := kinds[s.Type]
		if !ok {
			return fmt.Errorf("shape %s: unsupported type %q", name, s.Type)
		}
		fmt.Fprintf(b, "var %s = &shape{name: %q, kind: %s", shapeVar(name), name, kind)
		if s.Min != nil {
			fmt.Fprintf(b, ", min: ptr(int64(%d))", *s.Min)
		}
		if s.Max != nil {
			fmt.Fprintf(b, ", max: ptr(int64(%d))", *s.Max)
		}
		if s.Pattern != "" {
			fmt.Fprintf(b, ", pattern: %q, re: regexp.MustCompile(%q)", s.Pattern, goRegexp(s.Pattern))
		}
		if len(s.Enum) > 0 {
			fmt.Fprintf(b, ", enum: %#v", s.Enum)
		}
		if s.Member != nil {
			fmt.Fprintf(b, ", member: %s", shapeVar(s.Member.Shape))
		}
		if s.Type == "structure" {
			required := map[string]bool{}
			for _, r := range s.Required {
				required[r] = true
			}
			b.WriteString(", members: []member{")
			for _, mn := range g.order[name] {
				fmt.Fprintf(b, "{name: %q, shape: %s", mn, shapeVar(s.Members[mn].Shape))
				if required[mn] {
					b.WriteString(", required: true")
				}
				b.WriteString("}, ")
			}
			b.WriteString("}")
		}
		b.WriteString("}\n")
	}
	return nil
}

// goRegexp translates a model pattern (Java syntax, matched against the
// whole value) into an anchored RE2 expression.
func goRegexp(p string) string {
	var out strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+6 <= len(p) && p[i+1] == 'u' {
			out.WriteString(`\x{` + p[i+2:i+6] + `}`)
			i += 5
			continue
		}
		if p[i] == '\\' && i+1 < len(p) {
			out.WriteByte(p[i])
			out.WriteByte(p[i+1])
			i++
			continue
		}
		out.WriteByte(p[i])
	}
	return `^(?:` + out.String() + `)$`
}

func (g *generator) service(b *bytes.Buffer) error {
	b.WriteString("import \"context\"\n\n")
	ops := g.sortedOps()
	b.WriteString("// PrivateCA is the service: one method per operation of the model.\ntype PrivateCA interface {\n")
	for _, name := range ops {
		fmt.Fprintf(b, "\t%s\n", g.signature(name))
	}
	b.WriteString("}\n\n")

	b.WriteString("// Unimplemented answers every operation with a NotImplemented error.\n// Embed it to serve a subset of the operations.\ntype Unimplemented struct{}\n\n")
	for _, name := range ops {
		ret := fmt.Sprintf("return notImplemented(%q)", name)
		if g.m.Operations[name].Output != nil {
			ret = fmt.Sprintf("return nil, notImplemented(%q)", name)
		}
		sig := strings.Replace(g.signature(name), "(ctx context.Context, in ", "(context.Context, ", 1)
		fmt.Fprintf(b, "// %s is not implemented.\nfunc (Unimplemented) %s { %s }\n\n", name, sig, ret)
	}
	return nil
}

func (g *generator) operations(b *bytes.Buffer) error {
	b.WriteString("import (\n\"context\"\n\n\"github.com/openpca/openpca\"\n)\n\n")
	ops := g.sortedOps()

	b.WriteString("// operations holds every operation of the model by name.\nvar operations = map[string]*operation{\n")
	for _, name := range ops {
		op := g.m.Operations[name]
		fmt.Fprintf(b, "\t%q: {name: %q, input: %s", name, name, shapeVar(op.Input.Shape))
		var errs []string
		for _, e := range op.Errors {
			errs = append(errs, e.Shape)
		}
		fmt.Fprintf(b, ", errors: %#v", errs)
		b.WriteString(", invoke: func(ctx context.Context, svc openpca.PrivateCA, decode func(any) error) (any, error) {\n")
		fmt.Fprintf(b, "\t\tin := new(openpca.%s)\n\t\tif err := decode(in); err != nil {\n\t\t\treturn nil, err\n\t\t}\n", op.Input.Shape)
		if op.Output != nil {
			fmt.Fprintf(b, "\t\tout, err := svc.%s(ctx, in)\n\t\tif err != nil || out == nil {\n\t\t\treturn nil, err\n\t\t}\n\t\treturn out, nil\n", name)
		} else {
			fmt.Fprintf(b, "\t\treturn nil, svc.%s(ctx, in)\n", name)
		}
		b.WriteString("\t}},\n")
	}
	b.WriteString("}\n")
	return nil
}

// signature renders the Go method signature of an operation.
func (g *generator) signature(name string) string {
	op := g.m.Operations[name]
	if op.Input == nil {
		panic("apigen: operation without input: " + name)
	}
	if op.Output == nil {
		return fmt.Sprintf("%s(ctx context.Context, in *%s) error", name, op.Input.Shape)
	}
	return fmt.Sprintf("%s(ctx context.Context, in *%s) (*%s, error)", name, op.Input.Shape, op.Output.Shape)
}
