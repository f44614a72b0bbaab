//go:build cgo

// Package pkcs11 keeps CA keys in a PKCS#11 token (an HSM, a smart card,
// SoftHSM2), through crypto11: each key is made inside the token, never
// leaves it (CKA_EXTRACTABLE false, CKA_SENSITIVE true), and signs there.
// It needs a cgo build; without cgo, Open says so.
package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
	"github.com/thales-e-security/pool"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// Config says which token to use.
type Config struct {
	// Module is the path of the token's PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel names the token.
	TokenLabel string
	// PIN is the user PIN; the command reads it from the environment or a
	// file, never from a flag that would show in ps.
	PIN string
	// MaxSessions bounds the sessions signing at once; 0 means 64.
	MaxSessions int
}

// Store keeps CA keys in one token. It implements openpca.KeyStore.
type Store struct {
	cfg Config

	mu     sync.RWMutex
	ctx    *crypto11.Context // nil while the token cannot be reached
	opened time.Time         // of the last login attempt
	// pinRefused is the error of a login again that the token refused
	// for its PIN (changed, locked, expired since the server started).
	// Tried again once a second, a wrong PIN would soon lock the user's
	// PIN of a token that counts failures, which takes its security
	// officer to undo: the store does not try again until the server
	// restarts, with the PIN that is right.
	pinRefused atomic.Pointer[error]

	// afterGenerate, set by tests alone, fails GenerateKey once the token
	// has made a key pair under id, as a token whose answer was lost.
	afterGenerate func(id []byte) error
}

var _ openpca.KeyStore = (*Store)(nil)

// Name of the store in CA records.
const Name = "pkcs11"

// Open logs in to the token.
func Open(cfg Config) (*Store, error) {
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 64
	}
	s := &Store{cfg: cfg}
	c, err := s.login()
	if err != nil {
		return nil, err
	}
	s.ctx, s.opened = c, time.Now()
	return s, nil
}

func (s *Store) login() (*crypto11.Context, error) {
	c, err := crypto11.Configure(&crypto11.Config{Path: s.cfg.Module, TokenLabel: s.cfg.TokenLabel, Pin: s.cfg.PIN,
		MaxSessions: s.cfg.MaxSessions, PoolWaitTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: opening token %q with %s: %w", s.cfg.TokenLabel, s.cfg.Module, err)
	}
	return c, nil
}

// context returns the token's context, nil if it cannot be reached.
func (s *Store) context() *crypto11.Context {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ctx
}

// relogin logs in to the token again, after failed (the context that
// failed, or nil) did: a token taken away and brought back shows its
// objects only to a new login. It tries at most once a second, and
// returns the context to use.
func (s *Store) relogin(failed *crypto11.Context) (*crypto11.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != failed && s.ctx != nil {
		return s.ctx, nil // another request logged in again meanwhile
	}
	if refused := s.pinRefused.Load(); refused != nil {
		return nil, *refused
	}
	if time.Since(s.opened) < time.Second {
		return nil, errors.New("the token cannot be reached")
	}
	s.opened = time.Now()
	if s.ctx != nil {
		s.ctx.Close() // waits for the operations in flight
		s.ctx = nil
	}
	c, err := s.loginAgain()
	if err != nil {
		return nil, err
	}
	s.ctx = c
	return c, nil
}

// loginAgain logs in to the token anew, unless it refused the PIN: then,
// or if it refuses it now, the store logs in no more (checkPIN).
func (s *Store) loginAgain() (*crypto11.Context, error) {
	if refused := s.pinRefused.Load(); refused != nil {
		return nil, *refused
	}
	c, err := s.login()
	if err != nil {
		return nil, s.checkPIN(err)
	}
	return c, nil
}

// checkPIN returns err, a login's error; if the token refused its PIN,
// the store logs in no more (pinRefused), and says so.
func (s *Store) checkPIN(err error) error {
	for _, code := range []p11.Error{p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE, p11.CKR_PIN_EXPIRED, p11.CKR_PIN_LOCKED} {
		if is(err, code) {
			refused := fmt.Errorf("%w; the token refused the PIN, and the server will not log in to it again until it restarts with the right one, lest a token that counts failed logins lock the PIN", err)
			s.pinRefused.CompareAndSwap(nil, &refused)
			return *s.pinRefused.Load()
		}
	}
	return err
}

// Close logs out and closes the token's sessions.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return nil
	}
	err := s.ctx.Close()
	s.ctx = nil
	return err
}

