package demo

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
)

// ParseCommand is the flag handling of the commands that run the system
// from a checkout (slotwatch-demo, soak, disciplinebench): it adds -root
// (rootUsage) to fs, parses args, and returns the checkout's absolute path
// and DATABASE_URL, which deploy/local/with-postgres.sh sets (makeTarget
// runs the command through it).
func ParseCommand(fs *flag.FlagSet, args []string, rootUsage, makeTarget string) (root, databaseURL string, err error) {
	r := fs.String("root", ".", rootUsage)
	if err := fs.Parse(args); err != nil {
		return "", "", err
	}
	if root, err = filepath.Abs(*r); err != nil {
		return "", "", err
	}
	if databaseURL = os.Getenv("DATABASE_URL"); databaseURL == "" {
		return "", "", errors.New("DATABASE_URL is not set: run me through deploy/local/with-postgres.sh (" + makeTarget + " does)")
	}
	return root, databaseURL, nil
}

// RunBench is ParseCommand for the benchmarks (soak, disciplinebench):
// run gets a new temporary work directory too, removed when it returns.
func RunBench(fs *flag.FlagSet, args []string, rootUsage, makeTarget string, run func(root, databaseURL, workDir string) error) error {
	root, dbURL, err := ParseCommand(fs, args, rootUsage, makeTarget)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", fs.Name()+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	return run(root, dbURL, work)
}
