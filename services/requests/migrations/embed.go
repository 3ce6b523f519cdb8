// Package migrations holds the goose migrations of the requests schema.
// migrations/requests at the repository root links here, so the layout in
// DESIGN.md holds while the files stay embeddable from this module.
package migrations

import (
	"embed"

	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

//go:embed *.sql
var fs embed.FS

// Set is the requests schema's migration set.
var Set = pgdb.Migrations{Schema: "requests", FS: fs,
	// Released before Lint's rule on VALIDATE CONSTRAINT: each validates
	// a small table (events and requests when issue 13 and the slot
	// lifecycle came) inside its transaction.
	Released: []string{"00004_portals.sql", "00006_slot_lifecycle.sql"}}