// Name implements openpca.KeyStore.
func (*Store) Name() string { return Name }

// Hardware implements openpca.KeyStore.
func (*Store) Hardware() bool { return true }

// curves and rsaBits are the key algorithms the store makes keys of.
var (
	curves = map[openpca.KeyAlgorithm]elliptic.Curve{
		openpca.KeyAlgorithmEcPrime256v1: elliptic.P256(),
		openpca.KeyAlgorithmEcSecp384r1:  elliptic.P384(),
		openpca.KeyAlgorithmEcSecp521r1:  elliptic.P521(),
	}
	rsaBits = map[openpca.KeyAlgorithm]int{
		openpca.KeyAlgorithmRsa2048: 2048,
		openpca.KeyAlgorithmRsa3072: 3072,
		openpca.KeyAlgorithmRsa4096: 4096,
	}
)

// KeyHandle implements openpca.KeyNamer: a key's handle is its CKA_ID,
// the CA's id.
func (*Store) KeyHandle(ca *openpca.CA) []byte { return []byte(ca.ID) }

// GenerateKey implements openpca.KeyStore. The key's CKA_ID is its handle
// (KeyHandle), and its label names the CA.
func (s *Store) GenerateKey(_ context.Context, ca *openpca.CA, alg openpca.KeyAlgorithm) ([]byte, crypto.Signer, error) {
	id, label := s.KeyHandle(ca), []byte("openpca "+ca.ARN)
	curve, isEC := curves[alg]
	bits, isRSA := rsaBits[alg]
	if !isEC && !isRSA {
		return nil, nil, openpca.Errorf(openpca.CodeInvalidArgs, "KeyAlgorithm %s: this server's PKCS#11 key store makes EC P-256, P-384 and P-521 and RSA 2048, 3072 and 4096 keys only.", alg)
	}
	c := s.context()
	if c == nil {
		var err error
		if c, err = s.relogin(nil); err != nil {
			return nil, nil, unavailable(ca, err)
		}
	}
	public, err := crypto11.NewAttributeSetWithIDAndLabel(id, label)
	if err != nil {
		return nil, nil, err
	}
	private, err := keyAttributes(id, label)
	if err != nil {
		return nil, nil, err
	}
	generate := func(c *crypto11.Context) (crypto11.Signer, error) {
		if isEC {
			return c.GenerateECDSAKeyPairWithAttributes(public, private, curve)
		}
		return c.GenerateRSAKeyPairWithAttributes(public, private, bits)
	}
	key, err := generate(c)
	if err == nil && s.afterGenerate != nil {
		err = s.afterGenerate(id)
	}
	if s.dead(c, err) {
		// A token taken away and back has closed the context's sessions,
		// and its login with them: log in again, as a signature does,
		// and try once more.
		if again, lerr := s.relogin(c); lerr == nil {
			c = again
			key, err = s.madeOrGenerate(c, ca, id, generate)
		}
	}
	if err != nil {
		return nil, nil, unavailable(ca, err)
	}
	return id, &signer{store: s, ca: ca, key: key, ctx: c}, nil
}

// madeOrGenerate makes ca's key pair under id on c, a login again after a
// try that failed, unless that try made it: a token can fail after
// C_GenerateKeyPair made the pair (a network HSM whose answer was lost),
// and a second pair under the id would leave the CA two keys, with which
// it could never sign nor have its key destroyed (ownKey). The one pair
// under the id, proving itself, is taken as made; with several, none is,
// and the operator removes them (a purge of the key's record leaves them
// too).
func (s *Store) madeOrGenerate(c *crypto11.Context, ca *openpca.CA, id []byte, generate func(*crypto11.Context) (crypto11.Signer, error)) (crypto11.Signer, error) {
	key, err := ownKey(c, id, "")
	switch {
	case errors.Is(err, errAnotherKey):
		return nil, &openpca.Error{Code: openpca.CodeServiceUnavailable, Cause: err, Message: fmt.Sprintf("The PKCS#11 token failed while making the key of %s, "+
			"and holds several keys under its id %x since, or one that is not a pair: the CA is not made, and they are left to the operator.", ca.ARN, id)}
	case err != nil:
		return nil, err
	case key != nil:
		return key, nil
	}
	return generate(c)
}

