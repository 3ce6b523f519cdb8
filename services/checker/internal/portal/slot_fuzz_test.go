package portal

import (
	"testing"
	"time"
)

// FuzzParseSlot: a slot date and time as a page shows them, read with any
// layout in any timezone, either fails or gives what Requests accepts: a
// YYYY-MM-DD day and an empty or HH:MM time.
func FuzzParseSlot(f *testing.F) {
	f.Add("2030-07-01", time.DateOnly, "", "", "Europe/Paris")
	f.Add("01/07/2030", "02/01/2006", "09:30", "15:04", "Africa/Casablanca")
	f.Add("Tue, 01 Jul 2030 23:30", "Mon, 02 Jan 2006 15:04", "", "", "Asia/Kolkata")
	f.Add("2030-07-01T23:30:00-12:00", time.RFC3339, "", "", "Pacific/Kiritimati")
	f.Add("0000-01-01T00:00:00+14:00", time.RFC3339, "", "", "Etc/GMT+12")
	f.Add("July 1", "January 2", "", "", "UTC")
	f.Fuzz(func(t *testing.T, date, dateLayout, clock, timeLayout, zone string) {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = time.UTC
		}
		day, hm, err := parseSlot(date, dateLayout, clock, timeLayout, loc)
		if err != nil {
			return
		}
		if d, err := time.Parse(time.DateOnly, day); err != nil || len(day) != len(time.DateOnly) || d.Format(time.DateOnly) != day {
			t.Fatalf("%q with %q in %s: day %q is not YYYY-MM-DD", date, dateLayout, loc, day)
		}
		if hm != "" {
			if _, err := time.Parse("15:04", hm); err != nil || len(hm) != 5 {
				t.Fatalf("%q with %q in %s: time %q is not HH:MM", clock, timeLayout, loc, hm)
			}
		}
	})
}
