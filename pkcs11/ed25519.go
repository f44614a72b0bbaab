//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/ed25519"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
)

// Ed25519 mechanisms and key type of PKCS#11 3.0, which crypto11 does not
// speak: the audit log's key is an Ed25519 key (the signed-note format
// takes no other), so the store reaches it through miekg/pkcs11 directly,
// beside crypto11, on the same token.
const (
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
	ckkECEdwards           = 0x40
)

// oidEd25519 names the curve of an Ed25519 key (RFC 8410).
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// Ed25519 returns the token's Ed25519 key labelled label as a signer,
// making it first (not extractable, sensitive) if create is set and there
// is none. It signs messages whole, as Ed25519 does.
func (s *Store) Ed25519(label string, create bool) (crypto.Signer, error) {
	k := &edKey{store: s, cfg: s.cfg, label: label}
	if err := k.open(create); err != nil {
		return nil, err
	}
	return k, nil
}

// edKey is an Ed25519 key of the token, with a session of its own.
type edKey struct {
	store *Store // whose login the token may have refused
	cfg   Config
	label string

	mu      sync.Mutex
	ctx     *p11.Ctx
	session p11.SessionHandle
	priv    p11.ObjectHandle
	pub     ed25519.PublicKey
	// loose names what a holder of the PIN may do with the key, found in
	// the token, beyond signing (Loose).
	loose []string
	// under is the store's login the session was opened under. Once the
	// store logs in again, the module may have been finalized and started
	// anew, and the session's and key's handles may name others' objects:
	// the session is used only under the store's read lock, while the
	// store's login is still under.
	under *crypto11.Context
}

// errSessionGone says the store logged in again since the key's session
// was opened.
var errSessionGone = errors.New("pkcs11: the token was logged in to again since the audit key's session was opened")

// live runs f on the key's session, under the store's read lock, if the
// store's login is still the one it was opened under.
func (k *edKey) live(f func() error) error {
	k.store.mu.RLock()
	defer k.store.mu.RUnlock()
	if k.store.ctx == nil || k.store.ctx != k.under {
		return errSessionGone
	}
	return f()
}

// open opens a session on the token, logs in, and finds (or makes) the
// key.
//
// The module is initialized by the store's crypto11 login alone, and the
// session opened while that login holds it: crypto11 initializes the
// module when it has no context of it, and cannot if another initialized
// it (CKR_CRYPTOKI_ALREADY_INITIALIZED). A session of this key that
// initialized the module itself, while the token was away and crypto11
// had let go of it, kept every login after it from succeeding, and both
// keys from signing until the server restarted.
func (k *edKey) open(create bool) error {
	if _, err := k.store.relogin(nil); err != nil {
		return err
	}
	k.store.mu.RLock()
	defer k.store.mu.RUnlock()
	if k.store.ctx == nil { // a login again failed meanwhile
		return errors.New("the token cannot be reached")
	}
	if k.ctx == nil {
		if k.ctx = p11.New(k.cfg.Module); k.ctx == nil {
			return fmt.Errorf("pkcs11: cannot load %s", k.cfg.Module)
		}
	}
	// A session opened under this login before (the key was missing, say)
	// is closed, not left open on the token at each try.
	if k.session != 0 && k.under == k.store.ctx {
		k.ctx.CloseSession(k.session)
	}
	k.session = 0
	k.under = k.store.ctx
	var err error
	if k.session, err = openSession(k.ctx, k.cfg); err != nil {
		return err
	}
	pub, priv, err := k.find()
	made := false
	if err == nil && priv == 0 && create {
		pub, priv, err = k.generate()
		made = true
	}
	if err != nil {
		return err
	}
	if priv == 0 {
		return fmt.Errorf("pkcs11: the token has no Ed25519 key %q", k.label)
	}
	k.priv = priv
	if !made {
		k.loose = k.looseAttributes()
	}
	if k.pub, err = k.publicKey(pub); err != nil {
		return err
	}
	// The private key must sign what the public key checks: keys under
	// the label that are not one pair would sign checkpoints that no one
	// can verify. The message has no newline, so it is no signed note.
	proof := []byte("openpca: the audit key proves itself")
	sig, err := k.sign(proof)
	if err != nil {
		return err
	}
	if !ed25519.Verify(k.pub, proof, sig) {
		return fmt.Errorf("pkcs11: the token's Ed25519 private key %q is not its public key's pair; keep the server's pair alone under the label", k.label)
	}
	return nil
}

func is(err error, code p11.Error) bool {
	var pe p11.Error
	return errors.As(err, &pe) && pe == code
}

