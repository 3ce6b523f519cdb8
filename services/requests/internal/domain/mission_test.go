package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

func TestMissionToday(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, zone string
		now        time.Time
		want       string
	}{
		// 23:30 UTC on 12-20 is 08:30 on 12-21 in Tokyo.
		{"TokyoIsAlreadyTomorrow", "Asia/Tokyo", time.Date(2026, 12, 20, 23, 30, 0, 0, time.UTC), "2026-12-21"},
		{"UTCIsStillToday", "UTC", time.Date(2026, 12, 20, 23, 30, 0, 0, time.UTC), "2026-12-20"},
		// 02:00 UTC on 12-21 is 18:00 on 12-20 in Los Angeles.
		{"LosAngelesIsStillYesterday", "America/Los_Angeles", time.Date(2026, 12, 21, 2, 0, 0, 0, time.UTC), "2026-12-20"},
		{"ClockInAnotherZoneChangesNothing", "America/Los_Angeles", time.Date(2026, 12, 21, 3, 0, 0, 0, time.FixedZone("CET", 3600)), "2026-12-20"},
		// A name that no longer loads counts as UTC.
		{"UnknownStoredZoneIsUTC", "Mars/Olympus_Mons", time.Date(2026, 12, 20, 23, 30, 0, 0, time.UTC), "2026-12-20"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := domain.NewMission("fra", tt.now)
			m.Timezone = tt.zone
			got := m.Today(tt.now)
			if !got.Equal(day(tt.want)) || got.Location() != time.UTC {
				t.Fatalf("Today = %v, want %s as UTC midnight", got, tt.want)
			}
		})
	}
}

// The rule: a slot dated on the portal's today, while UTC is
// already tomorrow, still matches a window ending that day.
func TestApplyCheckJudgesTheWindowInTheMissionsZone(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 21, 2, 0, 0, 0, time.UTC)
	r := pendingRequest()
	r.EarliestDate, r.LatestDate = day("2026-12-18"), day("2026-12-20")
	res := domain.CheckResult{Outcome: domain.OutcomeSlotsFound, Slots: []domain.Slot{slot("paris", "tourism", "2026-12-20")}}

	la, err := domain.LoadZone("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	changed, matched := domain.ApplyCheck([]domain.Request{r}, res, now, la)
	if len(changed) != 1 || len(matched) != 1 || matched[0].Status != domain.StatusSlotFound {
		t.Fatalf("in Los Angeles (still 12-20): changed %d, matched %v", len(changed), matched)
	}
	// In UTC the same window ended yesterday: the request is left alone.
	if changed, matched := domain.ApplyCheck([]domain.Request{r}, res, now, time.UTC); len(changed) != 0 || len(matched) != 0 {
		t.Fatalf("in UTC (already 12-21): changed %v, matched %v", changed, matched)
	}
}

func TestMissionFields(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		name   string
		fields domain.MissionFields
		// field is the violation expected, "" for none.
		field, want string
	}{
		{"ZoneAndPortal", domain.MissionFields{Portal: str("vfs"), Timezone: str("Europe/Paris")}, "", ""},
		{"UTC", domain.MissionFields{Timezone: str("UTC")}, "", ""},
		{"PortalCleared", domain.MissionFields{Portal: str("")}, "", ""},
		{"UnknownZone", domain.MissionFields{Timezone: str("Europe/Atlantis")}, "timezone", "IANA time zone name"},
		{"EmptyZone", domain.MissionFields{Timezone: str("  ")}, "timezone", "must not be empty"},
		{"LocalIsTheServersZone", domain.MissionFields{Timezone: str("Local")}, "timezone", "IANA time zone name"},
		{"PathIsNotAZone", domain.MissionFields{Timezone: str("../../etc/passwd")}, "timezone", "IANA time zone name"},
		{"LongZone", domain.MissionFields{Timezone: str(strings.Repeat("A", 65))}, "timezone", "at most 64"},
		{"NULInZone", domain.MissionFields{Timezone: str("UTC\x00")}, "timezone", "NUL"},
		{"PortalUpperCase", domain.MissionFields{Portal: str("VFS Global")}, "portal", "lower-case"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := domain.NewMission("fra", time.Now())
			got := violations(func(p *apirule.FieldErrors) { tt.fields.Apply(p, &m) })
			if tt.field == "" {
				if len(got) != 0 {
					t.Fatalf("violations %v", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[tt.field], tt.want) {
				t.Fatalf("violations %v, want one on %s containing %q", got, tt.field, tt.want)
			}
		})
	}
}
