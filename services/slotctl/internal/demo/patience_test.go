package demo

import (
	"math"
	"testing"
	"time"
)

// TestPatienceIsBounded: a chaos or discipline run's waits grow by at most
// maxPatience, whatever the load's factor (see maxPatience's arithmetic).
func TestPatienceIsBounded(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0, time.Minute}, {0.5, time.Minute}, {math.NaN(), time.Minute}, {1, time.Minute},
		{2, 2 * time.Minute}, {maxPatience, maxPatience * time.Minute}, {10, maxPatience * time.Minute}, {math.Inf(1), maxPatience * time.Minute},
	} {
		if got := patience(tc.p).of(time.Minute); got != tc.want {
			t.Errorf("patience(%v).of(1m) = %v, want %v", tc.p, got, tc.want)
		}
	}
}
