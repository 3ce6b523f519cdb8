package migrations_test

import (
	"testing"

	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestLint: indexes of later migrations are built without blocking writes.
func TestLint(t *testing.T) {
	t.Parallel()
	if err := migrations.Set.Lint(); err != nil {
		t.Error(err)
	}
}
