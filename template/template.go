// Package template holds AWS Private CA's certificate templates and builds
// the certificate an issuance asks for: what the template fixes, what the
// API passthrough adds, and what the CSR carries, in that order of
// precedence.
package template

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"

	"github.com/openpca/openpca"
)

// Variety says which sources besides the template a template draws on.
type Variety int

const (
	Base Variety = iota
	CSRPassthrough
	APIPassthrough
	APICSRPassthrough
)

var suffixes = map[Variety]string{Base: "", CSRPassthrough: "_CSRPassthrough", APIPassthrough: "_APIPassthrough", APICSRPassthrough: "_APICSRPassthrough"}

// Template is one certificate template.
type Template struct {
	Name    string // such as EndEntityCertificate_APIPassthrough
	ARN     string
	Variety Variety
	// CA and PathLen are the basic constraints, critical if BCCritical;
	// PathLen -1 sets no path length.
	CA         bool
	PathLen    int
	BCCritical bool
	// Root marks the templates of a root CA's own self-signed certificate.
	Root bool
	// Blank templates fix only the basic constraints: key usage and
	// extended key usage come from the passthrough. The others fix key
	// usage, and extended key usage too (CA templates fix it as absent).
	Blank       bool
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []asn1.ObjectIdentifier
	EKUCritical bool
}

// UsesAPI reports whether the template takes the ApiPassthrough values.
func (t *Template) UsesAPI() bool {
	return t.Variety == APIPassthrough || t.Variety == APICSRPassthrough
}

// UsesCSR reports whether the template copies the CSR's extensions.
func (t *Template) UsesCSR() bool {
	return t.Variety == CSRPassthrough || t.Variety == APICSRPassthrough
}

// DefaultARN is the template of an IssueCertificate request that names none.
const DefaultARN = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"

// Extended key usages (RFC 5280 and others) by the API's names.
var (
	ekuServerAuth  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	ekuClientAuth  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	ekuCodeSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}
	ekuOCSPSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}
)

const (
	endEntityUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	signingUsage   = x509.KeyUsageDigitalSignature
	caUsage        = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign
)

// families lists each template family with the varieties AWS documents of
// it, as the AWS Private CA user guide defines them.
var families = []struct {
	t         Template
	varieties []Variety
}{
	{Template{Name: "EndEntityCertificate", PathLen: -1, KeyUsage: endEntityUsage, ExtKeyUsage: []asn1.ObjectIdentifier{ekuServerAuth, ekuClientAuth}}, all},
	{Template{Name: "EndEntityClientAuthCertificate", PathLen: -1, KeyUsage: endEntityUsage, ExtKeyUsage: []asn1.ObjectIdentifier{ekuClientAuth}}, all},
	{Template{Name: "EndEntityServerAuthCertificate", PathLen: -1, KeyUsage: endEntityUsage, ExtKeyUsage: []asn1.ObjectIdentifier{ekuServerAuth}}, all},
	{Template{Name: "CodeSigningCertificate", PathLen: -1, KeyUsage: signingUsage, ExtKeyUsage: []asn1.ObjectIdentifier{ekuCodeSigning}, EKUCritical: true}, all},
	{Template{Name: "OCSPSigningCertificate", PathLen: -1, KeyUsage: signingUsage, ExtKeyUsage: []asn1.ObjectIdentifier{ekuOCSPSigning}, EKUCritical: true}, all},
	{Template{Name: "BlankEndEntityCertificate", PathLen: -1, Blank: true}, passthrough},
	{Template{Name: "BlankEndEntityCertificate_CriticalBasicConstraints", PathLen: -1, BCCritical: true, Blank: true}, passthrough},
	{Template{Name: "RootCACertificate", CA: true, PathLen: -1, BCCritical: true, Root: true, KeyUsage: caUsage}, []Variety{Base, APIPassthrough}},
	{Template{Name: "BlankRootCACertificate", CA: true, PathLen: -1, BCCritical: true, Root: true, Blank: true}, []Variety{APIPassthrough}},
}

var (
	all         = []Variety{Base, CSRPassthrough, APIPassthrough, APICSRPassthrough}
	passthrough = []Variety{CSRPassthrough, APIPassthrough, APICSRPassthrough}
)

// byARN holds every template by its ARN. It is built once from the tables
// above and never changes.
var byARN = func() map[string]*Template {
	m := map[string]*Template{}
	add := func(t Template, v Variety) {
		t.Variety = v
		t.Name += suffixes[v]
		t.ARN = "arn:aws:acm-pca:::template/" + t.Name + "/V1"
		m[t.ARN] = &t
	}
	for _, f := range families {
		for _, v := range f.varieties {
			add(f.t, v)
		}
	}
	for n := 0; n <= 3; n++ {
		for _, v := range all {
			add(Template{Name: fmt.Sprintf("SubordinateCACertificate_PathLen%d", n), CA: true, PathLen: n, BCCritical: true, KeyUsage: caUsage}, v)
		}
		for _, v := range passthrough {
			add(Template{Name: fmt.Sprintf("BlankSubordinateCACertificate_PathLen%d", n), CA: true, PathLen: n, BCCritical: true, Blank: true}, v)
		}
		add(Template{Name: fmt.Sprintf("BlankRootCACertificate_PathLen%d", n), CA: true, PathLen: n, BCCritical: true, Root: true, Blank: true}, APIPassthrough)
	}
	return m
}()

// Lookup returns the template with the given ARN, in any partition: the
// ARN field and ARNs say arn:aws:acm-pca:::template/..., and the same
// template in aws-us-gov is arn:aws-us-gov:acm-pca:::template/...
func Lookup(arn string) (*Template, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:")
	partition, rest, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || !openpca.IsPartition(partition) {
		return nil, false
	}
	t, ok := byARN["arn:aws:"+rest]
	return t, ok
}

// InPartition returns the ARN of the template arn names (in partition aws)
// in partition.
func InPartition(arn, partition string) string {
	return "arn:" + partition + strings.TrimPrefix(arn, "arn:aws")
}

// ARNs lists the ARNs of every template, sorted.
func ARNs() []string {
	arns := make([]string, 0, len(byARN))
	for a := range byARN {
		arns = append(arns, a)
	}
	slices.Sort(arns)
	return arns
}
