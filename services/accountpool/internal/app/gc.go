package app

import (
	"os"
	"runtime/debug"
	"strconv"
)

// GCPercent is AccountPool's GOGC when the environment sets none. Every
// Acquire and Release allocates (gRPC's framing, pgx's arguments) over a
// live heap of a few MB, so the collector's default pace (GOGC=100) spent
// about a tenth of the process's CPU in the pool benchmark; at 400 it runs
// a quarter as often, for a heap that peaks near five times the live one.
// GOMEMLIMIT (the manifests set it to the container's memory limit) still
// makes it collect harder near the limit. docs/BENCHMARKS.md has the runs.
const GCPercent = 400

// TuneGC sets the collector's pace to GCPercent unless GOGC is set, and
// returns the GOGC in force.
func TuneGC() string {
	if v, ok := os.LookupEnv("GOGC"); ok {
		return v
	}
	debug.SetGCPercent(GCPercent)
	return strconv.Itoa(GCPercent)
}
