package domain_test

import (
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

func TestPortalCapAt(t *testing.T) {
	t.Parallel()
	day := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	night := time.Date(2030, 6, 1, 23, 0, 0, 0, time.UTC)
	quiet := func(max, quietMax int) domain.Portal {
		return domain.Portal{Name: "vfs", Timezone: "UTC", MaxPerMinute: max,
			HasQuiet: true, QuietStart: 22 * 60, QuietEnd: 6 * 60, QuietMaxPerMinute: quietMax}
	}
	for _, tc := range []struct {
		name       string
		p          domain.Portal
		at         time.Time
		wantLimit  int
		wantCapped bool
	}{
		{"NoCapNoQuiet", domain.Portal{Name: "vfs", Timezone: "UTC"}, night, 0, false},
		{"CapByDay", quiet(5, 1), day, 5, true},
		{"QuietCapAtNight", quiet(5, 1), night, 1, true},
		{"QuietZeroStopsChecks", quiet(5, 0), night, 0, true},
		// The docs promise quiet hours whatever the cap by day: a portal
		// with no cap otherwise is still quiet at night.
		{"NoCapByDay", quiet(0, 0), day, 0, false},
		{"QuietZeroWithoutAnOverallCapStopsChecks", quiet(0, 0), night, 0, true},
		{"QuietCapWithoutAnOverallCap", quiet(0, 2), night, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limit, capped := tc.p.CapAt(tc.at)
			if limit != tc.wantLimit || capped != tc.wantCapped {
				t.Fatalf("CapAt = %d, %v; want %d, %v", limit, capped, tc.wantLimit, tc.wantCapped)
			}
			if n, limited := tc.p.Budget(tc.at, 0); limited != tc.wantCapped || n != tc.wantLimit {
				t.Fatalf("Budget = %d, %v; want %d, %v", n, limited, tc.wantLimit, tc.wantCapped)
			}
		})
	}
}
