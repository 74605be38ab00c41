package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(stub): replaced by the real command.
func newUserCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "user",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not implemented yet") },
	}
}
