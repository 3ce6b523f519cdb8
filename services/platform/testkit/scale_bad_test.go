package testkit

import (
	"testing"
	"time"
)

// TestScaleRefusesAFactorThatIsNoLength: TEST_TIMEOUT_SCALE's check takes
// NaN (ParseFloat accepts it; NaN < 1 is false) and factors that overflow
// a Duration. Scale then returns a negative timeout, so every scaled wait
// (proctest.Start's ServeTimeout, the browser's start timeout) fails at
// once with a message like "did not serve within -2562047h47m16s" instead
// of the variable being refused.
func TestScaleRefusesAFactorThatIsNoLength(t *testing.T) {
	for _, v := range []string{"NaN", "1e12", "1e300"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(TimeoutScaleEnv, v)
			var got time.Duration
			refused := func() (refused bool) {
				defer func() { refused = recover() != nil }()
				got = Scale(30 * time.Second)
				return false
			}()
			if !refused && got < 30*time.Second {
				t.Errorf("%s=%s was taken: Scale(30s) = %v, shorter than asked", TimeoutScaleEnv, v, got)
			}
		})
	}
}
