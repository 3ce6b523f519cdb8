package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
)

func TestMissionLabelsAreBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, func() browser.Status { return browser.Status{} }, func() int { return 0 })
	for i := range 3 * MaxMissionLabels {
		m.CheckFinished(fmt.Sprintf("mission-%d", i), session.NoSlot, time.Second)
	}
	m.CheckFinished("mission-0", session.NoSlot, time.Second) // an early one keeps its series
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "slotwatch_checker_checks_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "mission" {
					counts[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if len(counts) != MaxMissionLabels+1 {
		t.Errorf("%d mission series, want %d and other", len(counts), MaxMissionLabels)
	}
	if counts["other"] != 2*MaxMissionLabels || counts["mission-0"] != 2 {
		t.Errorf("other = %v, mission-0 = %v; want %d and 2", counts["other"], counts["mission-0"], 2*MaxMissionLabels)
	}
}

func TestPagesAreCountedByProfileStepAndKind(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, func() browser.Status { return browser.Status{} }, func() int { return 0 })
	m.PageClassified("vfs", "login", "logged_in")
	m.PageClassified("vfs", "login", "unknown")
	m.PageClassified("vfs", "login", "unknown")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "slotwatch_checker_pages_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			key := ""
			for _, l := range s.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			got[key] = s.GetCounter().GetValue()
		}
	}
	if got["kind=unknown profile=vfs step=login "] != 2 || got["kind=logged_in profile=vfs step=login "] != 1 {
		t.Errorf("series = %v", got)
	}
}

func TestLoginsAreCountedApartFromChecks(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, func() browser.Status { return browser.Status{} }, func() int { return 0 })
	m.CheckFinished("fra", session.NoSlot, time.Second)
	m.CheckFinished("fra", session.NoSlot, time.Second)
	m.LoggedIn("fra")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			got[f.GetName()] += s.GetCounter().GetValue()
		}
	}
	if got["slotwatch_checker_logins_total"] != 1 || got["slotwatch_checker_checks_total"] != 2 {
		t.Errorf("logins %v, checks %v; want 1 and 2", got["slotwatch_checker_logins_total"], got["slotwatch_checker_checks_total"])
	}
}
