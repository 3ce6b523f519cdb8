package metriclabel

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestBoundedKeepsTheFirstValuesAndBucketsTheRest(t *testing.T) {
	t.Parallel()
	b := NewBounded(2, "fra")
	for _, tc := range []struct{ in, want string }{
		{"deu", "deu"},
		{"ita", "ita"},
		{"esp", Other}, // past the bound
		{"deu", "deu"}, // still itself
		{"fra", "fra"}, // known: never counted, never bucketed
		{strings.Repeat("x", MaxLen+1), Other},
		{"bad\nvalue", Other},
	} {
		if got := b.Value(tc.in); got != tc.want {
			t.Errorf("Value(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBoundedHoldsItsBoundUnderConcurrentCallers(t *testing.T) {
	t.Parallel()
	b := NewBounded(10)
	var mu sync.Mutex
	distinct := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				v := b.Value(fmt.Sprintf("m%d-%d", g, i))
				mu.Lock()
				distinct[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(distinct) != 11 || !distinct[Other] {
		t.Errorf("%d distinct values, want 10 and %q", len(distinct), Other)
	}
}
