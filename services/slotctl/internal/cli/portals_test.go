package cli

import (
	"strings"
	"testing"
)

type jsonPortal struct {
	Name                    string `json:"name"`
	MaxChecksPerMinute      int    `json:"max_checks_per_minute"`
	Timezone                string `json:"timezone"`
	QuietStart              string `json:"quiet_start"`
	QuietEnd                string `json:"quiet_end"`
	QuietMaxChecksPerMinute int    `json:"quiet_max_checks_per_minute"`
	MinMissionInterval      string `json:"min_mission_interval"`
}

func TestPortals(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.slotctl(t, "", "-o", "json", "portals", "set", "vfs", "--max-per-minute", "6", "--timezone", "Europe/Paris",
		"--quiet", "22:00-06:00", "--quiet-max-per-minute", "1").must(t)
	want := jsonPortal{Name: "vfs", MaxChecksPerMinute: 6, Timezone: "Europe/Paris", QuietStart: "22:00", QuietEnd: "06:00",
		QuietMaxChecksPerMinute: 1, MinMissionInterval: "0s"}
	if got := decodeJSON[jsonPortal](t, r.stdout); got != want {
		t.Fatalf("set: %+v, want %+v", got, want)
	}
	// A flag not given stays as it was.
	r = b.slotctl(t, "", "-o", "json", "portals", "set", "vfs", "--min-interval", "5m").must(t)
	want.MinMissionInterval = "300s"
	if got := decodeJSON[jsonPortal](t, r.stdout); got != want {
		t.Fatalf("set --min-interval: %+v, want %+v", got, want)
	}
	b.slotctl(t, "", "portals", "set", "tls", "--max-per-minute", "2").must(t)
	r = b.slotctl(t, "", "portals", "list").must(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PORTAL") || !strings.Contains(lines[1], "tls") ||
		!strings.Contains(lines[2], "vfs") || !strings.Contains(lines[2], "22:00-06:00") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = b.slotctl(t, "", "portals", "status", "vfs").must(t)
	if !strings.Contains(r.stdout, "vfs") || !strings.Contains(r.stdout, "false") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	r = b.slotctl(t, "", "portals", "resume", "vfs").must(t)
	if !strings.Contains(r.stdout, "false") {
		t.Fatalf("resume of a portal not paused:\n%s", r.stdout)
	}

	b.slotctl(t, "", "portals", "set", "vfs", "--quiet", "22-06").fails(t, 2, "HH:MM-HH:MM")
	b.slotctl(t, "", "portals", "set", "vfs").fails(t, 2, "nothing to set")
	b.slotctl(t, "", "portals", "set", "vfs", "--max-per-minute", "-1").fails(t, 1, "InvalidArgument", "max_checks_per_minute")
	b.slotctl(t, "", "portals", "get", "bls").fails(t, 1, "NotFound")
	b.slotctl(t, "", "portals", "resume", "bls").fails(t, 1, "NotFound")
}
