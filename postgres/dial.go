package postgres

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5"
)

// How a server finds out that the network between it and PostgreSQL went
// silent (a database's host gone, or a failover that moved its address).
// Without them, a statement sent on a connection to a host that no longer
// answers waited until the request's own deadline, 110 s (the kernel
// resends unacknowledged data for about 15 minutes), and a connection
// waiting for an answer was given up only after Go's keepalives, 150 s;
// a new connection to such a host took the kernel's 2 minutes of SYN
// retries, and one to a host that took it but said nothing (a proxy in
// front of a database gone) had no bound at all. Each is now told within
// about 30 s, a new connection within connectTimeout; the request fails
// as ServiceUnavailableException, which clients retry, and the pool opens
// a new connection. They are our choice; a connection with nothing to say
// to the database sends a keepalive probe each 15 s.
const (
	connectTimeout    = 10 * time.Second
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	// userTimeout bounds how long data sent stays unacknowledged before
	// the kernel drops the connection (TCP_USER_TIMEOUT, Linux only). The
	// kernel also drops a connection whose keepalive probes have had no
	// answer once it has heard nothing for that long.
	userTimeout = 30 * time.Second
)

// connConfig is how a server connects to dsn: each attempt whole (TCP,
// TLS, startup, authentication) within the connect_timeout of the address
// or of PGCONNECT_TIMEOUT, or connectTimeout where they set none or 0
// (which libpq takes for no bound), over sockets that find a silent peer;
// its sessions named session, unless "" (see Options.Session).
func connConfig(dsn, session string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	// pg_stat_activity names the sessions, for an operator, and for
	// OtherSessions.
	if session != "" {
		cfg.RuntimeParams["application_name"] = session
	} else if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "openpca"
	}
	d := &net.Dialer{
		Timeout: cfg.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: setUserTimeout,
	}
	cfg.DialFunc = d.DialContext
	return cfg, nil
}
