package testkit

import (
	"testing"
	"time"
)

func TestScaleTakesTheFactorFromTheEnvironment(t *testing.T) {
	t.Setenv(TimeoutScaleEnv, "3")
	if got := Scale(10 * time.Second); got != 30*time.Second {
		t.Errorf("Scale(10s) with %s=3 = %v, want 30s", TimeoutScaleEnv, got)
	}
}

func TestScaleWithoutTheEnvironmentNeverShortens(t *testing.T) {
	t.Setenv(TimeoutScaleEnv, "")
	f := TimeoutScale()
	if f < 1 || f > maxTimeoutScale {
		t.Errorf("TimeoutScale() = %v, want within [1, %d]", f, maxTimeoutScale)
	}
	if got := Scale(time.Second); got < time.Second {
		t.Errorf("Scale(1s) = %v: shorter than asked", got)
	}
}

func TestScaleRefusesAFactorBelowOne(t *testing.T) {
	for _, v := range []string{"0.5", "fast", "-2"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(TimeoutScaleEnv, v)
			defer func() {
				if recover() == nil {
					t.Errorf("%s=%s was taken", TimeoutScaleEnv, v)
				}
			}()
			Scale(time.Second)
		})
	}
}
