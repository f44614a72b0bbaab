package app

import (
	"cmp"
	"context"
	"fmt"

	"github.com/openpca/openpca"
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
func identity(ctx context.Context, store openpca.SettingStore, account, region string) (string, string, error) {
	account, err := checkRecorded(ctx, store, accountSetting, "--account-id", account,
		"the default account owns the buckets no account was given: a server given another would make that account a root key, and publish its CAs' CRLs to buckets of this one")
	if err != nil {
		return "", "", err
	}
	region, err = checkRecorded(ctx, store, regionSetting, "--region", region,
		"every CA's ARN names it: a server given another would find none of its CAs")
	if err != nil {
		return "", "", err
	}
	return cmp.Or(account, DefaultAccountID), cmp.Or(region, DefaultRegion), nil
}

// checkRecorded returns the value of the setting name that every server
// and command on the database must share: given, which is recorded if the
// database records none yet (the first value given wins, as the master
// key's check does), and refused, naming flag and why, if it records
// another; or, given "", the recorded value ("" if none), recording
// nothing, since nothing was said.
func checkRecorded(ctx context.Context, store openpca.SettingStore, name, flag, given, why string) (string, error) {
	if given == "" {
		v, err := store.Setting(ctx, name)
		return string(v), err
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
