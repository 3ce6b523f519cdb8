// Package envconfig reads a service's settings from environment variables and
// collects every malformed value into one error, so an operator sees all of
// them at once instead of fixing them one restart at a time.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Loader reads variables through Lookup (os.LookupEnv by default).
type Loader struct {
	Lookup func(string) (string, bool)
	errs   []error
}

// New returns a Loader over the process environment.
func New() *Loader { return &Loader{Lookup: os.LookupEnv} }

func (l *Loader) get(name string) (string, bool) {
	v, ok := l.Lookup(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// String returns the variable, or def when it is unset or empty.
func (l *Loader) String(name, def string) string {
	if v, ok := l.get(name); ok {
		return v
	}
	return def
}

// Duration returns a non-negative Go duration ("90s", "10m").
func (l *Loader) Duration(name string, def time.Duration) time.Duration {
	v, ok := l.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		l.errs = append(l.errs, fmt.Errorf("%s=%q: want a non-negative duration such as 90s or 10m", name, v))
		return def
	}
	return d
}

// Age returns a non-negative duration given as a Go duration ("36h",
// "90m") or as whole days ("90d"): how long to keep something, which is
// usually said in days.
func (l *Loader) Age(name string, def time.Duration) time.Duration {
	v, ok := l.get(name)
	if !ok {
		return def
	}
	if days, found := strings.CutSuffix(v, "d"); found {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= maxAgeDays {
			return time.Duration(n) * 24 * time.Hour
		}
	} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d
	}
	l.errs = append(l.errs, fmt.Errorf("%s=%q: want a number of days such as 90d (at most %dd) or a non-negative duration such as 36h", name, v, maxAgeDays))
	return def
}

// maxAgeDays keeps Age's days within a time.Duration (about 292 years).
const maxAgeDays = 100 * 365

// Int returns an integer of at least min.
func (l *Loader) Int(name string, def, min int) int {
	v, ok := l.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		l.errs = append(l.errs, fmt.Errorf("%s=%q: want an integer >= %d", name, v, min))
		return def
	}
	return n
}

// Float returns a non-negative number (NaN, which strconv parses and
// every comparison lets through, is refused).
func (l *Loader) Float(name string, def float64) float64 {
	v, ok := l.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0) {
		l.errs = append(l.errs, fmt.Errorf("%s=%q: want a non-negative number", name, v))
		return def
	}
	return f
}

// Bool returns true or false; it accepts only those two words, so a typo
// such as "ture" is an error rather than a silent false.
func (l *Loader) Bool(name string, def bool) bool {
	v, ok := l.get(name)
	if !ok {
		return def
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	l.errs = append(l.errs, fmt.Errorf("%s=%q: want true or false", name, v))
	return def
}

// Require records an error when the variable is unset.
func (l *Loader) Require(name, hint string) string {
	v, ok := l.get(name)
	if !ok {
		l.errs = append(l.errs, fmt.Errorf("%s is not set: %s", name, hint))
	}
	return v
}

// Err joins every problem seen so far, or returns nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }
