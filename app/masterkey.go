package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/console"
	"github.com/openpca/openpca/internal/smallfile"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/sqlstore"
)

// masterKeys are the master key a server seals with, and the previous
// ones it still opens values with, during a rotation.
type masterKeys struct {
	current  []byte
	previous [][]byte
}

func (k masterKeys) sealer() (*seal.Sealer, error) { return seal.New(k.current, k.previous...) }

// binder is the store's sqlstore.Binder, for the upgrade that binds
// access keys' secrets to their accounts: it opens a secret with
// whichever master key given opens it (an interrupted rotation's two
// among them) and seals it again with that key (seal.Sealer.Rebind),
// which the rotation, if any, then settles as it would have.
func (k masterKeys) binder(files *keyFiles) (sqlstore.Binder, error) {
	if k.current == nil && rotationLeft(files.cfg) {
		old, err := files.read(files.cfg.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		newKey, err := files.read(files.cfg.MasterKeyFile + pendingSuffix)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		k = masterKeys{current: newKey, previous: append([][]byte{old}, k.previous...)}
	}
	sealer, err := k.sealer()
	if err != nil {
		return nil, err
	}
	return func(check []byte) (sqlstore.Bind, error) {
		if _, err := sealer.Open(check, []byte(sqlstore.MasterKeyCheck)); err != nil && check != nil {
			return nil, errors.New("the master key is not the one this database was set up with, and cannot bind its access keys' secrets to their accounts: give the database's master key")
		}
		return func(accountID, keyID string, sealed []byte) ([]byte, error) {
			return sealer.Rebind(sealed, auth.UnboundAssociatedData(keyID), auth.AssociatedData(accountID, keyID))
		}, nil
	}, nil
}

// readMasterKeys reads the master keys cfg gives, before the database is
// opened (on PostgreSQL, sessions are named by the master key: keySession):
// the previous keys, and the master key, nil when a rotation on this
// SQLite data folder was interrupted (loadMasterKeys settles which key it
// is, by the database), or, with create, a new one when its file is
// missing, made but not yet written (made).
func readMasterKeys(files *keyFiles, create bool, logger *slog.Logger) (keys masterKeys, made bool, err error) {
	cfg := files.cfg
	for _, p := range cfg.PreviousMasterKeys {
		k, err := files.parse(p)
		if err != nil {
			return keys, false, fmt.Errorf("previous master key: %w", err)
		}
		keys.previous = append(keys.previous, k)
	}
	switch {
	case cfg.MasterKey != "":
		keys.current, err = seal.ParseKey(cfg.MasterKey)
	case rotationLeft(cfg):
	case create && !fileExists(cfg.MasterKeyFile):
		// Not made where another user could change it, which the next
		// start would refuse.
		if err = CheckKeyFile(cfg.MasterKeyFile, cfg.DataDir); err == nil {
			keys.current, made = make([]byte, seal.KeySize), true
			_, err = rand.Read(keys.current)
		}
	default:
		keys.current, err = files.read(cfg.MasterKeyFile)
		warnOfKeyFile(cfg, logger)
	}
	if err != nil {
		return keys, false, fmt.Errorf("master key: %w", err)
	}
	return keys, made, nil
}

// keySession names the sessions of a server or command on PostgreSQL
// that seals with keys (postgres.KeySession), unless cfg names them
// already, or keys are not known yet (readMasterKeys, on SQLite).
func keySession(cfg Config, keys masterKeys) string {
	if cfg.session != "" || keys.current == nil {
		return cfg.session
	}
	return postgres.KeySession(seal.Fingerprint(keys.current))
}

// loadMasterKeys checks keys, as readMasterKeys read them, against the
// database: it finishes a rotation that was interrupted, writes a new key
// (made) to its file, and refuses keys that do not open what the database
// holds, or a master key that a rotation retired. A server given another
// master key (a node of a cluster started without the shared key, say)
// would otherwise serve, and fail every request that needs a key.
func loadMasterKeys(ctx context.Context, files *keyFiles, store openpca.SettingStore, keys masterKeys, made bool, logger *slog.Logger) (masterKeys, error) {
	cfg := files.cfg
	switch {
	case keys.current == nil:
		return finishRotation(ctx, files, store, keys, logger)
	case made:
		// A database set up with a key (a restored one, say) needs that
		// key: a new one would be written beside it, and then refused.
		check, err := store.Setting(ctx, sqlstore.MasterKeyCheck)
		if err != nil {
			return keys, err
		}
		if check != nil {
			return keys, fmt.Errorf("master key: %s is missing, and the database was set up with a master key: give it (--master-key-file or OPENPCA_MASTER_KEY)", cfg.MasterKeyFile)
		}
		if err := files.create(cfg.MasterKeyFile, keys.current); err != nil {
			return keys, fmt.Errorf("master key: %w", err)
		}
		logger.Warn("created a new master key; back it up: without it no CA private key can be opened",
			"path", cfg.MasterKeyFile, "wrapped_by", cfg.MasterKeyKMSKey)
	}
	return keys, checkMasterKey(ctx, store, keys)
}

// keyFiles reads and writes master key files: the key in base64, or
// wrapped by KMS (kms.WrapPrefix and its ciphertext) when the
// configuration names a KMS key to wrap it with.
type keyFiles struct {
	ctx context.Context
	cfg Config
	kms *kms.Store
}

func (f *keyFiles) store() (*kms.Store, error) {
	if f.kms == nil {
		s, err := kms.Open(f.ctx, f.cfg.KMSEndpoint, f.cfg.Region)
		if err != nil {
			return nil, err
		}
		f.kms = s
	}
	return f.kms, nil
}

func (f *keyFiles) read(path string) ([]byte, error) {
	if err := CheckKeyFile(path, f.cfg.DataDir); err != nil {
		return nil, err
	}
	b, err := smallfile.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no master key at %s: start openpca serve on this data folder first, or give the master key", path)
	}
	if err != nil {
		return nil, err
	}
	key, err := f.parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// parse returns the key a key file holds, text: in base64, or wrapped by
// KMS, as a rolling rotation's old and new key files may be too.
func (f *keyFiles) parse(text string) ([]byte, error) {
	if strings.HasPrefix(text, kms.WrapPrefix) {
		s, err := f.store()
		if err != nil {
			return nil, err
		}
		return s.Unwrap(f.ctx, text)
	}
	return seal.ParseKey(text)
}

// write writes key to path, whole or not at all.
func (f *keyFiles) write(path string, key []byte) error {
	if f.cfg.MasterKeyKMSKey == "" {
		return seal.WriteKeyFile(path, key)
	}
	s, err := f.store()
	if err != nil {
		return err
	}
	wrapped, err := s.Wrap(f.ctx, f.cfg.MasterKeyKMSKey, key)
	if err != nil {
		return err
	}
	// KMS may let this caller wrap and no one unwrap (kms:Encrypt and
	// kms:Decrypt are granted apart, and a key of another account may
	// take either). A key written so, and the database sealed with it,
	// would be lost: it is written only once it unwraps.
	back, err := s.Unwrap(f.ctx, wrapped)
	if err != nil {
		return fmt.Errorf("the KMS key %s wraps the master key, and then does not unwrap it, so nothing was written: %w", f.cfg.MasterKeyKMSKey, err)
	}
	if !bytes.Equal(back, key) {
		return fmt.Errorf("the KMS key %s unwraps another key than it wrapped, so nothing was written", f.cfg.MasterKeyKMSKey)
	}
	return seal.WriteFile(path, []byte(wrapped+"\n"))
}

// create writes a new master key's file. Only a server makes one, with
// the data folder locked.
func (f *keyFiles) create(path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return f.write(path, key)
}

// pendingSuffix names the file a rotation writes the new master key to
// before the database is sealed with it.
const pendingSuffix = ".new"

// rotationLeft reports whether a rotation on this SQLite data folder was
// interrupted and left its new key's file. Only a rotation on SQLite
// writes that file: on PostgreSQL a file of that name is the operator's
// (the rolling rotation's new key may well be called so), and was taken
// for one, removed or renamed over the old key's file.
func rotationLeft(cfg Config) bool {
	return cfg.Database == "" && fileExists(cfg.MasterKeyFile+pendingSuffix)
}

// finishRotation settles a rotation interrupted between writing the new
// key's file and renaming it into place: the database is sealed with one
// of the two keys, all of it, and that one becomes the master key.
func finishRotation(ctx context.Context, files *keyFiles, store openpca.SettingStore, keys masterKeys, logger *slog.Logger) (masterKeys, error) {
	cfg := files.cfg
	pending := cfg.MasterKeyFile + pendingSuffix
	old, err := files.read(cfg.MasterKeyFile)
	if err != nil {
		return keys, fmt.Errorf("master key: %w", err)
	}
	newKey, err := files.read(pending)
	if err != nil {
		return keys, fmt.Errorf("master key: %w", err)
	}
	keys.current = old
	if checkMasterKey(ctx, store, keys) == nil { // interrupted before the database was resealed
		logger.Warn("a master key rotation was interrupted before it changed anything; the master key stays", "path", cfg.MasterKeyFile)
		return keys, os.Remove(pending)
	}
	keys.current, keys.previous = newKey, append(keys.previous, old)
	if err := checkMasterKey(ctx, store, keys); err != nil {
		return keys, err
	}
	logger.Warn("finishing a master key rotation that was interrupted after the database was resealed", "path", cfg.MasterKeyFile)
	// The rotation may have ended before it resealed the data folder's TLS
	// CA key, which the old key alone would then open.
	sealer, err := keys.sealer()
	if err == nil {
		err = resealTLSKey(cfg.DataDir, sealer)
	}
	if err != nil {
		return keys, err
	}
	if err := os.Rename(pending, cfg.MasterKeyFile); err != nil {
		return keys, err
	}
	return keys, seal.SyncDir(filepath.Dir(cfg.MasterKeyFile))
}

// CheckKeyFile refuses a master key's file outside the data folder (whose
// own files checkDataDir judges) that another user could have written, or
// can change: one of another user than this process's, root, or the data
// folder's owner (whose files root's commands trust), or that others may
// write to, or in a folder another such user could change (checkFolders).
// The master key seals every CA's key: a file another user wrote gave the
// server that user's key, taken at its first start, and known to them. A
// missing file is left to the caller (which makes one, or says so).
func CheckKeyFile(path, dataDir string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if filepath.Dir(abs) == data {
		// Its owner checkDataDir judges, not who may write to it.
		if fi, err := os.Lstat(abs); err == nil && fi.Mode().IsRegular() && writableByOthers(fi, false) {
			return fmt.Errorf("the master key's file %s can be written by users outside this process's user and groups (mode %s): they could put their own key in it; chmod 600 it", path, fi.Mode().Perm())
		}
		return nil
	}
	ours := ownersOf(data)
	if err := checkFolders(filepath.Dir(abs), "the master key's file", ours); err != nil {
		return err
	}
	for _, stat := range []func(string) (os.FileInfo, error){os.Lstat, os.Stat} {
		fi, err := stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case !ours(fi):
			return fmt.Errorf("the master key's file %s belongs to user %d, not to this process's (%d), root or the data folder's owner: that user may have written it, and knows the key", path, owner(fi), os.Geteuid())
		case fi.Mode().IsRegular() && writableByOthers(fi, false):
			return fmt.Errorf("the master key's file %s can be written by users outside this process's user and groups (mode %s): they could put their own key in it; chmod 600 it", path, fi.Mode().Perm())
		}
	}
	return nil
}

