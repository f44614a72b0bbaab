//go:build cgo

package pkcs11

// OpenSession lets the tests open a session of their own, to change the
// token's objects in ways crypto11 does not offer.
var OpenSession = openSession
