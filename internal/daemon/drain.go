package daemon

import (
	"context"
	"time"

	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/sftp"
)

// drainPollInterval is how often the drain looks for SFTP sessions that
// have let go of their last file.
const drainPollInterval = 100 * time.Millisecond

// liveSFTP is an SFTP session the drain may end once it holds no file.
type liveSFTP struct {
	srv *sftp.Server
	end func(exitStatus int)
}

// trackServer counts a connection served by srv, so that the drain can
// shut down every server generation that still has connections; the
// func it returns uncounts it.
func (d *Daemon) trackServer(srv *server.Server) (untrack func()) {
	d.mu.Lock()
	if d.servers == nil {
		d.servers = make(map[*server.Server]int)
	}
	d.servers[srv]++
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		if d.servers[srv]--; d.servers[srv] <= 0 {
			delete(d.servers, srv)
		}
		d.mu.Unlock()
	}
}

// trackSFTP registers a live SFTP session until the func it returns is
// called (when the session ends).
func (d *Daemon) trackSFTP(l *liveSFTP) (untrack func()) {
	d.mu.Lock()
	if d.sftpLive == nil {
		d.sftpLive = make(map[*liveSFTP]struct{})
	}
	d.sftpLive[l] = struct{}{}
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.sftpLive, l)
		d.mu.Unlock()
	}
}

// endIdle shortens the SIGTERM drain to the transfers in progress. Every
// server generation with connections is shut down (a connection without
// a session ends at once, others when their last session ends), and each
// SFTP session is ended as soon as it holds no file open, now or later,
// until ctx is done. Without it an idle client (FileZilla keeps its
// connection open between transfers; a host with thousands of customers
// nearly always has one) held every restart for the whole drain timeout,
// refusing new connections all that time.
func (d *Daemon) endIdle(ctx context.Context) {
	d.mu.Lock()
	servers := make([]*server.Server, 0, len(d.servers))
	for srv := range d.servers {
		servers = append(servers, srv)
	}
	d.mu.Unlock()
	for _, srv := range servers {
		go srv.Shutdown(ctx)
	}
	t := time.NewTicker(drainPollInterval)
	defer t.Stop()
	for {
		var idle []*liveSFTP
		d.mu.Lock()
		for l := range d.sftpLive {
			if l.srv.OpenHandles() == 0 {
				idle = append(idle, l)
			}
		}
		d.mu.Unlock()
		for _, l := range idle {
			l.end(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