// warnOfKeyFile warns of a master key file that others can read, or that
// is in the clear when the configuration names a KMS key to wrap it with
// (openpca master-key wrap wraps it).
func warnOfKeyFile(cfg Config, logger *slog.Logger) {
	if fi, err := os.Stat(cfg.MasterKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the master key's file can be read by others than its owner: chmod 600 it", "path", cfg.MasterKeyFile, "mode", fi.Mode().Perm().String())
	}
	if cfg.MasterKeyKMSKey != "" && !wrappedFile(cfg.MasterKeyFile) {
		logger.Warn("the master key's file is in the clear, though a KMS key to wrap it is named: openpca master-key wrap wraps it", "path", cfg.MasterKeyFile)
	}
}

// wrappedFile reports whether the master key file at path is wrapped by
// KMS.
func wrappedFile(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.HasPrefix(string(b), kms.WrapPrefix)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkMasterKey refuses master keys none of which opens the value sealed
// when the database was set up (the first server to start seals it).
func checkMasterKey(ctx context.Context, store openpca.SettingStore, keys masterKeys) error {
	sealer, err := keys.sealer()
	if err != nil {
		return err
	}
	check, err := sealer.Seal([]byte(sqlstore.MasterKeyCheck), []byte(sqlstore.MasterKeyCheck))
	if err != nil {
		return err
	}
	stored, err := store.InitSetting(ctx, sqlstore.MasterKeyCheck, check)
	if err != nil {
		return err
	}
	// Read once the check is: a rotation that was rewriting it has ended.
	retired, err := store.Setting(ctx, sqlstore.RetiredMasterKeys)
	if err != nil {
		return err
	}
	if fp := seal.Fingerprint(keys.current); slices.Contains(strings.Fields(string(retired)), fp) {
		return fmt.Errorf("the master key (fingerprint %s) was rotated away from (openpca master-key rotate), and the database is sealed with the new key: "+
			"give the new one as the master key, and this one as previous, if at all (a rotation run again after its answer was lost has ended so); "+
			"to make this key the master key again, stop every server, rotate to it, and start them with it", fp)
	}
	if _, err := sealer.Open(stored, []byte(sqlstore.MasterKeyCheck)); err != nil {
		return errors.New("the master key is not the one this database was set up with: " +
			"servers sharing a database must share its master key (--master-key-file or OPENPCA_MASTER_KEY), " +
			"and a backup made before a rotation of the master key needs the key of its time")
	}
	return nil
}

// retire returns the list of retired master keys (sqlstore.RetiredMasterKeys)
// with the key of fingerprint old in it, and not the key of fingerprint
// next, which a rotation makes the master key again.
func retire(list []byte, old, next string) []byte {
	fps := slices.DeleteFunc(strings.Fields(string(list)), func(fp string) bool { return fp == old || fp == next })
	return []byte(strings.Join(append(fps, old), "\n") + "\n")
}

// NewMasterKey makes a new random master key, in base64.
func NewMasterKey() (string, error) {
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// RotateMasterKey seals everything the master key seals (the keys of CAs
// in the software store, access keys' secrets, the audit log's key, this
// data folder's TLS CA key) with newKey instead, in one database
// transaction.
//
// On SQLite, servers on the data folder must be stopped, and if the
// master key is a file, newKey replaces it: it is written beside the file
// first, and renamed over it once the database is resealed, so that a
// rotation interrupted at any point leaves either key working (the next
// start settles which).
//
// On PostgreSQL, servers go on running: they roll with
// PreviousMasterKeys, and already open with newKey (see the README). The
// rotation touches no data folder (each server reseals its own TLS key as
// it starts) and no key file: the old key's file stays, as dumps of the
// database made before need it.
func RotateMasterKey(ctx context.Context, cfg Config, newKey string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	shared := cfg.Database != ""
	// On SQLite no server runs: the rotation holds the folder's lock. On
	// PostgreSQL, servers of an earlier version may.
	schema := sqlstore.RefuseEarlier
	if !shared {
		schema = sqlstore.Migrate
		if err := needDatabase(cfg); err != nil {
			return err
		}
		if _, err := checkFolder(cfg.DataDir, true); err != nil {
			return err
		}
		// It writes the TLS CA's key, and the new master key beside the
		// old one's file.
		written := []string{cfg.DataDir, filepath.Join(cfg.DataDir, "tls")}
		if cfg.MasterKey == "" {
			written = append(written, filepath.Dir(cfg.MasterKeyFile), cfg.MasterKeyFile)
		}
		if err := refuseRootWriting(written...); err != nil {
			return err
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("%w: stop it before rotating the master key", err)
		}
		defer lock.Close()
		rotation, err := lockRotation(cfg.DataDir, true)
		if err != nil {
			return err
		}
		defer rotation.Close()
	}
	files := &keyFiles{ctx: ctx, cfg: cfg}
	keys, _, err := readMasterKeys(files, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	// Its sessions are not a server's, which OtherKeys looks for.
	if shared {
		cfg.session = postgres.CommandSession("rotate")
	}
	bind, err := keys.binder(files)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, schema, bind)
	if err != nil {
		return err
	}
	defer store.Close()
	if keys, err = loadMasterKeys(ctx, files, store, keys, false, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	// Refused before anything is resealed, as every command given another
	// default account is: otherwise only its record in the operator log,
	// after the rotation, would be.
	if _, _, err := identity(ctx, store, cfg.AccountID, ""); err != nil {
		return err
	}
	next, err := files.parse(newKey)
	if err != nil {
		return fmt.Errorf("new master key: %w", err)
	}
	// Rotated to itself, the key would be retired, and no server start.
	if bytes.Equal(next, keys.current) {
		return fmt.Errorf("the new master key is the master key (fingerprint %s) already: nothing to rotate", seal.Fingerprint(next))
	}
	// At once, before the reseal locks every CA for its length; again in
	// its transaction, for the servers started meanwhile.
	if guard := rotationGuard(cfg, keys.current, next); guard != nil {
		if err := guard(ctx); err != nil {
			return err
		}
	}
	sealer, err := seal.New(next, append([][]byte{keys.current}, keys.previous...)...)
	if err != nil {
		return err
	}
	ownFile := cfg.MasterKey == "" && !shared
	if ownFile {
		if cfg.MasterKeyKMSKey == "" && wrappedFile(cfg.MasterKeyFile) {
			return errors.New("the master key's file is wrapped by KMS: name the KMS key to wrap the new key with (--master-key-kms-key), or it would be written in the clear")
		}
		if err := files.write(cfg.MasterKeyFile+pendingSuffix, next); err != nil {
			return err
		}
	}
	// The list of retired keys is there since its migration.
	err = store.Reseal(ctx, func(v *openpca.SealedValue) ([]byte, error) {
		switch {
		case v.Kind == openpca.SealedCAKey:
			return sealer.Reseal(v.Value, []byte(v.ID))
		case v.Kind == openpca.SealedAccessKey:
			return sealer.Reseal(v.Value, auth.AssociatedData(v.Account, v.ID))
		case v.ID == sqlstore.MasterKeyCheck:
			return sealer.Reseal(v.Value, []byte(sqlstore.MasterKeyCheck))
		case v.ID == console.SessionKeySetting:
			// A new key, not the old one resealed: a rotation because the
			// master key leaked ends the sessions it let be forged, and
			// their users sign in again.
			return newSessionKey(sealer)
		case v.ID == auditlog.KeySetting:
			return auditlog.ResealKey(v.Value, sealer)
		case v.ID == sqlstore.RetiredMasterKeys:
			return retire(v.Value, seal.Fingerprint(keys.current), seal.Fingerprint(next)), nil
		}
		return v.Value, nil
	}, rotationGuard(cfg, keys.current, next))
	if err != nil {
		if ownFile {
			os.Remove(cfg.MasterKeyFile + pendingSuffix)
		}
		return err
	}
	if shared {
		return nil
	}
	// From here on the database is sealed with the new key: a failure
	// must not read as a rotation that changed nothing, or the new key's
	// file may be tidied away with every secret.
	resealed := func(err error) error {
		// A key given has no file for a start to settle the rotation by,
		// and what failed is the TLS CA's key's reseal (loadTLSCA).
		where := "given as the new master key; keep the old one too: the local TLS CA's key is still sealed with it, until a start with it as the previous key reseals it"
		if ownFile {
			where = "in " + cfg.MasterKeyFile + pendingSuffix + ", which must be kept (starting the server, or any command on the data folder, finishes the rotation)"
		}
		return fmt.Errorf("the database is sealed with the new master key (fingerprint %s), %s, but the rotation did not finish: %w", seal.Fingerprint(next), where, err)
	}
	if err := resealTLSKey(cfg.DataDir, sealer); err != nil {
		return resealed(err)
	}
	if ownFile {
		if err := os.Rename(cfg.MasterKeyFile+pendingSuffix, cfg.MasterKeyFile); err != nil {
			return resealed(err)
		}
		return seal.SyncDir(filepath.Dir(cfg.MasterKeyFile))
	}
	return nil
}

// rotationGuard returns the guard of a rotation of the master key from
// old to next (openpca.ResealStore.Reseal's): on PostgreSQL, it refuses
// while a server or command seals with another key than next (it skipped
// the rolling rotation's step 3): what it sealed, then or while the
// rotation ran, would open with no key a server is left with once old is
// dropped.
func rotationGuard(cfg Config, old, next []byte) func(context.Context) error {
	if cfg.Database == "" {
		return nil
	}
	return func(ctx context.Context) error {
		err := postgres.OtherKeys(ctx, cfg.Database, cfg.session, seal.Fingerprint(next))
		if _, ok := errors.AsType[*postgres.SessionsError](err); ok {
			return fmt.Errorf("nothing was resealed: %w; servers and commands must all seal with the new master key (fingerprint %s) first, not the old one (fingerprint %s) or another: restart each with the new key and the old one as previous (step 3 of a rolling rotation), and upgrade a server of the version before (its sessions named openpca alone), then run this again",
				err, seal.Fingerprint(next), seal.Fingerprint(old))
		}
		return err
	}
}

// WrapMasterKey wraps the master key's file with the KMS key cfg names, in
// place: the key stays the same, and its file no longer holds it in the
// clear.
func WrapMasterKey(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.MasterKeyKMSKey == "" {
		return errors.New("name the KMS key to wrap the master key with (--master-key-kms-key)")
	}
	// A rotation would rename its new key over the file being rewritten
	// (on SQLite: on PostgreSQL it writes no file, and takes no lock).
	if cfg.Database == "" {
		rotation, err := lockRotation(cfg.DataDir, false)
		if err != nil {
			return err
		}
		defer rotation.Close()
	}
	// An interrupted rotation's new key, beside the file, may be the key
	// the database is sealed with: settling the rotation would rename it,
	// in the clear, over the file just wrapped.
	if rotationLeft(cfg) {
		return fmt.Errorf("a rotation of the master key was interrupted (%s is there): settle it first, by starting the server or with any command that opens the data folder (openpca cas list), then wrap", cfg.MasterKeyFile+pendingSuffix)
	}
	if err := refuseRootWriting(filepath.Dir(cfg.MasterKeyFile), cfg.MasterKeyFile); err != nil {
		return err
	}
	files := &keyFiles{ctx: ctx, cfg: cfg}
	key, err := files.read(cfg.MasterKeyFile)
	if err != nil {
		return err
	}
	return files.write(cfg.MasterKeyFile, key)
}
