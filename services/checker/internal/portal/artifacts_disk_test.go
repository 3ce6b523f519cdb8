//go:build linux

package portal

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The total budget (CHECKER_ARTIFACTS_TOTAL_BYTES) is what bounds the
// artifacts volume (512 MiB below the manifests' 1 GiB emptyDir). By
// default a check's folder now holds check.json alone, some 600 bytes,
// but on disk it takes a directory block and a file block (8 KiB):
// makeRoom counts the files' lengths (dirSize), so the directory holds
// over ten times the budget before a folder is deleted, and a broken
// profile's checks fill the volume (and get the pod evicted) long before
// CHECKER_ARTIFACTS_MAX_AGE deletes anything.
func TestArtifactStoreTotalBoundsTheDiskOfCheckJSONOnlyFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const total = 256 << 10
	s := &artifactStore{dir: dir, perCheck: 64 << 10, total: total, maxAge: time.Hour}
	body := bytes.Repeat([]byte("x"), 600) // a check.json without the page
	start := time.Now().UTC()
	for i := range 300 {
		name := fmt.Sprintf("%s-fra-slots-%06d", start.Add(time.Duration(i)*time.Millisecond).Format(folderTime), i)
		if _, err := s.save(name, []artifactFile{{name: "check.json", body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	var onDisk int64
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		onDisk += info.Sys().(*syscall.Stat_t).Blocks * 512
		return nil
	})
	if onDisk > total {
		t.Fatalf("the artifacts take %d KiB on disk, above CHECKER_ARTIFACTS_TOTAL_BYTES' %d KiB (the budget counts %d bytes a folder)",
			onDisk>>10, total>>10, len(body))
	}
}
