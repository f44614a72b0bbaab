package policy

import (
	"maps"
	"slices"
)

// managed are the documents of the policies this server defines, which
// keys are given by name: they stay the server's, as AWS's managed
// policies do.
var managed = map[string]string{
	// ReadOnly reads everything and changes nothing, as the read-only
	// keys of earlier versions did: Describe*, Get*, List*, and so the
	// audit log's checkpoints and proofs.
	"ReadOnly": `{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow",` +
		`"Action":["acm-pca:Describe*","acm-pca:Get*","acm-pca:List*"],"Resource":"*"}]}`,
	// FullAccess does everything, as a key without a policy does.
	"FullAccess": `{"Version":"2012-10-17","Statement":[{"Sid":"FullAccess","Effect":"Allow","Action":"acm-pca:*","Resource":"*"}]}`,
}

// managedParsed holds the managed policies parsed, once; a parsed policy
// is never changed.
var managedParsed = func() map[string]*Policy {
	m := map[string]*Policy{}
	for name, doc := range managed {
		p, err := Parse([]byte(doc), Identity)
		if err != nil {
			panic("policy: managed policy " + name + ": " + err.Error())
		}
		m[name] = p
	}
	return m
}()

// Managed returns the managed policy name.
func Managed(name string) (*Policy, bool) {
	p, ok := managedParsed[name]
	return p, ok
}

// ManagedDocument returns the document of the managed policy name.
func ManagedDocument(name string) (string, bool) {
	doc, ok := managed[name]
	return doc, ok
}

// ManagedNames lists the managed policies, sorted.
func ManagedNames() []string { return slices.Sorted(maps.Keys(managed)) }