// openSession opens a logged-in session of ctx, through miekg/pkcs11, on
// the token cfg names. crypto11 may have initialized the library already,
// or logged in: both are fine.
func openSession(ctx *p11.Ctx, cfg Config) (p11.SessionHandle, error) {
	session, err := publicSession(ctx, cfg)
	if err != nil {
		return 0, err
	}
	if err := ctx.Login(session, p11.CKU_USER, cfg.PIN); err != nil && !is(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
		ctx.CloseSession(session)
		return 0, fmt.Errorf("pkcs11: logging in: %w", err)
	}
	return session, nil
}

// publicSession opens a session of ctx on the token cfg names, logged in
// only if the process is already (a login is the application's, not a
// session's).
func publicSession(ctx *p11.Ctx, cfg Config) (p11.SessionHandle, error) {
	if err := ctx.Initialize(); err != nil && !is(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return 0, fmt.Errorf("pkcs11: %w", err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: %w", err)
	}
	for _, slot := range slots {
		if info, err := ctx.GetTokenInfo(slot); err != nil || info.Label != cfg.TokenLabel {
			continue
		}
		session, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return 0, fmt.Errorf("pkcs11: %w", err)
		}
		return session, nil
	}
	return 0, fmt.Errorf("%w %q", errNoToken, cfg.TokenLabel)
}

// errNoToken says the module lists no token of the label.
var errNoToken = errors.New("pkcs11: no token is labelled")

// tokenAway reports whether err says the token cannot be seen: the module
// lists none of its label, or says it went.
func tokenAway(err error) bool {
	return errors.Is(err, errNoToken) || is(err, p11.CKR_TOKEN_NOT_PRESENT) || is(err, p11.CKR_DEVICE_REMOVED) || is(err, p11.CKR_SLOT_ID_INVALID)
}

// privateKeys counts the token's private keys under id, whether or not a
// public key goes with them: crypto11 finds only those that have one.
func (s *Store) privateKeys(id []byte) (int, error) {
	ctx := p11.New(s.cfg.Module)
	if ctx == nil {
		return 0, fmt.Errorf("pkcs11: cannot load %s", s.cfg.Module)
	}
	// Destroy frees the context and its hold on the library; crypto11's
	// own keeps the library loaded and initialized, so none finalizes it.
	defer ctx.Destroy()
	session, err := openSession(ctx, s.cfg)
	if err != nil {
		return 0, err
	}
	defer ctx.CloseSession(session)
	template := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_ID, id)}
	if err := ctx.FindObjectsInit(session, template); err != nil {
		return 0, fmt.Errorf("pkcs11: %w", err)
	}
	defer ctx.FindObjectsFinal(session)
	found, _, err := ctx.FindObjects(session, 16)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: %w", err)
	}
	return len(found), nil
}

// find returns the key's objects, 0 for none.
func (k *edKey) find() (pub, priv p11.ObjectHandle, err error) {
	for _, class := range []uint{p11.CKO_PUBLIC_KEY, p11.CKO_PRIVATE_KEY} {
		template := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards),
			p11.NewAttribute(p11.CKA_LABEL, k.label)}
		if err := k.ctx.FindObjectsInit(k.session, template); err != nil {
			return 0, 0, fmt.Errorf("pkcs11: %w", err)
		}
		found, _, err := k.ctx.FindObjects(k.session, 2)
		k.ctx.FindObjectsFinal(k.session)
		if err != nil {
			return 0, 0, fmt.Errorf("pkcs11: %w", err)
		}
		// Which of two the token lists first is the token's choice, not
		// the server's.
		if len(found) > 1 {
			kind := map[uint]string{p11.CKO_PUBLIC_KEY: "public", p11.CKO_PRIVATE_KEY: "private"}[class]
			return 0, 0, fmt.Errorf("pkcs11: the token has more than one Ed25519 %s key %q; keep the server's pair alone under the label", kind, k.label)
		}
		if len(found) == 1 {
			if class == p11.CKO_PUBLIC_KEY {
				pub = found[0]
			} else {
				priv = found[0]
			}
		}
	}
	return pub, priv, nil
}

// Loose names the attributes of the key, if it was found in the token
// rather than made, that let a holder of the token's PIN do more with it
// than sign ("extractable", "not sensitive", "modifiable", "derive",
// "decrypt", "unwrap"): a key made before the store locked the last four
// (as generate does) may be given other uses or copied under another
// label; one the store did not make may be read out of the token.
func (k *edKey) Loose() []string { return k.loose }

