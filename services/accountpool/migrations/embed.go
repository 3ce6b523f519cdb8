// Package migrations holds the accountpool schema's goose migrations.
// migrations/accountpool at the repository root links here.
package migrations

import (
	"embed"

	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is the accountpool migration set.
var Set = pgdb.Migrations{Schema: "accountpool", FS: files,
	// Released before Lint's rule on VALIDATE CONSTRAINT (it validates the
	// usage log inside its transaction).
	Released: []string{"00004_unused_outcome.sql"}}
