// Package metriclabel keeps a metric label whose values come from callers
// (a mission code, a portal) from creating unbounded series: a caller that
// sends a new value on every request would otherwise grow every scrape and
// the process's memory without limit.
package metriclabel

import (
	"sync"
	"unicode"
)

// Other is the value that stands for every value past the bound.
const Other = "other"

// MaxLen is the longest value kept as itself; longer ones are Other.
const MaxLen = 64

// Bounded maps a label's values to themselves for the values it knows and
// the first Max others it sees, and every further value to Other. A value
// keeps its label once it has one, so series never move between buckets.
// It is safe for concurrent use.
type Bounded struct {
	max   int
	known map[string]bool

	mu   sync.Mutex
	seen map[string]bool
}

// NewBounded returns a Bounded that keeps the known values and up to max
// other distinct values as themselves.
func NewBounded(max int, known ...string) *Bounded {
	b := &Bounded{max: max, known: map[string]bool{}, seen: map[string]bool{}}
	for _, k := range known {
		b.known[k] = true
	}
	return b
}

// Value is the label value to record for v: v itself, or Other when v is
// past the bound, longer than MaxLen or not printable.
func (b *Bounded) Value(v string) string {
	if b.known[v] {
		return v
	}
	if len(v) > MaxLen || !printable(v) {
		return Other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[v] = true
	return v
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
