package metrics

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// TestReleasesByMissionStayBounded: a checker token chooses the mission of
// every lease; ten thousand distinct missions must not become ten thousand
// series.
func TestReleasesByMissionStayBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, func(context.Context) (domain.PoolStatus, error) { return domain.PoolStatus{}, nil }, nil)

	const distinct = 10_000
	for i := range distinct {
		m.Released(domain.OutcomeNoSlot, fmt.Sprintf("m%05d", i))
	}
	// A mission seen early keeps its own series when it comes back.
	m.Released(domain.OutcomeSuccess, "m00000")

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byMission := map[string]float64{}
	series := 0
	for _, f := range families {
		if f.GetName() != "slotwatch_pool_releases_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			series++
			for _, l := range s.GetLabel() {
				if l.GetName() == "mission" {
					byMission[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if want := MaxMissionLabels + 2; series != want { // + other, + m00000's success
		t.Fatalf("%d series after %d distinct missions, want %d", series, distinct, want)
	}
	if byMission["m00000"] != 2 || byMission[fmt.Sprintf("m%05d", MaxMissionLabels-1)] != 1 {
		t.Errorf("early missions lost their own series: %v", byMission["m00000"])
	}
	if got, want := byMission[OtherMission], float64(distinct-MaxMissionLabels); got != want {
		t.Errorf("other = %v, want %v: every release is still counted", got, want)
	}
}