// looseAttributes reads what Loose reports of the private key. It tells;
// it refuses nothing, so an attribute the token will not read (one it
// holds not for this kind of key, say) is left out rather than keep the
// audit key from signing.
func (k *edKey) looseAttributes() []string {
	names := []struct {
		attr  uint
		loose bool // the value that allows more
		name  string
	}{
		{p11.CKA_EXTRACTABLE, true, "extractable"}, {p11.CKA_SENSITIVE, false, "not sensitive"},
		{p11.CKA_MODIFIABLE, true, "modifiable"}, {p11.CKA_DERIVE, true, "derive"}, {p11.CKA_DECRYPT, true, "decrypt"}, {p11.CKA_UNWRAP, true, "unwrap"},
	}
	var loose []string
	for _, n := range names {
		// One at a time: a token refuses a template whole for one it
		// will not read.
		attrs, err := k.ctx.GetAttributeValue(k.session, k.priv, []*p11.Attribute{p11.NewAttribute(n.attr, nil)})
		if err == nil && len(attrs) == 1 && len(attrs[0].Value) == 1 && (attrs[0].Value[0] != 0) == n.loose {
			loose = append(loose, n.name)
		}
	}
	return loose
}

func (k *edKey) generate() (pub, priv p11.ObjectHandle, err error) {
	params, _ := asn1.Marshal(oidEd25519)
	common := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_LABEL, k.label), p11.NewAttribute(p11.CKA_ID, []byte(k.label))}
	pub, priv, err = k.ctx.GenerateKeyPair(k.session, []*p11.Mechanism{p11.NewMechanism(ckmECEdwardsKeyPairGen, nil)},
		append(common, p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_PARAMS, params)),
		append(common, p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			// As CA keys are made (keyAttributes): a holder of the PIN can
			// neither give it other uses nor copy it under another id.
			p11.NewAttribute(p11.CKA_DECRYPT, false), p11.NewAttribute(p11.CKA_UNWRAP, false),
			p11.NewAttribute(p11.CKA_DERIVE, false), p11.NewAttribute(p11.CKA_MODIFIABLE, false)))
	if err != nil {
		return 0, 0, fmt.Errorf("pkcs11: making an Ed25519 key (the token must support CKM_EC_EDWARDS_KEY_PAIR_GEN): %w", err)
	}
	return pub, priv, nil
}

// publicKey reads the public key's point: an OCTET STRING of 32 bytes, or
// the 32 bytes bare, as tokens differ.
func (k *edKey) publicKey(pub p11.ObjectHandle) (ed25519.PublicKey, error) {
	attrs, err := k.ctx.GetAttributeValue(k.session, pub, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil || len(attrs) != 1 {
		return nil, fmt.Errorf("pkcs11: the Ed25519 public key: %v", err)
	}
	point := attrs[0].Value
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	if len(point) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("pkcs11: the Ed25519 public key has %d bytes", len(point))
	}
	return ed25519.PublicKey(point), nil
}

func (k *edKey) Public() crypto.PublicKey { return k.pub }

// Sign signs message (whole: opts must say so, as for ed25519) in the
// token. A session the token dropped (crypto11 logged in again, say) is
// opened again, once.
func (k *edKey) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != 0 {
		return nil, errors.New("pkcs11: an Ed25519 key signs messages, not digests")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var sig []byte
	sign := func() (err error) {
		sig, err = k.sign(message)
		return err
	}
	if k.live(sign) == nil {
		return sig, nil
	}
	// Opened again, it logs in again: not with a PIN the token refused.
	if refused := k.store.pinRefused.Load(); refused != nil {
		return nil, *refused
	}
	if err := k.open(false); err != nil {
		// A module lists the tokens there are when it starts: one back
		// since the store's login shows only to a login again, which
		// starts the module over (at most once a second). No signature
		// of a CA's key may have failed to do it. Only then: a login
		// again closes the CA keys' sessions too, and a key missing from
		// a token that is there would have it done each second.
		if !tokenAway(err) {
			return nil, k.store.checkPIN(err)
		}
		if _, lerr := k.store.relogin(k.under); lerr != nil {
			return nil, k.store.checkPIN(err)
		}
		if err := k.open(false); err != nil {
			return nil, k.store.checkPIN(err)
		}
	}
	if err := k.live(sign); err != nil {
		return nil, err
	}
	return sig, nil
}

func (k *edKey) sign(message []byte) ([]byte, error) {
	if err := k.ctx.SignInit(k.session, []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}, k.priv); err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	sig, err := k.ctx.Sign(k.session, message)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	return sig, nil
}

// Extractable reports the CKA_EXTRACTABLE and CKA_SENSITIVE attributes of
// the key, as the token keeps them.
func (k *edKey) Extractable() (extractable, sensitive bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var attrs []*p11.Attribute
	err = k.live(func() (err error) {
		attrs, err = k.ctx.GetAttributeValue(k.session, k.priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_SENSITIVE, nil)})
		return err
	})
	if err != nil || len(attrs) != 2 {
		return false, false, fmt.Errorf("pkcs11: %v", err)
	}
	flag := func(a *p11.Attribute) bool { return len(a.Value) == 1 && a.Value[0] != 0 }
	return flag(attrs[0]), flag(attrs[1]), nil
}
