package cli

import (
	"strings"
	"testing"
)

type jsonMission struct {
	MissionCode string `json:"mission_code"`
	Portal      string `json:"portal"`
	Timezone    string `json:"timezone"`
}

func TestMissions(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.slotctl(t, "", "-o", "json", "missions", "set", "fra", "--portal", "vfs", "--timezone", "Europe/Paris").must(t)
	if got := decodeJSON[jsonMission](t, r.stdout); got != (jsonMission{"fra", "vfs", "Europe/Paris"}) {
		t.Fatalf("set: %+v", got)
	}
	// A flag not given stays as it was.
	r = b.slotctl(t, "", "-o", "json", "missions", "set", "fra", "--timezone", "Asia/Tokyo").must(t)
	if got := decodeJSON[jsonMission](t, r.stdout); got != (jsonMission{"fra", "vfs", "Asia/Tokyo"}) {
		t.Fatalf("set --timezone: %+v", got)
	}
	b.slotctl(t, "", "missions", "set", "usa", "--timezone", "America/Los_Angeles").must(t)

	r = b.slotctl(t, "", "missions", "list").must(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "MISSION") ||
		!strings.Contains(lines[1], "fra") || !strings.Contains(lines[1], "vfs") || !strings.Contains(lines[1], "Asia/Tokyo") ||
		!strings.Contains(lines[2], "usa") || !strings.Contains(lines[2], "America/Los_Angeles") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = b.slotctl(t, "", "-o", "json", "missions", "get", "usa").must(t)
	if got := decodeJSON[jsonMission](t, r.stdout); got.Timezone != "America/Los_Angeles" || got.Portal != "" {
		t.Fatalf("get: %+v", got)
	}

	b.slotctl(t, "", "missions", "set", "fra", "--timezone", "Europe/Atlantis").fails(t, 1, "InvalidArgument", "timezone:", "IANA")
	b.slotctl(t, "", "missions", "set", "fra").fails(t, 2, "nothing to set")
	b.slotctl(t, "", "missions", "get", "deu").fails(t, 1, "NotFound")
}
