package app_test

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
)

// gcPercent reads the collector's pace (SetGCPercent answers the old
// value; the old one is put back at once).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGC(t *testing.T) {
	before := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "150") // restored after the test
	debug.SetGCPercent(150)
	if got := app.TuneGC(); got != "150" || gcPercent() != 150 {
		t.Fatalf("with GOGC=150: TuneGC said %q, pace %d; want the environment's 150 left alone", got, gcPercent())
	}

	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	if got := app.TuneGC(); got != "400" || gcPercent() != app.GCPercent {
		t.Fatalf("without GOGC: TuneGC said %q, pace %d; want %d", got, gcPercent(), app.GCPercent)
	}
}
