package storetest

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/sqlstore"
)

// EarlierImports checks the IMPORT entries the upgrade to a version that
// logs imports writes: open opens the database, migrating it; before puts
// it back as the version before had it, its migration and index undone,
// with held and purged holding certificate x'01' and chain, valid from 1 s
// to 2 s after 1970, unlogged, and purged being purged. Each CA that held
// a certificate gets an IMPORT record of it, the upgrade's, once, as the
// migration is applied; one without a certificate, or whose log a purge
// is destroying, gets none. Every log then checks, and a certificate
// changed since, to x'02' by changed, does not.
func EarlierImports(t *testing.T, open func(t *testing.T) *sqlstore.DB, before func(held, pending, purged string, chain []byte), changed func(held string)) {
	t.Helper()
	db := open(t)
	var cas [3]*openpca.CA
	for i := range cas {
		now := time.Now()
		cas[i] = &openpca.CA{ID: fmt.Sprintf("0193a0c0-0000-7000-8000-00000000010%d", i), AccountID: account, Status: openpca.CertificateAuthorityStatusActive,
			CreatedAt: now, LastStateChangeAt: now, KeyStore: "software", KeyHandle: []byte{1}, CSR: []byte{2}}
		cas[i].ARN = openpca.CAARN("us-east-1", cas[i].AccountID, cas[i].ID)
		if _, err := db.CreateCA(ctx, cas[i], openpca.CSRUse(cas[i], "b", "r"), openpca.IdempotencyToken{Now: now}, 10); err != nil {
			t.Fatal(err)
		}
	}
	held, pending, purged := cas[0], cas[1], cas[2]
	db.Close()
	before(held.ID, pending.ID, purged.ID, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{3}}))
	for range 2 { // and once done, again
		db := open(t)
		for _, tc := range []struct {
			ca          *openpca.CA
			entry, size int64
		}{{held, 1, 2}, {pending, -1, 1}, {purged, -1, 1}} {
			last, err := db.LastImport(ctx, tc.ca.AccountID, tc.ca.ID)
			if err != nil || last.Entry != tc.entry || last.LogSize != tc.size {
				t.Fatalf("CA %s: %+v, %v; want entry %d of %d", tc.ca.ID, last, err, tc.entry, tc.size)
			}
		}
		last, _ := db.LastImport(ctx, held.AccountID, held.ID)
		var r openpca.KeyUseRecord
		if err := json.Unmarshal(last.Record, &r); err != nil || r.RequestedBy != openpca.UpgradePrincipal || r.NotAfter != "1970-01-01T00:00:02Z" {
			t.Errorf("the upgrade's record: %s, %v", last.Record, err)
		}
		if _, _, err := audit.CheckLogs(ctx, db, ""); err != nil {
			t.Errorf("the logs after the upgrade: %v", err)
		}
		db.Close()
	}
	changed(held.ID)
	db = open(t)
	defer db.Close()
	if _, _, err := audit.CheckLogs(ctx, db, ""); !errors.Is(err, openpca.ErrLogIntegrity) || !strings.Contains(err.Error(), "entry 1 of the log of CA "+held.ID) {
		t.Errorf("a certificate changed by hand: %v, want the integrity error of entry 1", err)
	}
}
