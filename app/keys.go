package app

import (
	"context"
	"crypto"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/seal"
)

// openKeyStores opens the stores CA keys can be kept in: the software
// store always, a PKCS#11 token and KMS when configured, with the default
// store for new CAs first.
func (a *App) openKeyStores(ctx context.Context) error {
	cfg := a.cfg
	stores := []authority.KeyStore{{KeyStore: seal.NewKeyStore(a.sealer)}}
	if cfg.PKCS11.Module != "" {
		standard, err := keyStandard(cfg.PKCS11Standard, "--pkcs11-standard")
		if err != nil {
			return err
		}
		token, err := pkcs11.Open(cfg.PKCS11)
		if err != nil {
			return err
		}
		a.closeKeys = token.Close
		a.token = token
		stores = append(stores, authority.KeyStore{KeyStore: token, Standard: standard})
	}
	if cfg.KMSEndpoint != "" || cfg.KeyStore == kms.Name {
		declared := cfg.KMSStandard
		if declared == "" && cfg.KMSEndpoint == "" {
			// AWS KMS keeps keys in HSMs validated at FIPS 140 level 3.
			declared = string(openpca.KeyStorageSecurityStandardFips1402Level3OrHigher)
		}
		standard, err := keyStandard(declared, "--kms-standard")
		if err != nil {
			return err
		}
		store, err := kms.Open(ctx, cfg.KMSEndpoint, cfg.Region)
		if err != nil {
			return err
		}
		store.KeyPolicy = cfg.KMSKeyPolicy
		stores = append(stores, authority.KeyStore{KeyStore: store, Standard: standard})
	}
	name := cfg.KeyStore
	for i, ks := range stores {
		if ks.Name() == name {
			stores[0], stores[i] = stores[i], stores[0]
			a.keyStores = stores
			if !ks.Hardware() {
				if cfg.RequireHardwareKeys {
					return fmt.Errorf("--require-hardware-keys: the default key store, %s, keeps keys in software; use --key-store pkcs11 or kms", name)
				}
				a.logger.Info("CA keys are kept in software, sealed with the master key: they meet no FIPS level, and DescribeCertificateAuthority reports none",
					"key_store", name)
			}
			return nil
		}
	}
	return fmt.Errorf("--key-store %s is not configured: pkcs11 needs --pkcs11-module, and software, pkcs11 and kms are the stores", name)
}

// keyStandard checks a declared key storage security standard.
func keyStandard(s, flag string) (openpca.KeyStorageSecurityStandard, error) {
	if s == "" {
		return "", nil
	}
	for _, v := range openpca.KeyStorageSecurityStandard("").Values() {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s must be one of %v, not %q", flag, openpca.KeyStorageSecurityStandard("").Values(), s)
}

// keyStoreNames names the server's key stores, for metrics.
func (a *App) keyStoreNames() []string {
	names := make([]string, len(a.keyStores))
	for i, ks := range a.keyStores {
		names[i] = ks.Name()
	}
	return names
}

// warnKeyStoresMissing warns of CAs whose keys are in a store this server
// is not configured with (a server started without --key-store pkcs11 on
// a database whose CAs' keys are in a token, say): they cannot sign on
// it, and their requests are answered ServiceUnavailable, which clients
// retry in vain.
func (a *App) warnKeyStoresMissing(ctx context.Context) {
	counts, err := a.store.CountCAs(ctx, a.now())
	if err != nil {
		a.logger.WarnContext(ctx, "counting the CAs of each key store, to warn of stores this server lacks", "error", err)
		return
	}
	names := a.keyStoreNames()
	missing := map[string]int{}
	for kind, n := range counts {
		// A deleted CA signs nothing until it is restored.
		if kind.Status != openpca.CertificateAuthorityStatusDeleted && !slices.Contains(names, kind.KeyStore) {
			missing[kind.KeyStore] += n
		}
	}
	for _, store := range slices.Sorted(maps.Keys(missing)) {
		a.logger.WarnContext(ctx, "CAs keep their keys in a key store this server is not configured with: they cannot sign on it, and their requests are answered ServiceUnavailable",
			"key_store", store, "cas", missing[store])
	}
}

// auditKeys says where the audit log's key may be.
func (a *App) auditKeys() auditlog.Keys {
	keys := auditlog.Keys{Sealer: a.sealer, InToken: a.cfg.AuditKeyStore == pkcs11.Name}
	if a.token != nil {
		keys.Token = looseWarning{a.token, a}
	}
	return keys
}

// looseWarning is a token whose Ed25519 keys found in it (not made) are
// logged at WARN if a holder of its PIN may do more with them than sign:
// an audit key made before the store locked its attributes, or put under
// its label by hand.
type looseWarning struct {
	*pkcs11.Store
	a *App
}

func (t looseWarning) Ed25519(label string, create bool) (crypto.Signer, error) {
	key, err := t.Store.Ed25519(label, create)
	if l, ok := key.(interface{ Loose() []string }); ok && err == nil && len(l.Loose()) > 0 {
		t.a.logger.Warn("the audit log's key in the token allows more than signing checkpoints (made by an earlier version, or not by a server): a holder of "+
			"the token's PIN may give it other uses or copy it under another label, and read it out if it is extractable or not sensitive",
			"label", label, "allows", strings.Join(l.Loose(), ", "))
	}
	return key, err
}
