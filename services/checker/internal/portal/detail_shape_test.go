package portal

import "testing"

// TestDetailTellsDateLayoutsApart: the detail of an unreadable slot is
// what an operator with CHECKER_ARTIFACTS_PAGES off (the default) has to
// fix the profile's layout, and what they need is the shape of the date
// cell (its separators and the order of its fields), which holds no
// personal data. Since 7c0186d the detail names only the length and
// "digits, other characters": 07/12/2026 (layout 02/01/2006), 2026.12.07
// and 12-07-2026 all read the same, so the detail no longer tells which
// layout the page uses.
func TestDetailTellsDateLayoutsApart(t *testing.T) {
	t.Parallel()
	a, b := describeText("07/12/2026"), describeText("2026-12-07")
	if a == b {
		t.Fatalf("the detail describes 07/12/2026 and 2026-12-07 alike (%q): it cannot tell the operator which date layout the page uses", a)
	}
}
