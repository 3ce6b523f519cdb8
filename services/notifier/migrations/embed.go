// Package migrations holds the goose migrations of the notifier schema.
// migrations/notifier at the repository root links here, so the layout in
// DESIGN.md holds while the files stay embeddable from this module.
package migrations

import (
	"embed"

	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

//go:embed *.sql
var fs embed.FS

// Set is the notifier schema's migration set.
var Set = pgdb.Migrations{Schema: "notifier", FS: fs}
