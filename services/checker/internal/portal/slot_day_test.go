package portal

import (
	"testing"
	"time"
)

// TestSlotDayDoesNotDependOnTheTimeCellBeingFilled: docs/PROFILES.md says a
// date beside "a list's `time`" field gives its day as written. But
// parseSlot decides on the time's value (clock != ""), not on the profile
// having a time field: in one list, an item whose time cell is empty (or
// whose time regexp does not match: "no value") is turned into the zone
// again, so the same date value gives the day before (and a time the date
// value never meant) next to its sibling that kept its day.
func TestSlotDayDoesNotDependOnTheTimeCellBeingFilled(t *testing.T) {
	loc, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	const date, layout = "2027-03-01T00:00:00Z", time.RFC3339
	// extractList passes the time layout ("15:04" by default) for every
	// item of a list with a time field, the cell's value "" when empty.
	withTime, _, err1 := parseSlot(date, layout, "09:30", "15:04", loc)
	emptyTime, hm, err2 := parseSlot(date, layout, "", "15:04", loc)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if withTime != emptyTime {
		t.Errorf("the same date %q in one list: day %q beside a time, day %q (time %q) beside an empty time cell; want one day", date, withTime, emptyTime, hm)
	}
}
