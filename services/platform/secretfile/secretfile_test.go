package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMode(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, mode os.FileMode) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Chmod, not WriteFile's mode, so that the umask does not hide a bit.
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("OwnerAndGroupReadAllowed", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []os.FileMode{0o400, 0o600, 0o440, 0o640} {
			if err := CheckMode(write(t, mode), "AUTH_TOKENS_FILE"); err != nil {
				t.Errorf("mode %04o: %v", mode, err)
			}
		}
	})

	t.Run("OtherAccessOrGroupWriteRefusedSayingHowToFix", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []os.FileMode{0o644, 0o604, 0o602, 0o601, 0o660, 0o620, 0o666, 0o777} {
			path := write(t, mode)
			err := CheckMode(path, "AUTH_TOKENS_FILE")
			if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "AUTH_TOKENS_FILE") {
				t.Errorf("mode %04o: want a refusal naming the setting and chmod 600, got %v", mode, err)
			}
		}
	})

	t.Run("SymlinkTargetModeCounts", func(t *testing.T) {
		t.Parallel()
		// A Kubernetes Secret volume: token -> ..data/token, ..data -> ..2026_12_06.
		for mode, ok := range map[os.FileMode]bool{0o440: true, 0o644: false} {
			target := write(t, mode)
			dir := t.TempDir()
			if err := os.Symlink(filepath.Dir(target), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "secret")
			if err := os.Symlink(filepath.Join("..data", "secret"), link); err != nil {
				t.Fatal(err)
			}
			// The link itself is 0777: only the target's mode must count.
			if err := CheckMode(link, "TOKEN"); (err == nil) != ok {
				t.Errorf("target mode %04o: %v", mode, err)
			}
		}
	})

	t.Run("MissingFileAndDirectoryRefused", func(t *testing.T) {
		t.Parallel()
		if err := CheckMode(filepath.Join(t.TempDir(), "none"), "X"); err == nil {
			t.Error("a missing file passed")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := CheckMode(dir, "X"); err == nil {
			t.Error("a directory passed")
		}
	})

	t.Run("ReadLineKeepsSpacesAndCutsTheLineEnding", func(t *testing.T) {
		t.Parallel()
		for content, want := range map[string]string{
			"pass word\n":       "pass word",
			"pass word\r\nnext": "pass word",
			"  spaced  ":        "  spaced  ",
		} {
			path := write(t, 0o600)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadLine(path, "X_FILE")
			if err != nil || got != want {
				t.Errorf("%q: got %q, %v; want %q", content, got, err, want)
			}
		}
	})

	t.Run("ReadLineRefusesEmptyAndLooseFiles", func(t *testing.T) {
		t.Parallel()
		empty := write(t, 0o600)
		if err := os.WriteFile(empty, []byte("\nsecond"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadLine(empty, "X_FILE"); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("empty first line: %v", err)
		}
		if _, err := ReadLine(write(t, 0o644), "X_FILE"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode 644: %v", err)
		}
	})
}
