package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/vfs"
)

// newSFTPServerCmd is `ferry sftp-server`: SFTP on stdin/stdout, a drop-in
// for OpenSSH's sftp-server (`Subsystem sftp /path/ferry sftp-server`, or
// `sftp -D "ferry sftp-server"`). It serves the whole filesystem as the
// invoking user unless --root confines it, in which case "/" is DIR.
func newSFTPServerCmd(g *globalOptions) *cobra.Command {
	var (
		startDir string
		readOnly bool
		root     string
		stderr   bool
		level    string
		umask    string
		direct   bool
		query    string
		denied   = requestList{again: "refused requests already set"}
		allowed  = requestList{again: "permitted requests already set"}
	)
	cmd := &cobra.Command{
		Use:   "sftp-server",
		Short: "speak SFTP on stdin/stdout, like OpenSSH's sftp-server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if query != "" {
				// As OpenSSH: "requests" in any case; nothing else.
				if !strings.EqualFold(query, "requests") {
					return fmt.Errorf("invalid query type %q", query)
				}
				for _, n := range sftp.RequestNames() {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return nil
			}
			var requests sftp.RequestFilter
			if denied.set {
				if err := requests.Deny(denied.names...); err != nil {
					return fmt.Errorf("-P: %w (-Q requests lists the names)", err)
				}
			}
			if allowed.set {
				if err := requests.Allow(allowed.names...); err != nil {
					return fmt.Errorf("-p: %w (-Q requests lists the names)", err)
				}
			}
			logger := slog.New(slog.DiscardHandler)
			if stderr {
				var lv slog.Level
				if err := lv.UnmarshalText([]byte(sftpLogLevel(level))); err != nil {
					return fmt.Errorf("bad log level %q", level)
				}
				logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
			}
			// Interrupted uploads are kept for the client to resume, as
			// ferry serve keeps them (sftp.Options.KeepInterruptedUploads).
			opts := &sftp.Options{ReadOnly: readOnly, DirectUploads: direct, KeepInterruptedUploads: true, Logger: logger, Requests: requests}
			if u := os.Getenv("USER"); u != "" {
				opts.User = u
			}
			if umask != "" {
				m, err := strconv.ParseUint(umask, 8, 32)
				if err != nil || m > 0o777 {
					return fmt.Errorf("bad umask %q", umask)
				}
				// As OpenSSH's -u: the process umask, so it applies to
				// every file created, whatever the client asks.
				syscall.Umask(int(m))
				opts.Umask = fs.FileMode(m)
			}
			var fsys vfs.FS
			var err error
			if root != "" {
				fsys, err = vfs.Local(root)
				if err != nil {
					return err
				}
				opts.Home = "/"
				if startDir != "" {
					opts.Home = path.Clean("/" + expandHome(startDir))
				}
			} else {
				home := startDir
				if home == "" {
					if home, err = os.Getwd(); err != nil {
						return err
					}
				}
				home = expandHome(home)
				if home, err = filepath.Abs(home); err != nil {
					return err
				}
				fsys, err = vfs.OS(home)
				if err != nil {
					return err
				}
				opts.Home = home
			}
			// On a signal, end the session the way a closed channel does,
			// so open atomic uploads end as an interrupted upload does
			// (kept as far as they got) rather than leave a temporary
			// file behind.
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			go func() {
				<-ctx.Done()
				os.Stdin.Close()
			}()
			err = sftp.NewServer(fsys, opts).Serve(ctx, os.Stdin, os.Stdout)
			stop()
			fsys.Close()
			if err != nil {
				// Like OpenSSH's sftp-server, say nothing on stderr (the
				// client's terminal) unless asked to with -e.
				logger.Error("sftp-server: session ended", "err", err)
				os.Exit(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&startDir, "start-dir", "d", "", "directory the session starts in (REALPATH \".\"); %d and %u as in OpenSSH are not expanded, ~ is")
	f.BoolVarP(&readOnly, "read-only", "R", false, "refuse every request that would change the filesystem")
	f.StringVar(&root, "root", "", "confine the session to DIR, which the client sees as /")
	f.BoolVarP(&stderr, "log-stderr", "e", false, "log to stderr")
	f.StringVarP(&level, "log-level", "l", "INFO", "log level: QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1-3")
	f.StringVarP(&umask, "umask", "u", "", "umask (octal) for files and directories created")
	f.VarP(&denied, "denied-requests", "P", "comma-separated requests to refuse (names as -Q requests prints them); refused before any -p list is looked at")
	f.VarP(&allowed, "allowed-requests", "p", "comma-separated requests to serve: every other one is refused")
	f.StringVarP(&query, "query", "Q", "", "print what is supported and exit: \"requests\" prints the request names -p and -P take")
	f.BoolVar(&direct, "direct-uploads", false, "write uploads in place, as OpenSSH does, instead of to a temporary file renamed on close (keeps inode, hard links and extended attributes)")
	return cmd
}

// requestList is the argument of -p or -P: request names separated by
// commas. OpenSSH's sftp-server refuses to start when either is given
// twice rather than pick one, and so does ferry.
type requestList struct {
	names []string
	set   bool
	again string // the error for a second -p or -P
}

func (l *requestList) Set(v string) error {
	if l.set {
		return errors.New(l.again)
	}
	l.set = true
	// An empty entry names no request in OpenSSH's lists either; -p ""
	// still makes the (empty) allowed list binding.
	for n := range strings.SplitSeq(v, ",") {
		if n != "" {
			l.names = append(l.names, n)
		}
	}
	return nil
}

func (l *requestList) String() string { return strings.Join(l.names, ",") }

func (l *requestList) Type() string { return "requests" }

// sftpLogLevel maps OpenSSH's -l names onto slog levels.
func sftpLogLevel(l string) string {
	switch strings.ToUpper(l) {
	case "QUIET", "FATAL", "ERROR":
		return "ERROR"
	case "INFO":
		return "INFO"
	case "VERBOSE":
		return "INFO"
	case "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3":
		return "DEBUG"
	}
	return l
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return h + p[1:]
		}
	}
	return p
}
