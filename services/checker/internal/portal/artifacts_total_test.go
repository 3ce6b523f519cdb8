package portal

import (
	"bytes"
	"testing"
	"time"
)

// TestArtifactStoreTotalEqualToOneCheckHoldsACheck: New accepted
// CHECKER_ARTIFACTS_TOTAL_BYTES down to CHECKER_ARTIFACTS_MAX_BYTES
// (portal.go: "the artifacts' total budget is below one check's"), a rule
// written when both counted lengths. Since d7d9375 the total counts disk
// blocks, and a check that uses its whole budget takes more than it (its
// folder's block, check.json's block, the page rounded up): makeRoom
// deletes every other folder and still cannot fit it, writes it anyway,
// and the directory holds more than the total New accepted.
func TestArtifactStoreTotalEqualToOneCheckHoldsACheck(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	if TotalHoldsACheck(budget, budget) {
		t.Errorf("a total of one check's budget (%d) is taken as holding a check: its folder takes blocks beyond its files' lengths", budget)
	}
	// The least total the rule accepts holds a check at its whole budget.
	dir := t.TempDir()
	s := &artifactStore{dir: dir, perCheck: budget, total: budget + FolderOverhead, maxAge: time.Hour}
	name := time.Now().UTC().Format(folderTime) + "-fra-slots-unreadable"
	files := []artifactFile{
		{name: "check.json", body: bytes.Repeat([]byte("j"), 600)},
		{name: "page.html", body: bytes.Repeat([]byte("h"), budget-600)},
	}
	if _, err := s.save(name, files); err != nil {
		t.Fatal(err)
	}
	if used := foldersSize(dir); used > s.total {
		t.Fatalf("one check's folder takes %d bytes on disk, above the least total (%d) the Checker accepts for a per-check budget of %d",
			used, s.total, s.perCheck)
	}
}
