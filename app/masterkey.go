package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/seal"
)

// masterKeyCheck names the setting that holds a value sealed with the
// master key the database was set up with, and is that value.
const masterKeyCheck = "master-key-check"

// masterKeys are the master key a server seals with, and the previous
// ones it still opens values with, during a rotation.
type masterKeys struct {
	current  []byte
	previous [][]byte
}

func (k masterKeys) sealer() (*seal.Sealer, error) { return seal.New(k.current, k.previous...) }

// loadMasterKeys reads the master key (creating its file, with create,
// on a first start) and the previous keys cfg names, finishes a rotation
// that was interrupted, and checks the keys against the database: a
// server given another master key (a node of a cluster started without the
// shared key, say) would otherwise serve, and fail every request that
// needs a key.
func loadMasterKeys(ctx context.Context, cfg Config, store openpca.SettingStore, create bool, logger *slog.Logger) (masterKeys, error) {
	var keys masterKeys
	for _, p := range cfg.PreviousMasterKeys {
		k, err := seal.ParseKey(p)
		if err != nil {
			return keys, fmt.Errorf("previous master key: %w", err)
		}
		keys.previous = append(keys.previous, k)
	}
	var err error
	switch pending := cfg.MasterKeyFile + pendingSuffix; {
	case cfg.MasterKey != "":
		keys.current, err = seal.ParseKey(cfg.MasterKey)
	case fileExists(pending):
		return finishRotation(ctx, cfg, store, keys, logger)
	case create:
		var created bool
		keys.current, created, err = seal.LoadOrCreateKeyFile(cfg.MasterKeyFile)
		if created {
			logger.Warn("created a new master key; back it up: without it no CA private key can be opened", "path", cfg.MasterKeyFile)
		}
	default:
		keys.current, err = readKeyFile(cfg.MasterKeyFile)
	}
	if err != nil {
		return keys, fmt.Errorf("master key: %w", err)
	}
	return keys, checkMasterKey(ctx, store, keys)
}

// pendingSuffix names the file a rotation writes the new master key to
// before the database is sealed with it.
const pendingSuffix = ".new"

// finishRotation settles a rotation interrupted between writing the new
// key's file and renaming it into place: the database is sealed with one
// of the two keys, all of it, and that one becomes the master key.
func finishRotation(ctx context.Context, cfg Config, store openpca.SettingStore, keys masterKeys, logger *slog.Logger) (masterKeys, error) {
	pending := cfg.MasterKeyFile + pendingSuffix
	old, err := readKeyFile(cfg.MasterKeyFile)
	if err != nil {
		return keys, fmt.Errorf("master key: %w", err)
	}
	newKey, err := readKeyFile(pending)
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
	if err := os.Rename(pending, cfg.MasterKeyFile); err != nil {
		return keys, err
	}
	return keys, seal.SyncDir(filepath.Dir(cfg.MasterKeyFile))
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no master key at %s: start openpca serve on this data folder first, or give the master key", path)
	}
	if err != nil {
		return nil, err
	}
	key, err := seal.ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
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
	check, err := sealer.Seal([]byte(masterKeyCheck), []byte(masterKeyCheck))
	if err != nil {
		return err
	}
	stored, err := store.InitSetting(ctx, masterKeyCheck, check)
	if err != nil {
		return err
	}
	if _, err := sealer.Open(stored, []byte(masterKeyCheck)); err != nil {
		return errors.New("the master key is not the one this database was set up with: " +
			"servers sharing a database must share its master key (--master-key-file or OPENPCA_MASTER_KEY)")
	}
	return nil
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
// transaction. If the master key is the data folder's file, newKey
// replaces it: it is written beside the file first, and renamed over it
// once the database is resealed, so that a rotation interrupted at any
// point leaves either key working (the next start settles which).
// Servers on the data folder must be stopped; servers sharing a database
// roll with PreviousMasterKeys instead (see the README).
func RotateMasterKey(ctx context.Context, cfg Config, newKey string) error {
	cfg = adminDefaults(cfg)
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w: stop it before rotating the master key", err)
	}
	defer lock.Close()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := loadMasterKeys(ctx, cfg, store, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	next, err := seal.ParseKey(newKey)
	if err != nil {
		return fmt.Errorf("new master key: %w", err)
	}
	sealer, err := seal.New(next, append([][]byte{keys.current}, keys.previous...)...)
	if err != nil {
		return err
	}
	ownFile := cfg.MasterKey == ""
	if ownFile {
		if err := seal.WriteKeyFile(cfg.MasterKeyFile+pendingSuffix, next); err != nil {
			return err
		}
	}
	err = store.Reseal(ctx, func(v *openpca.SealedValue) ([]byte, error) {
		switch {
		case v.Kind == openpca.SealedCAKey:
			return sealer.Reseal(v.Value, []byte(v.ID))
		case v.Kind == openpca.SealedAccessKey:
			return sealer.Reseal(v.Value, auth.AssociatedData(v.ID))
		case v.ID == masterKeyCheck:
			return sealer.Reseal(v.Value, []byte(masterKeyCheck))
		case v.ID == auditlog.KeySetting:
			return auditlog.ResealKey(v.Value, sealer)
		}
		return v.Value, nil
	})
	if err != nil {
		if ownFile {
			os.Remove(cfg.MasterKeyFile + pendingSuffix)
		}
		return err
	}
	if err := resealTLSKey(cfg.DataDir, sealer); err != nil {
		return err
	}
	if ownFile {
		if err := os.Rename(cfg.MasterKeyFile+pendingSuffix, cfg.MasterKeyFile); err != nil {
			return err
		}
		return seal.SyncDir(filepath.Dir(cfg.MasterKeyFile))
	}
	return nil
}
