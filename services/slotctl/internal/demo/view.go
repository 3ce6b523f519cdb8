package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// View writes the demo's session view: a line per check, a pool line per
// session, a line when the Checker waits for an account, and what was found
// for whom. Every line starts with the time since the View's start (mm:ss),
// so cooldowns can be read off the screen.
type View struct {
	w     io.Writer
	start time.Time
	now   func() time.Time
	// names are the missions' names by code (fra → France).
	names map[string]string
}

// NewView returns a View writing to w, timing from start.
func NewView(w io.Writer, start time.Time, now func() time.Time, missionNames map[string]string) *View {
	return &View{w: w, start: start, now: now, names: missionNames}
}

// stampWidth is the width of "mm:ss  ", the prefix of every line.
const stampWidth = 7

func (v *View) stamp() string {
	d := v.now().Sub(v.start)
	if d < 0 {
		d = 0
	}
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d  ", s/60, s%60)
}

func (v *View) line(format string, args ...any) {
	fmt.Fprintf(v.w, v.stamp()+format+"\n", args...)
}

// indented is a line that continues the one above it (no time).
func (v *View) indented(format string, args ...any) {
	fmt.Fprintf(v.w, strings.Repeat(" ", stampWidth)+format+"\n", args...)
}

// Check is one check's line:
//
//	00:05  session 3  fra  acc3@demo.test  no_slot     0 slots  1.2s
func (v *View) Check(e Event) {
	slots := plural(e.Slots, "slot")
	if e.Slots > 0 || e.Matched > 0 {
		slots += fmt.Sprintf(" (%d matched)", e.Matched)
	}
	acct := e.AccountEmail
	if acct == "" && e.AccountID != 0 {
		acct = fmt.Sprintf("account %d", e.AccountID)
	}
	l := fmt.Sprintf("session %-3s %-4s %-15s %-10s %-19s %s", e.Session, e.Mission, acct, e.Outcome, slots, seconds(e.Duration))
	if e.Outcome != "success" && e.Outcome != "no_slot" && e.Detail != "" {
		l += "  " + clip(e.Detail, 100)
	}
	v.line("%s", l)
}

// NotChecked is the line of a mission the Checker gave up without a
// check:
//
//	00:40  session 12  bel  not checked (no_account): checker is stopping
func (v *View) NotChecked(e Event) {
	l := fmt.Sprintf("session %-3s %-4s not checked", e.Session, e.Mission)
	if e.Outcome != "" {
		l += " (" + e.Outcome + ")"
	}
	if e.Detail != "" {
		l += ": " + clip(e.Detail, 120)
	}
	v.line("%s", l)
}

// Freeing is the account whose rest ends first, when none is free.
type Freeing struct {
	Email string
	// Rest is "cooldown" or "quarantine".
	Rest string
}

// Waiting is the line of a Checker waiting for an account:
//
//	00:13  session 4   fra  no account free: waiting 7s, until acc1@demo.test's cooldown ends
func (v *View) Waiting(e Event, next Freeing) {
	until := "until an account is free again"
	if next.Email != "" {
		until = fmt.Sprintf("until %s's %s ends", next.Email, next.Rest)
	}
	v.line("session %-3s %-4s no account free: the Checker waits %s, %s", e.Session, e.Mission, whole(e.RetryAfter), until)
}

// PoolCounts is AccountPool's GetPoolStatus, as the demo shows it.
type PoolCounts struct {
	Available, Leased, Cooldown, Quarantined, Disabled int
	// NextFree is how long until the next account is free; 0 when one is
	// free now or none will be.
	NextFree time.Duration
}

// Pool is the pool's line after a session:
//
//	pool: 0 available, 6 cooling down, next free in 14s
func (v *View) Pool(p PoolCounts) {
	parts := []string{fmt.Sprintf("%d available", p.Available)}
	for _, c := range []struct {
		n    int
		what string
	}{{p.Leased, "leased"}, {p.Cooldown, "cooling down"}, {p.Quarantined, "quarantined"}, {p.Disabled, "disabled"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if p.Available == 0 && p.NextFree > 0 {
		parts = append(parts, "next free in "+whole(p.NextFree))
	}
	v.indented("pool: %s", strings.Join(parts, ", "))
}

// Problem is an error the Checker logged.
func (v *View) Problem(e Event) {
	v.line("checker error: %s", clip(e.Message, 160))
}

// Note is a line about the demo itself (a slot appearing, a warning).
func (v *View) Note(format string, args ...any) {
	v.line(format, args...)
}

// Found is a request that got a slot, and the email that announced it.
type Found struct {
	Applicant    string
	Mission      string
	Centre       string
	VisaCategory string
	Date, Time   string
	// To, Subject: the email's recipient and subject; Latency from the
	// check that found the slot (its SLOT_FOUND event) to the email's
	// arrival; File where the demo saved it. No email line without To.
	To, Subject string
	Latency     time.Duration
	File        string
}

// Found writes what was found for whom, and the email that said so:
//
//	FOUND  Amélie Laurent: France (fra), London, tourism, 2026-03-12 09:30
//	       email to amelie.laurent@example.com 412ms after the check: "Slot found: fra London, ..." (.data/mail/001.eml)
func (v *View) Found(f Found) {
	when := f.Date
	if f.Time != "" {
		when += " " + f.Time
	}
	v.line("FOUND  %s: %s, %s, %s, %s", f.Applicant, v.Mission(f.Mission), f.Centre, f.VisaCategory, when)
	if f.To != "" {
		file := ""
		if f.File != "" {
			file = " (" + f.File + ")"
		}
		v.indented("       email to %s %s after the check: %q%s", f.To, f.Latency.Round(time.Millisecond), f.Subject, file)
	}
}

// Hook is the operator's webhook's line:
//
//	01:15  webhook  slot_found to the operator, signature verified, 38ms after the check (Idempotency-Key slotwatch-5-0190...)
func (v *View) Hook(h Hook) {
	v.line("webhook  %s to the operator, signature verified, %s after the check (Idempotency-Key %s)",
		h.Type, h.Received.Sub(h.OccurredAt).Round(time.Millisecond), h.Key)
}

// Mission is "France (fra)", or the bare code of a mission without a name.
func (v *View) Mission(code string) string {
	if n := v.names[code]; n != "" && n != code {
		return fmt.Sprintf("%s (%s)", n, code)
	}
	return code
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// seconds is a duration as the demo shows it: 1.2s under a minute, 1m05s
// above.
func seconds(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// whole is a wait in whole seconds (rounded up: "free in 0s" would be
// wrong): 14s, 1m5s.
func whole(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Second - 1) / time.Second * time.Second).String()
}

// clip keeps a log detail to one short line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
