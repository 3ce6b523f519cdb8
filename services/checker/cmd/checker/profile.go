package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// profileCommand runs checker profile SUBCOMMAND.
func profileCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("checker profile: want a subcommand\n%s", usage)
	}
	switch args[0] {
	case "lint":
		if len(args) != 2 {
			return fmt.Errorf("usage: checker profile lint FILE")
		}
		return lintProfile(args[1], stdout)
	}
	return fmt.Errorf("checker profile: unknown subcommand %q\n%s", args[0], usage)
}

// lintProfile prints FILE:LINE: problem for each problem of the file and
// fails when there is one.
func lintProfile(path string, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("lint: %w", err)
	}
	probs := profile.Lint(data)
	for _, p := range probs {
		fmt.Fprintf(stdout, "%s:%d: %s\n", path, p.Line, p.Message)
	}
	if len(probs) > 0 {
		return errors.New("lint: the profile has problems (above)")
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}
