package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Portal is a portal's settings and its pause. Missions name it
// (Mission.Portal); a mission whose portal has no settings is claimed with
// no cap and is never paused.
type Portal struct {
	Name string
	// MaxPerMinute caps the claims of the portal's missions in any 60
	// seconds, every replica together; 0 means no cap. One claim counts as
	// one check, whatever number of centres and categories its requests
	// name: the Checker opens the portal once per claim.
	MaxPerMinute int
	// Timezone is the IANA zone the quiet hours are in.
	Timezone string
	// Quiet hours, [QuietStart, QuietEnd) in minutes after midnight in
	// Timezone (running past midnight when QuietEnd < QuietStart); HasQuiet
	// is false when there are none.
	HasQuiet          bool
	QuietStart        int
	QuietEnd          int
	QuietMaxPerMinute int
	// MinMissionInterval is the least time between two claims of one
	// mission of the portal.
	MinMissionInterval time.Duration
	Pause              Pause
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Pause is a portal's pause: a time, not a flag. The portal is paused
// while now is before Until.
type Pause struct {
	At     time.Time // when the current or last pause began
	Until  time.Time // zero: never paused
	Reason string
	// Level counts pauses in a row: the next one lasts PauseMin·2^Level
	// (at most PauseMax). It goes back to 0 once the portal has gone
	// WallRules.ResetAfter past LevelUntil without another pause that
	// raises it (LevelAt).
	Level int
	// LevelUntil is the end of the last pause that raised Level: a
	// maintenance pause (which leaves the level) does not move it, a bot
	// wall's Retry-After that lengthens that pause while it runs does, and
	// Resume cuts it to the resume. Zero: none recorded (a pause an older
	// Requests began), and the reset counts from Until.
	LevelUntil time.Time
	// Open: a PORTAL_RESUMED event is owed once Until passes.
	Open bool
}

// Limits of portal settings.
const (
	MaxChecksPerMinute    = 10000
	MaxMinMissionInterval = 24 * time.Hour
	// RateWindow is the window the cap counts claims in.
	RateWindow = time.Minute
)

// WallRules say when walls pause a portal, and for how long.
type WallRules struct {
	Threshold int           // walls in Window that pause the portal
	Window    time.Duration // e.g. 10m
	PauseMin  time.Duration // first pause
	PauseMax  time.Duration // longest pause
	// ResetAfter: a portal that has gone this long past its last pause's
	// end without a new one starts again at PauseMin.
	ResetAfter time.Duration
}

// DefaultWallRules are issue 13's: 3 walls in 10 minutes, across accounts,
// pause 15 minutes, doubling to 6 hours, reset after 6 quiet hours.
var DefaultWallRules = WallRules{Threshold: 3, Window: 10 * time.Minute, PauseMin: 15 * time.Minute,
	PauseMax: 6 * time.Hour, ResetAfter: 6 * time.Hour}

// NewPortal is a portal with the defaults (no cap, UTC, no quiet hours).
func NewPortal(name string, now time.Time) Portal {
	return Portal{Name: name, Timezone: DefaultTimezone, CreatedAt: now, UpdatedAt: now}
}

// Paused says whether no mission of p may be claimed at now.
func (p Portal) Paused(now time.Time) bool { return now.Before(p.Pause.Until) }

// CapAt is the cap in force at now and whether there is one at all: the
// quiet hours' one during them, even on a portal with no cap otherwise
// (MaxPerMinute 0), else MaxPerMinute.
func (p Portal) CapAt(now time.Time) (limit int, capped bool) {
	if p.HasQuiet {
		t := now.In(Zone(p.Timezone))
		m := t.Hour()*60 + t.Minute()
		in := p.QuietStart <= m && m < p.QuietEnd
		if p.QuietEnd < p.QuietStart {
			in = m >= p.QuietStart || m < p.QuietEnd
		}
		if in {
			return p.QuietMaxPerMinute, true
		}
	}
	return p.MaxPerMinute, p.MaxPerMinute > 0
}

// Budget is how many more missions of p may be claimed at now, given the
// claims of the last RateWindow; limited is false when there is no cap
// and no pause.
func (p Portal) Budget(now time.Time, recent int) (n int, limited bool) {
	if p.Paused(now) {
		return 0, true
	}
	limit, capped := p.CapAt(now)
	if !capped {
		return 0, false
	}
	return max(limit-recent, 0), true
}

// Backoff is the length of a pause at level (0 for the first).
func (r WallRules) Backoff(level int) time.Duration {
	d := r.PauseMin
	for range level {
		if d >= r.PauseMax {
			break
		}
		d *= 2
	}
	return min(d, r.PauseMax)
}

// WallsSince says which walls count toward the next pause: those reported
// after windowStart (now less the window) and at or after pauseEnd, the
// end of the last pause (zero if none), so the walls that caused a pause do
// not cause another, nor do those reported while it ran: they came from
// checks claimed before it (no mission of a paused portal is claimed), the
// episode it was for, however many replicas report them at once.
func (p Portal) WallsSince(now time.Time, r WallRules) (windowStart, pauseEnd time.Time) {
	return now.Add(-r.Window), p.Pause.Until
}

// Wall applies a reported wall: walls is the number of walls WallsSince
// counts, this one included; retryAfter is the portal's Retry-After (0
// for none). It pauses p when walls reach the threshold or the portal
// named a Retry-After, for Backoff(level) or retryAfter, whichever is
// longer. A maintenance that names a Retry-After, below the threshold,
// pauses for that (at least PauseMin: each check that meets it charges an
// account a failure) and leaves the level: the portal says when it is
// back, not that it took the checks for a bot, and its slots often open as
// it comes back. One without a Retry-After, or the wall that reaches the
// threshold, is a wall like the others.
//
// A wall while paused (a check claimed before the pause) only lengthens
// the pause to its Retry-After: it never raises the level (it is of the
// episode the pause is for). A bot wall's lengthening of a pause that
// raised the level moves the level's end (LevelUntil) with it; a
// maintenance's leaves it. A bot wall that lengthens a maintenance pause
// makes it read walls (its Reason names the wall, so IsMaintenancePause is
// false and the metric's series is walls), but does not raise the level
// (Level stays the maintenance pause's, and so does the level's end). A
// maintenance that lengthens a pause leaves its Reason: a pause
// reads maintenance only while a maintenance alone has set its end.
//
// A wall that lengthens a pause whose PORTAL_RESUMED is already written
// (Open false: resumed by an operator, or swept as lapsed, by a replica
// whose clock is ahead of this one's) re-opens it (Open, so its end writes
// a PORTAL_RESUMED again) with a Reason naming this wall, still without
// raising the level: a pause it began would count walls of checks claimed
// before the pause toward the level.
//
// Wall returns true when a PORTAL_PAUSED event is due: it began a pause,
// or moved the end of the one running later (the event carries the new
// end; readers of the events learn of a lengthening only so).
func (p *Portal) Wall(now time.Time, o Outcome, walls int, retryAfter time.Duration, r WallRules) (announce bool) {
	if p.Paused(now) {
		until := now.Add(retryAfter)
		if !until.After(p.Pause.Until) {
			return false
		}
		if o != OutcomeMaintenance && p.raisedLevel() {
			p.Pause.LevelUntil = until
		} else {
			p.Pause.LevelUntil = p.levelEnd()
		}
		switch {
		case !p.Pause.Open && o == OutcomeMaintenance && !IsMaintenancePause(p.Pause.Reason):
			// Read as the pause did: a maintenance that lengthens a
			// pause leaves its reading, so the Reason must not begin
			// as a maintenance's.
			p.Pause.Reason = "reopened by " + string(o) + retryAfterReason + retryAfter.String() + ": " + p.Pause.Reason
			p.Pause.Open = true
		case !p.Pause.Open:
			p.Pause.Reason = string(o) + retryAfterReason + retryAfter.String() + ", reopening " + p.Pause.Reason
			p.Pause.Open = true
		case o != OutcomeMaintenance && IsMaintenancePause(p.Pause.Reason):
			p.Pause.Reason = string(o) + retryAfterReason + retryAfter.String() + ", lengthening " + p.Pause.Reason
		}
		p.Pause.Until = until
		return true
	}
	if walls < r.Threshold && retryAfter == 0 {
		return false
	}
	level := p.LevelAt(now, r)
	d, levelUntil := max(r.Backoff(level), retryAfter), time.Time{}
	if o == OutcomeMaintenance && retryAfter > 0 && walls < r.Threshold {
		d, levelUntil = max(retryAfter, r.PauseMin), p.levelEnd()
	} else {
		level++
		levelUntil = now.Add(d)
	}
	reason := fmt.Sprintf("%d walls in %s (last: %s)", walls, r.Window, o)
	if walls < r.Threshold {
		reason = string(o) + retryAfterReason + retryAfter.String()
	}
	p.Pause = Pause{At: now, Until: now.Add(d), Reason: reason, Level: level, LevelUntil: levelUntil, Open: true}
	return true
}

// retryAfterReason joins a wall's outcome and its Retry-After in the
// reason of a pause below the walls threshold.
const retryAfterReason = " with Retry-After "

// IsMaintenancePause says whether a pause's Reason is a maintenance's
// below the walls threshold: the pause lasts the portal's Retry-After and
// leaves the level (the walls that reach the threshold, a maintenance
// among them, give "3 walls in …").
func IsMaintenancePause(reason string) bool {
	return strings.HasPrefix(reason, string(OutcomeMaintenance)+retryAfterReason)
}

// raisedLevel says whether the pause in force (or the last one) raised
// the level: LevelUntil was set when it began, after its start.
func (p Portal) raisedLevel() bool {
	return p.Pause.LevelUntil.After(p.Pause.At) || (p.Pause.LevelUntil.IsZero() && !p.Pause.Until.IsZero())
}

// LevelAt is the level a pause beginning at now builds on: Pause.Level,
// or 0 once the portal has gone r.ResetAfter past the end of the last
// pause that raised it (LevelUntil; Until when none is recorded).
func (p Portal) LevelAt(now time.Time, r WallRules) int {
	end := p.levelEnd()
	if !end.IsZero() && now.Sub(end) >= r.ResetAfter {
		return 0
	}
	return p.Pause.Level
}

// levelEnd is the end the level's reset counts from: LevelUntil, or Until
// when none is recorded (the store reads none for a pause a Requests older
// than 00011 began, lengthened or resumed).
func (p Portal) levelEnd() time.Time {
	if p.Pause.LevelUntil.IsZero() {
		return p.Pause.Until
	}
	return p.Pause.LevelUntil
}

// Resume lifts a pause at now, for an operator; it returns false (and
// changes nothing) when p is not paused, or when its PORTAL_RESUMED is
// already written (Open false) though by now it still runs: a replica
// whose clock is ahead of this one's resumed it, or swept it as lapsed, at
// its own now (a retried ResumePortal that reaches another replica). A
// second resume would write a PORTAL_RESUMED that ends no pause, and move
// the end back to this clock's now.
func (p *Portal) Resume(now time.Time) bool {
	if !p.Pause.Open || !p.Paused(now) {
		return false
	}
	if p.Pause.LevelUntil.After(now) {
		p.Pause.LevelUntil = now
	}
	p.Pause.Until, p.Pause.Reason, p.Pause.Open = now, "resumed by an operator", false
	return true
}

// PortalStatus is a portal's state at one moment (GetPortalStatus, and the
// snapshot portal events carry).
type PortalStatus struct {
	Name             string    `json:"name"`
	Paused           bool      `json:"paused"`
	PausedUntil      time.Time `json:"paused_until"`
	Reason           string    `json:"reason"`
	Level            int       `json:"level"`
	RecentWalls      int       `json:"recent_walls"`
	ChecksLastMinute int       `json:"checks_last_minute"`
	Cap              int       `json:"cap"`
}

// Status is p's status at now, given its recent walls and claims. Its
// Level is LevelAt(now): 0 once the level has reset, as the next pause
// finds it. A pause whose PORTAL_RESUMED is written (Open false) reads
// over even while by now it still runs (a replica whose clock is ahead of
// this one's ended it): the event and that replica's answer said so, and
// a retried ResumePortal answers as the first. This replica still claims
// none of the portal's missions until its clock reaches Until (Budget), at
// most the clocks' skew, and a wall it takes in that time re-opens the
// pause (Wall).
func (p Portal) Status(now time.Time, r WallRules, walls, claims int) PortalStatus {
	limit, _ := p.CapAt(now)
	return PortalStatus{Name: p.Name, Paused: p.Pause.Open && p.Paused(now), PausedUntil: p.Pause.Until, Reason: p.Pause.Reason,
		Level: p.LevelAt(now, r), RecentWalls: walls, ChecksLastMinute: claims, Cap: limit}
}

// PortalFields are the settings a caller changes: those that are non-nil.
type PortalFields struct {
	MaxPerMinute       *int32
	Timezone           *string
	QuietStart         *string
	QuietEnd           *string
	QuietMaxPerMinute  *int32
	MinMissionInterval *time.Duration
}

// ValidPortalName checks a portal name (PortalPattern).
func ValidPortalName(p *apirule.FieldErrors, field, name string) {
	if !portalRE.MatchString(name) {
		p.Add(field, "must match %s (lower-case letters, digits, _ or -), e.g. \"vfs\"", PortalPattern)
	}
}

// Apply validates the fields that are set and writes them to pt, then
// checks the result as a whole (quiet hours' rate within the cap).
func (f PortalFields) Apply(p *apirule.FieldErrors, pt *Portal) {
	if f.MaxPerMinute != nil {
		if n := *f.MaxPerMinute; n < 0 || n > MaxChecksPerMinute {
			p.Add("max_checks_per_minute", "must be 0 (no cap) to %d, got %d", MaxChecksPerMinute, n)
		} else {
			pt.MaxPerMinute = int(n)
		}
	}
	if f.Timezone != nil {
		MissionFields{Timezone: f.Timezone}.Apply(p, &Mission{})
		pt.Timezone = strings.TrimSpace(*f.Timezone)
	}
	if (f.QuietStart == nil) != (f.QuietEnd == nil) {
		p.Add("quiet_start", "quiet_start and quiet_end are set together")
	} else if f.QuietStart != nil {
		s, e := strings.TrimSpace(*f.QuietStart), strings.TrimSpace(*f.QuietEnd)
		switch {
		case s == "" && e == "":
			pt.HasQuiet, pt.QuietStart, pt.QuietEnd = false, 0, 0
		default:
			start, okS := clockMinute(p, "quiet_start", s)
			end, okE := clockMinute(p, "quiet_end", e)
			if okS && okE {
				if start == end {
					p.Add("quiet_end", "must differ from quiet_start")
				}
				pt.HasQuiet, pt.QuietStart, pt.QuietEnd = true, start, end
			}
		}
	}
	if f.QuietMaxPerMinute != nil {
		if n := *f.QuietMaxPerMinute; n < 0 || n > MaxChecksPerMinute {
			p.Add("quiet_max_checks_per_minute", "must be 0 to %d, got %d", MaxChecksPerMinute, n)
		} else {
			pt.QuietMaxPerMinute = int(n)
		}
	}
	if f.MinMissionInterval != nil {
		if d := *f.MinMissionInterval; d < 0 || d > MaxMinMissionInterval {
			p.Add("min_mission_interval", "must be 0 to %s, got %s", MaxMinMissionInterval, d)
		} else {
			pt.MinMissionInterval = d.Truncate(time.Microsecond)
		}
	}
	if p.Len() == 0 && pt.HasQuiet && pt.MaxPerMinute > 0 && pt.QuietMaxPerMinute > pt.MaxPerMinute {
		p.Add("quiet_max_checks_per_minute", "must not exceed max_checks_per_minute (%d), got %d", pt.MaxPerMinute, pt.QuietMaxPerMinute)
	}
}

// clockMinute parses "HH:MM" into minutes after midnight.
func clockMinute(p *apirule.FieldErrors, field, s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		p.Add(field, "must be a time of day HH:MM (00:00 to 23:59), got %q", s)
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// ClockString formats minutes after midnight as HH:MM.
func ClockString(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
