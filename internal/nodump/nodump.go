// Package nodump keeps the process's memory out of core dumps and from
// other processes of its user: it holds the master key, CA keys opened
// from the software store, access keys' secrets and the audit key, none
// of which a crash or a debugger should copy to disk.
package nodump

// Disable, on Linux, turns core dumps off for the process (a limit of 0
// bytes, hard too) and makes it not dumpable: no core whatever the
// system's core pattern (systemd-coredump's included), and no ptrace or
// /proc/<pid>/mem by processes of the same user. Root keeps access.
// Elsewhere it does nothing. An operator who sets GOTRACEBACK=crash asks
// for a core at a crash, and gets one: Disable then does nothing either.
func Disable(lookupEnv func(string) (string, bool)) error {
	if v, _ := lookupEnv("GOTRACEBACK"); v == "crash" {
		return nil
	}
	return disable()
}
