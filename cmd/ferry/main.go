// Command ferry is an SSH2 server for secure file transfer (SFTP and SCP)
// with accounts kept in a database.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-sftp/ferry/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// commit may be set at build time (-ldflags "-X main.commit=...") where
// the Go toolchain cannot stamp the VCS revision itself: a build from a
// source tarball, or with -buildvcs=false.
var commit = ""

// globalOptions are the flags every subcommand shares; each may also come
// from the environment so a service manager can set them once.
type globalOptions struct {
	dataDir  string
	database string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "ferry is an SSH2 server for SFTP and SCP with accounts in a database",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", envOr("FERRY_DATA_DIR", "./ferry-data"), "directory for host keys, the SQLite database and homes (env FERRY_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.database, "database", envOr("FERRY_DATABASE", ""), "account store URL: sqlite:///path/ferry.db or postgres://... (env FERRY_DATABASE; default <data-dir>/ferry.db)")
	// The value from FERRY_DATABASE is the flag's default, which --help
	// printed: a postgres:// URL's password, on the terminal of whoever
	// ran "ferry user --help" with it in the environment.
	root.PersistentFlags().Lookup("database").DefValue = ""
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(g),
		newUserCmd(g),
		newSFTPServerCmd(g),
	)
	return root
}

// flagError keeps the flag parser's errors from echoing key material: a
// private key pasted as an argument (ferry user key add alice "$(cat
// ~/.ssh/id_ed25519)") starts with "-----BEGIN", which the parser took for
// a flag and printed whole in "bad flag syntax: -----BEGIN OPENSSH
// PRIVATE KEY-----..." to the terminal, and to any log of it.
func flagError(_ *cobra.Command, err error) error {
	if strings.Contains(err.Error(), "-----BEGIN") {
		return errors.New("an argument starts with \"-----BEGIN\": a private key or PEM file? ferry takes public keys (.pub lines); pass a file with --file, or put \"--\" before arguments that start with \"-\"")
	}
	return err
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print ferry's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprint(cmd.OutOrStdout(), versionText(readBuildInfo()))
		},
	}
}

// readBuildInfo is debug.ReadBuildInfo's information, nil when there is
// none.
func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// buildRevision is the commit ferry was built from (-X main.commit, else
// the Go toolchain's VCS stamp), when it was made, and whether the tree
// had uncommitted changes; rev is "" when neither says.
func buildRevision(bi *debug.BuildInfo) (rev, when string, modified bool) {
	rev = commit
	if bi == nil {
		return rev, "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if rev == "" {
				rev = s.Value
			}
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, when, modified
}

// logVersion is the version the "ferry started" log line names: with the
// commit when known, since a "-dev" version is any commit and the log is
// what an admin sends with a report.
func logVersion(bi *debug.BuildInfo) string {
	rev, _, modified := buildRevision(bi)
	if rev == "" {
		return version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "+changes"
	}
	return version + " (" + rev + ")"
}

// versionText is what `ferry version` prints: the release on the first
// line (scripts and bench read it), then what a support request needs
// that a version string alone does not say: the commit (a "-dev" build
// is any commit), the Go release (which fixes crypto/tls, x/crypto
// and runtime bugs), the platform, and the database schema, which
// decides whether an older ferry can still open the same database.
func versionText(bi *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ferry %s\n", version)
	rev, when, modified := buildRevision(bi)
	switch {
	case rev == "":
		b.WriteString("commit:          unknown (built without version control information)\n")
	default:
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "with uncommitted changes")
		}
		if len(notes) > 0 {
			rev += " (" + strings.Join(notes, ", ") + ")"
		}
		fmt.Fprintf(&b, "commit:          %s\n", rev)
	}
	fmt.Fprintf(&b, "go:              %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "database schema: %d\n", store.SchemaVersion())
	return b.String()
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}