// keyAttributes are those of a CA's private key: it signs, and does
// nothing else a holder of the PIN could use it for (crypto11 would let an
// RSA key decrypt, a raw private-key operation), and its attributes stay
// as made. (CKA_SENSITIVE and not CKA_EXTRACTABLE crypto11 sets.)
func keyAttributes(id, label []byte) (crypto11.AttributeSet, error) {
	a, err := crypto11.NewAttributeSetWithIDAndLabel(id, label)
	if err != nil {
		return nil, err
	}
	for t, v := range map[crypto11.AttributeType]bool{crypto11.CkaPrivate: true, crypto11.CkaDecrypt: false, crypto11.CkaUnwrap: false,
		crypto11.CkaDerive: false, crypto11.CkaModifiable: false} {
		if err := a.Set(t, v); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Signer implements openpca.KeyStore.
func (s *Store) Signer(_ context.Context, ca *openpca.CA) (crypto.Signer, error) {
	key, c, err := s.find(ca, nil)
	if err != nil {
		return nil, err
	}
	return &signer{store: s, ca: ca, key: key, ctx: c}, nil
}

// find finds the key pair of ca in the token, and the context it is of,
// logging in again if the token failed (or failed, the context of a
// signer that failed, did). A context other than failed is tried first:
// another CA's key that failed has logged in again already, and this one
// is found there. Only a login that failed (dead) is logged in again: that
// closes the context every CA of the token signs on, and a key that is
// not there, or another key under the CA's id, is the same on a new one.
func (s *Store) find(ca *openpca.CA, failed *crypto11.Context) (crypto11.Signer, *crypto11.Context, error) {
	// A CA's key is under its own id: a row that names another's (copied
	// or changed by hand) finds none, and signs nothing outside that key's
	// log, nor has the key destroyed.
	if !bytes.Equal(ca.KeyHandle, s.KeyHandle(ca)) {
		return nil, nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The key of %s is recorded under the id %q in the PKCS#11 token, not under the CA's own: its row was changed outside the server, and it does not sign.", ca.ARN, ca.KeyHandle)
	}
	tried := failed
	if c := s.context(); c != nil && c != failed {
		key, err := ownKey(c, ca.KeyHandle, ca.KeyID)
		if err == nil && key != nil {
			return key, c, nil
		}
		if err == nil && s.loggedIn(c) || err != nil && !s.dead(c, err) {
			return nil, nil, notThere(ca, err)
		}
		tried = c
	}
	c, err := s.relogin(tried)
	if err != nil {
		return nil, nil, unavailable(ca, err)
	}
	key, err := ownKey(c, ca.KeyHandle, ca.KeyID)
	if err != nil || key == nil {
		return nil, nil, notThere(ca, err)
	}
	return key, c, nil
}

// loggedIn reports whether the token still holds the login of c, the
// store's context: a token taken away and back, or whose sessions another
// closed, has logged the process out (PKCS#11 2.40, 5.6), and the sessions
// crypto11 opens again then find no private key, with no error. It looks
// under the store's read lock, while c is its login: a session of the
// library's opened after crypto11 let go of it would initialize the
// library, and keep crypto11 from logging in again (edKey.open).
func (s *Store) loggedIn(c *crypto11.Context) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ctx != c {
		return false
	}
	ctx := p11.New(s.cfg.Module)
	if ctx == nil {
		return false
	}
	defer ctx.Destroy() // crypto11's own context keeps the library initialized
	session, err := publicSession(ctx, s.cfg)
	if err != nil {
		// A token out of sessions, say, tells nothing of the login, which
		// a new one would not mend.
		var code p11.Error
		return errors.As(err, &code) && sameOnNewLogin(code)
	}
	defer ctx.CloseSession(session)
	info, err := ctx.GetSessionInfo(session)
	return err == nil && (info.State == p11.CKS_RO_USER_FUNCTIONS || info.State == p11.CKS_RW_USER_FUNCTIONS)
}

// notThere is the error of a key of ca not found in the token, err the
// lookup's: ServiceUnavailable, which clients retry, since a token taken
// away shows no objects either.
func notThere(ca *openpca.CA, err error) error {
	if errors.Is(err, errAnotherKey) {
		return openpca.Errorf(openpca.CodeServiceUnavailable, "The PKCS#11 token holds another key than the one %s was made with under its id, or several; the CA cannot sign until its own key is there alone.", ca.ARN)
	}
	return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("The key of %s is not in the PKCS#11 token: the token is away, or the key was deleted.", ca.ARN), Cause: err}
}

