package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ferry-sftp/ferry/server"
)

// accountConns counts each account's authenticated connections on this
// server, for its max_connections.
//
// Without a bound one account could open connections without limit, and
// each can be made to hold a lot: measured against ferry serve, ten
// session channels whose 2 MiB windows a client fills without starting
// anything held 26 MiB of RSS per connection (20 connections: +520 MiB),
// as did ten SFTP sessions with READs whose replies it never reads
// (20 MiB per connection). max_sessions, a per-connection default unless
// the account sets its own, does not bound the connections.
type accountConns struct {
	mu sync.Mutex
	n  map[string]int // made with the first entry; an account leaves at 0
}

// admitConn counts c against its account's max_connections (or the
// configuration's max_connections_per_account), or ends it with
// TOO_MANY_CONNECTIONS when the account already has that many; the count
// goes back when the connection's context ends. It runs as the
// connection starts, after authentication, with the account read at
// login (accountMemo).
func (d *Daemon) admitConn(ctx context.Context, cfg *Config, c *server.Conn) {
	name := c.Permissions().Extensions[extAccount]
	if name == "" {
		return
	}
	// The login's read, or the database's if it has expired; an account
	// that cannot be read now is let in, as its login just was.
	acct := d.accounts.read(ctx, d.st, c.SessionID(), name, time.Now(), false).acct
	limit := cfg.MaxConnectionsPerAccount
	if acct != nil && acct.MaxConnections > 0 {
		limit = acct.MaxConnections
	}
	ac := &d.acctConns
	ac.mu.Lock()
	if n := ac.n[name]; acct != nil && limit > 0 && n >= limit {
		ac.mu.Unlock()
		reason := fmt.Sprintf("too many connections for %s (max %d)", name, limit)
		d.log.Info("connection refused", "user", name, "remote", c.RemoteAddr().String(), "reason", reason)
		c.Disconnect(server.DisconnectTooManyConnections, reason)
		return
	}
	if ac.n == nil {
		ac.n = make(map[string]int)
	}
	ac.n[name]++
	ac.mu.Unlock()
	context.AfterFunc(ctx, func() {
		ac.mu.Lock()
		if ac.n[name]--; ac.n[name] <= 0 {
			delete(ac.n, name)
		}
		ac.mu.Unlock()
	})
}
