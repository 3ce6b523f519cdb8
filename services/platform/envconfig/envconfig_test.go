package envconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

func TestLoaderCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	env := map[string]string{"D": "soon", "N": "-3", "OK": "90s", "B": "yes", "T": "true", "F": "NaN"}
	l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	if got := l.Duration("OK", time.Second); got != 90*time.Second {
		t.Fatalf("OK = %s", got)
	}
	if got := l.Duration("UNSET", time.Second); got != time.Second {
		t.Fatalf("default = %s", got)
	}
	if !l.Bool("T", false) || !l.Bool("UNSET", true) {
		t.Fatal("Bool")
	}
	l.Duration("D", 0)
	l.Bool("B", false)
	l.Int("N", 1, 0)
	l.Float("F", 1)
	l.Require("MISSING", "set it")
	err := l.Err()
	for _, name := range []string{"D=", "N=", "B=", "F=", "MISSING"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("error %v does not name %s", err, name)
		}
	}
}

func TestAgeTakesDaysOrADuration(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DAYS": "90d", "HOURS": "36h", "ZERO": "0", "BAD": "3w", "NEG": "-1d", "HUGE": "999999d"}
	l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	for name, want := range map[string]time.Duration{"DAYS": 90 * 24 * time.Hour, "HOURS": 36 * time.Hour, "ZERO": 0, "UNSET": time.Hour} {
		if got := l.Age(name, time.Hour); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	for _, name := range []string{"BAD", "NEG", "HUGE"} {
		if got := l.Age(name, time.Hour); got != time.Hour {
			t.Errorf("%s = %s, want the default", name, got)
		}
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
