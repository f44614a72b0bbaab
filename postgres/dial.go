package postgres

import (
	"net"
	"time"
)

// How a server finds out that the network between it and PostgreSQL went
// silent (a database's host gone, or a failover that moved its address).
// Without them, a statement sent on a connection to a host that no longer
// answers waited until the request's own deadline, 110 s (the kernel
// resends unacknowledged data for about 15 minutes), and a connection
// waiting for an answer was given up only after Go's keepalives, 150 s;
// a new connection to such a host took the kernel's 2 minutes of SYN
// retries. Each is now told within about 30 s (dialTimeout: 10 s), its
// request fails as ServiceUnavailableException, which clients retry, and
// the pool opens a new connection. They are our choice; a connection with
// nothing to say to the database sends a keepalive probe each 15 s.
const (
	dialTimeout       = 10 * time.Second // unless the address sets connect_timeout
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	// userTimeout bounds how long data sent stays unacknowledged before
	// the kernel drops the connection (TCP_USER_TIMEOUT, Linux only). The
	// kernel also drops a connection whose keepalive probes have had no
	// answer once it has heard nothing for that long.
	userTimeout = 30 * time.Second
)

// dialer is how a server connects to PostgreSQL: within connectTimeout
// (the address's connect_timeout), or dialTimeout if that is 0.
func dialer(connectTimeout time.Duration) *net.Dialer {
	if connectTimeout == 0 {
		connectTimeout = dialTimeout
	}
	return &net.Dialer{
		Timeout: connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: setUserTimeout,
	}
}
