// Package secretfile checks the files that hold secrets (tokens, keysets)
// before a service reads them: a secret that other users of the machine can
// read, or that its group can rewrite, is refused at start.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// loose are the permission bits a secret file must not have: any access by
// "other", and write by the group. Group read stays allowed: a Kubernetes
// Secret volume with defaultMode 0440 and the pod's fsGroup is how a
// non-root container reads its secrets.
const loose = 0o027

// CheckMode returns an error when the file at path (a symlink is followed,
// as Kubernetes mounts Secrets through ..data symlinks: the target's mode
// counts) is readable or writable by other users, or writable by its group.
// what names the setting that points at the file (AUTH_TOKENS_FILE). A
// missing file is an error too.
func CheckMode(path, what string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if perm := st.Mode().Perm(); perm&loose != 0 {
		return fmt.Errorf("%s %s has mode %04o: a file holding secrets must not be readable or writable by others, nor writable by its group; "+
			"run `chmod 600 %s` (in Kubernetes: defaultMode 0440 or 0400 on the Secret volume, with the pod's fsGroup)", what, path, perm, path)
	}
	return nil
}

// ReadLine checks the file at path as CheckMode does and returns its first
// line without the line ending (a password may hold spaces: nothing else
// is cut). what names the setting that points at the file. An empty first
// line is an error: a secret is never empty.
func ReadLine(path, what string) (string, error) {
	if err := CheckMode(path, what); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line is empty: write the secret there", what, path)
	}
	return line, nil
}
