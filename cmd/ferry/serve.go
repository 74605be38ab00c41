package main

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/ferry-sftp/ferry/internal/daemon"
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
				fmt.Fprintln(out, "configuration OK")
				return nil
			}
			return daemon.Run(context.Background(), daemon.RunOptions{Load: load, Version: version, LogOutput: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "TOML configuration file")
	cmd.Flags().StringArrayVar(&listen, "listen", nil, "address to listen on, host:port (repeatable; replaces the configured list)")
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and host keys and exit")
	return cmd
}