// dead reports whether err, of the token on its login c, may say that
// the login is gone, so that only a login again (at most once a second:
// relogin) can go on; a new login closes the context every CA of the
// token signs on. Of the token's own codes, only those that would be the
// same on a new login are not (sameOnNewLogin); any other may be of a
// login gone: a session closed, a device failed, or a code of the
// vendor's (YubiHSM's module answers CKR_FUNCTION_FAILED for a connection
// lost), and a store that waited for a code it knows would never log in
// again. Another key under the CA's id, and a pool of sessions all busy,
// are not. Of an error of crypto11's own (a key of a type it does not
// take, say, which anyone who may put objects in the token can leave
// under a CA's id), the token tells whether its login holds (loggedIn).
func (s *Store) dead(c *crypto11.Context, err error) bool {
	if err == nil || errors.Is(err, errAnotherKey) || errors.Is(err, pool.ErrTimeout) {
		return false
	}
	var code p11.Error
	if errors.As(err, &code) {
		return !sameOnNewLogin(code)
	}
	return !s.loggedIn(c)
}

// sameOnNewLogin reports whether a token's error code is about the key or
// what was asked of it, or about the token's own limits, and would be the
// same on a new login: an object or key handle that is no more, a
// mechanism, template, attribute or data the token refuses, a function it
// does not offer, its sessions or memory all taken, a token write
// protected.
func sameOnNewLogin(code p11.Error) bool {
	switch code {
	case p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_KEY_HANDLE_INVALID, p11.CKR_KEY_SIZE_RANGE, p11.CKR_KEY_TYPE_INCONSISTENT, p11.CKR_KEY_FUNCTION_NOT_PERMITTED,
		p11.CKR_MECHANISM_INVALID, p11.CKR_MECHANISM_PARAM_INVALID, p11.CKR_TEMPLATE_INCOMPLETE, p11.CKR_TEMPLATE_INCONSISTENT,
		p11.CKR_ATTRIBUTE_TYPE_INVALID, p11.CKR_ATTRIBUTE_VALUE_INVALID, p11.CKR_ATTRIBUTE_READ_ONLY, p11.CKR_ATTRIBUTE_SENSITIVE,
		p11.CKR_DATA_INVALID, p11.CKR_DATA_LEN_RANGE, p11.CKR_DOMAIN_PARAMS_INVALID, p11.CKR_CURVE_NOT_SUPPORTED,
		p11.CKR_FUNCTION_NOT_SUPPORTED, p11.CKR_ARGUMENTS_BAD, p11.CKR_SESSION_COUNT, p11.CKR_DEVICE_MEMORY, p11.CKR_HOST_MEMORY,
		p11.CKR_TOKEN_WRITE_PROTECTED:
		return true
	}
	return false
}

// errAnotherKey says that the token's key under a CA's id is not the key
// the CA was made with, or that it holds several.
var errAnotherKey = errors.New("pkcs11: another key under the CA's id")

// ownKey finds the key pair under handle (a CA's id) in the token, if it
// is the one the CA was made with (keyID, the CA's KeyID: the key's subject
// key identifier): a key put under the same id, in place of the CA's or
// beside it, must neither sign for the CA nor be destroyed with it.
// crypto11 pairs a private key with the first public key of its id, which
// need not be its own: the private key proves itself with a signature the
// public key checks. Of several private keys under the id, none is taken.
// An empty keyID (a CA of a version that kept none, a key recorded before
// it was made, or one being made) takes the one key there is, proven the
// same way.
func ownKey(c *crypto11.Context, handle []byte, keyID string) (crypto11.Signer, error) {
	keys, err := c.FindKeyPairs(handle, nil)
	switch {
	case err != nil || len(keys) == 0:
		return nil, err
	case len(keys) > 1:
		return nil, errAnotherKey
	}
	if id, err := pki.SubjectKeyID(keys[0].Public()); err != nil || keyID != "" && hex.EncodeToString(id) != keyID {
		return nil, errAnotherKey
	}
	if err := proves(keys[0]); err != nil {
		// A signature the token could not make is the token's error, which
		// may say its login is gone; one made that does not verify is of
		// another key.
		if _, failed := errors.AsType[p11.Error](err); failed {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errAnotherKey, err)
	}
	return keys[0], nil
}

