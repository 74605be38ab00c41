// Command ferry is an SSH2 server for secure file transfer (SFTP and SCP)
// with accounts kept in a database.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

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
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(g),
		newUserCmd(g),
		newSFTPServerCmd(g),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print ferry's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "ferry %s\n", version)
		},
	}
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}
