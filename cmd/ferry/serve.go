package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-sftp/ferry/internal/daemon"
	"github.com/ferry-sftp/ferry/store"
)

func newServeCmd(g *globalOptions) *cobra.Command {
	var (
		configPath string
		listen     []string
		check      bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the SSH/SFTP server",
		Long: `Run the SSH/SFTP server.

With no configuration file ferry listens on 0.0.0.0:2222 and [::]:2222, keeps its
data (host keys, the SQLite account database, user homes) in ./ferry-data, and
offers only modern algorithms. Add accounts with "ferry user add".

Settings come from, in increasing priority: built-in defaults, the --config file,
the FERRY_DATA_DIR/FERRY_DATABASE environment variables, and command-line flags.
SIGHUP reloads the configuration and host keys for new connections; SIGTERM stops
accepting and lets transfers finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			load := func() (*daemon.Config, error) {
				cfg, err := daemon.LoadConfig(configPath)
				if err != nil {
					return nil, err
				}
				var env daemon.Overrides
				env.DataDir = os.Getenv("FERRY_DATA_DIR")
				env.Database = os.Getenv("FERRY_DATABASE")
				if err := cfg.ApplyOverrides(env); err != nil {
					return nil, err
				}
				var flags daemon.Overrides
				if cmd.Flags().Changed("data-dir") {
					flags.DataDir = g.dataDir
				}
				if cmd.Flags().Changed("database") {
					flags.Database = g.database
				}
				flags.Listen = listen
				if err := cfg.ApplyOverrides(flags); err != nil {
					return nil, err
				}
				if err := cfg.Validate(); err != nil {
					return nil, err
				}
				return cfg, nil
			}
			if check {
				cfg, err := load()
				if err != nil {
					return err
				}
				// serve would fail at start on a run_as user that does
				// not exist, after binding its ports.
				if cfg.RunAs != "" {
					if _, err := user.Lookup(cfg.RunAs); err != nil {
						return fmt.Errorf("run_as: %w", err)
					}
				}
				// serve would fail at start on a key it cannot load;
				// --check reads them but never generates one.
				found, missing, err := daemon.CheckHostKeys(cfg)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, k := range found {
					fmt.Fprintln(out, "host key", k)
				}
				for _, p := range missing {
					fmt.Fprintln(out, "host key", p+": missing, generated at start")
				}
				if err := checkDatabase(cmd.Context(), out, cfg); err != nil {
					return err
				}
				fmt.Fprintln(out, "configuration OK")
				return nil
			}
			return daemon.Run(context.Background(), daemon.RunOptions{Load: load, Version: logVersion(readBuildInfo()), LogOutput: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "TOML configuration file")
	cmd.Flags().StringArrayVar(&listen, "listen", nil, "address to listen on, host:port (repeatable; replaces the configured list)")
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and host keys and exit")
	return cmd
}

// checkDatabase tells serve --check what start will do to the account
// database: nothing, create it, migrate it, or refuse it as written by a
// newer ferry, the one outcome that fails the check (an upgrade script
// running --check before the restart learns of a downgrade then, not from
// a server that will not start). A database --check cannot reach is
// reported without failing it: configurations are also checked where the
// database is out of reach.
func checkDatabase(ctx context.Context, out io.Writer, cfg *daemon.Config) error {
	u, err := cfg.DatabaseURL()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	have, err := store.InspectSchema(ctx, u)
	want := store.SchemaVersion()
	switch {
	case err != nil:
		fmt.Fprintf(out, "database %s: not checked: %v\n", cfg.RedactedDatabaseURL(), err)
	case have > want:
		return fmt.Errorf("database %s: %w (database at version %d, this ferry knows %d): "+
			"run a ferry whose `ferry version` shows database schema %d or later, or restore the backup taken before the upgrade",
			cfg.RedactedDatabaseURL(), store.ErrSchemaTooNew, have, want, have)
	case have == 0:
		fmt.Fprintf(out, "database %s: not set up yet, created at start (schema %d)\n", cfg.RedactedDatabaseURL(), want)
	case have < want:
		fmt.Fprintf(out, "database %s: schema %d, migrated to %d at start (older ferry versions then refuse it)\n",
			cfg.RedactedDatabaseURL(), have, want)
	default:
		fmt.Fprintf(out, "database %s: schema %d, current\n", cfg.RedactedDatabaseURL(), have)
	}
	return nil
}
