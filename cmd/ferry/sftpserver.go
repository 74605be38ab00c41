package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(stub): replaced by the real command.
func newSFTPServerCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "sftp-server",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not implemented yet") },
	}
}
