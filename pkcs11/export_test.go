//go:build cgo

package pkcs11

import "github.com/ThalesGroup/crypto11"

// OpenSession lets the tests open a session of their own, to change the
// token's objects in ways crypto11 does not offer.
var OpenSession = openSession

// FailAfterGenerate has s's GenerateKey fail with f's error once the token
// has made a key pair under id, as a token whose answer was lost; f may
// change the token's objects first.
func FailAfterGenerate(s *Store, f func(id []byte) error) { s.afterGenerate = f }

// Login returns the store's login, which a login again replaces.
func Login(s *Store) *crypto11.Context { return s.context() }

// SameOnNewLogin is sameOnNewLogin, for the table of the codes that keep
// the login.
var SameOnNewLogin = sameOnNewLogin