// proves has key sign a digest and checks the signature with its public
// key.
func proves(key crypto11.Signer) error {
	digest := sha256.Sum256([]byte("openpca: the CA's key proves itself"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return pki.VerifyDigest(key.Public(), digest[:], sig, crypto.SHA256)
}

// DestroyKey implements openpca.KeyStore. A key is ErrNotFound when a
// login of this call's own finds no private key under the CA's id (another
// server destroyed it, or a try whose answer was lost), with its public
// key or without: a token away shows none to a context logged in before
// it went. Keys under the id that
// are not the CA's, or not only the CA's, are left to the operator: the
// error says so, and the purge tries again. So is a key whose label
// (GenerateKey's) names the CA by another ARN: a row moved to another
// account by hand, and deleted there, must not have the key of the CA
// it was, still in service, destroyed.
func (s *Store) DestroyKey(_ context.Context, ca *openpca.CA) error {
	key, c, err := s.find(ca, nil)
	if err == nil {
		label, err := c.GetAttribute(key, crypto11.CkaLabel)
		if err != nil {
			return err
		}
		if want := "openpca " + ca.ARN; label == nil || string(label.Value) != want {
			return fmt.Errorf("pkcs11: the token's key under the id %x is not labelled %q: it is not the key of %s, and is left to the operator", ca.KeyHandle, want, ca.ARN)
		}
		return key.Delete()
	}
	// Not with a PIN the token refused: the purge tries again every
	// minute, and would lock the PIN of a token that counts failures.
	c, lerr := s.loginAgain()
	if lerr != nil {
		return err
	}
	defer c.Close()
	keys, ferr := c.FindKeyPairs(ca.KeyHandle, nil)
	if ferr != nil || len(keys) > 0 {
		return err
	}
	// A private key whose public key was removed is not a pair to
	// crypto11, and nothing tells whether it is the CA's.
	switch n, perr := s.privateKeys(ca.KeyHandle); {
	case perr != nil:
		return fmt.Errorf("%w (and counting the token's private keys under its id: %v)", err, perr)
	case n > 0:
		return fmt.Errorf("pkcs11: the token holds a private key under the id %x of %s without its public key, which would tell whether it is the CA's: remove it by hand", ca.KeyHandle, ca.ARN)
	}
	return openpca.ErrNotFound
}

// KeyAttributes reports the boolean attributes of the private key of ca
// that say what may be done with it, by name (CKA_EXTRACTABLE as
// "extractable"), as the token keeps them.
func (s *Store) KeyAttributes(ca *openpca.CA) (map[string]bool, error) {
	key, c, err := s.find(ca, nil)
	if err != nil {
		return nil, err
	}
	names := map[crypto11.AttributeType]string{crypto11.CkaExtractable: "extractable", crypto11.CkaSensitive: "sensitive", crypto11.CkaPrivate: "private",
		crypto11.CkaSign: "sign", crypto11.CkaDecrypt: "decrypt", crypto11.CkaUnwrap: "unwrap", crypto11.CkaDerive: "derive", crypto11.CkaModifiable: "modifiable"}
	attrs, err := c.GetAttributes(key, slices.Collect(maps.Keys(names)))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for t, name := range names {
		a := attrs[t]
		out[name] = a != nil && len(a.Value) == 1 && a.Value[0] != 0
	}
	return out, nil
}

// signer signs in the token, and says what failed in AWS's terms. A token
// that failed (taken away and brought back, say) is logged in to again and
// the key found anew, once per signature.
type signer struct {
	store *Store
	ca    *openpca.CA

	mu  sync.Mutex
	key crypto11.Signer
	ctx *crypto11.Context // key's
}

func (s *signer) Public() crypto.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.Public()
}

func (s *signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	key, c := s.key, s.ctx
	s.mu.Unlock()
	sig, err := key.Sign(rand, digest, opts)
	if err == nil {
		return sig, nil
	}
	// A key that failed on a login that works (deleted, say) is looked
	// for on that login again, not on a new one (find).
	failed := c
	if !s.store.dead(c, err) {
		failed = nil
	}
	if key, c, err = s.store.find(s.ca, failed); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.key, s.ctx = key, c
	s.mu.Unlock()
	if sig, err = key.Sign(rand, digest, opts); err != nil {
		return nil, unavailable(s.ca, err)
	}
	return sig, nil
}

// unavailable is the error of a token that failed: ServiceUnavailable,
// which clients retry.
func unavailable(ca *openpca.CA, err error) error {
	return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("The PKCS#11 token that keeps the key of %s cannot sign now; retry later.", ca.ARN), Cause: err}
}
