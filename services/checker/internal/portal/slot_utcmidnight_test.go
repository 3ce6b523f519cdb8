package portal

import (
	"testing"
	"time"
)

// TestLocalMidnightWrittenInUTCBesideATimeKeepsItsDay: a portal east of UTC
// that serialises a slot's local date as a JS Date (toISOString of local
// midnight: 1 March in Paris is "2027-02-28T23:00:00.000Z", 22:00Z in
// summer) beside a time field. On main this was turned into the profile's
// timezone: 1 March 09:30, right. Since the change the day is taken "as
// written" whatever the value's clock (not only a midnight of its own
// offset, which the commit says it is about): 28 February 09:30, a day the
// page never showed. Every Europe/Asia portal with such an API is now a day
// off.
func TestLocalMidnightWrittenInUTCBesideATimeKeepsItsDay(t *testing.T) {
	for _, tc := range []struct{ zone, date, want string }{
		{"Europe/Paris", "2027-02-28T23:00:00.000Z", "2027-03-01"},
		{"Europe/Paris", "2027-06-30T22:00:00.000Z", "2027-07-01"}, // DST
		{"Asia/Kolkata", "2027-02-28T18:30:00.000Z", "2027-03-01"},
	} {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		day, hm, err := parseSlot(tc.date, "2006-01-02T15:04:05.000Z07:00", "09:30", "15:04", loc)
		if err != nil || day != tc.want || hm != "09:30" {
			t.Errorf("%s in %s beside 09:30 = %q %q, %v; want %q 09:30", tc.date, tc.zone, day, hm, err, tc.want)
		}
	}
}
