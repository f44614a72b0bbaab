package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlstore"
)

// The settings that record the default account (--account-id) and the
// region (--region) of the servers on a database: the first server to
// start records them (or the first of this version, on a database of an
// earlier one), and every server and command after is held to them. The
// default account owns the buckets no account was given, and gets the
// root key a server makes; the region is in every CA's ARN. A server
// given another account made that account a root key, and published its
// CAs' CRLs to buckets the others hold to be their default account's;
// one given another region listed the CAs, and then said they did not
// exist.
const (
	accountSetting = "default-account-id"
	regionSetting  = "region"
)

// identity holds account and region, a server's or a command's, to what
// the database records (checkRecorded), and returns the default account
// and the region to run with. A value given as "" is not compared: it
// takes the one recorded, else the default. Commands give no region (they
// take no --region, and make no CA), and may leave the account out.
func identity(ctx context.Context, store *sqlstore.DB, account, region string) (string, string, error) {
	account, err := checkRecorded(ctx, store, accountSetting, "--account-id", account,
		"the default account owns the buckets no account was given: a server given another would make that account a root key, and publish its CAs' CRLs to buckets of this one",
		func() (bool, error) { return accountHeld(ctx, store, account) })
	if err != nil {
		return "", "", err
	}
	region, err = checkRecorded(ctx, store, regionSetting, "--region", region,
		"every CA's ARN names it: a server given another would find none of its CAs",
		func() (bool, error) { return regionHeld(ctx, store, region) })
	if err != nil {
		return "", "", err
	}
	return cmp.Or(account, DefaultAccountID), cmp.Or(region, DefaultRegion), nil
}

// accountHeld reports whether account may be recorded as the default one
// of a database that records none: one of its accounts, if it has any
// (the first server to start made the default account).
func accountHeld(ctx context.Context, store *sqlstore.DB, account string) (bool, error) {
	accounts, err := store.ListAccounts(ctx)
	return len(accounts) == 0 || slices.ContainsFunc(accounts, func(a *openpca.Account) bool { return a.ID == account }), err
}

// regionHeld reports whether region may be recorded as that of a database
// that records none: the region of one of its CAs, if it has any.
func regionHeld(ctx context.Context, store *sqlstore.DB, region string) (bool, error) {
	return store.RegionHeld(ctx, region)
}

// checkRecorded returns the value of the setting name that every server
// and command on the database must share: given, which is recorded if the
// database records none yet and held says its data bears it out (the
// first value given wins, as the master key's check does), and refused,
// naming flag and why, if it records another; or, given "", the recorded
// value ("" if none), recording nothing, since nothing was said.
func checkRecorded(ctx context.Context, store openpca.SettingStore, name, flag, given, why string, held func() (bool, error)) (string, error) {
	v, err := store.Setting(ctx, name)
	if given == "" || err != nil {
		return string(v), err
	}
	// The first record, on a database of an earlier version, is of a
	// value its data bears out: a server misconfigured before the upgrade,
	// started first after it, would otherwise have every other refused.
	if v == nil {
		switch ok, err := held(); {
		case err != nil:
			return "", err
		case !ok:
			return "", fmt.Errorf("%s is %s, which this database's data does not bear out (%s): give %s the value its servers had", flag, given, why, flag)
		}
	}
	stored, err := store.InitSetting(ctx, name, []byte(given))
	if err != nil {
		return "", err
	}
	if recorded := string(stored); recorded != given {
		return "", fmt.Errorf("%s is %s, but this database's is %s, recorded by the first server to start on it: every server and command on a database must be given the same (%s). "+
			"Give %s %s. It cannot be changed on a database; if the record itself is wrong (a first start after an upgrade given the wrong value, no CA made since), stop every server, "+
			"remove it (DELETE FROM settings WHERE name = '%s', with psql, or sqlite3 on <data-dir>/openpca.db), and start one with the right value",
			flag, given, recorded, why, flag, recorded, name)
	}
	return given, nil
}
