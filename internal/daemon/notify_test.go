package daemon

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notifySocket listens where NOTIFY_SOCKET will point (name starting
// with '@': Linux's abstract namespace, as systemd may use) and returns
// a function reading the next datagram.
func notifySocket(t *testing.T, name string) func() string {
	t.Helper()
	sockName := name
	if name[0] == '@' {
		sockName = "\x00" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockName, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(buf[:n])
	}
}

// TestReloadNotifiesSystemd: a reload tells systemd RELOADING=1 with
// MONOTONIC_USEC on CLOCK_MONOTONIC, as sd_notify(3) requires, then
// READY=1, on a socket path or an abstract socket. MONOTONIC_USEC was the
// wall clock, decades ahead of the monotonic one systemd compares it with.
func TestReloadNotifiesSystemd(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@ferry-test-notify-" + strconv.Itoa(unix.Getpid())} {
		t.Run(name, func(t *testing.T) {
			next := notifySocket(t, name)
			cfg := Default()
			if err := cfg.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:0"}, DataDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			d := &Daemon{opts: RunOptions{Load: func() (*Config, error) { return cfg, nil }}, log: slog.New(slog.DiscardHandler),
				metrics: NewMetrics()}
			gen, err := d.newGeneration(cfg)
			if err != nil {
				t.Fatal(err)
			}
			d.current.Store(gen)
			var before unix.Timespec
			if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
				t.Fatal(err)
			}
			d.reload()
			var after unix.Timespec
			if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &after); err != nil {
				t.Fatal(err)
			}

			msg := next()
			fields := strings.Split(msg, "\n")
			if fields[0] != "RELOADING=1" || len(fields) != 2 || !strings.HasPrefix(fields[1], "MONOTONIC_USEC=") {
				t.Fatalf("first message %q, want RELOADING=1 and MONOTONIC_USEC", msg)
			}
			usec, err := strconv.ParseInt(strings.TrimPrefix(fields[1], "MONOTONIC_USEC="), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if usec < before.Nano()/1000 || usec > after.Nano()/1000 {
				t.Errorf("MONOTONIC_USEC=%d is not CLOCK_MONOTONIC (%d..%d µs)", usec, before.Nano()/1000, after.Nano()/1000)
			}
			if msg := next(); msg != "READY=1" {
				t.Errorf("after the reload: %q, want READY=1", msg)
			}
		})
	}
}
