package demo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind is which of the Checker's log lines an Event came from.
type EventKind int

// The Checker log lines the demo shows (its JSON slog messages).
const (
	SessionStarted  EventKind = iota + 1 // "session started"
	CheckFinished                        // "check finished"
	NoAccountFree                        // "no account free"
	SessionFinished                      // "session finished"
	CheckerProblem                       // any line at level ERROR
	// MissionNotChecked ("mission not checked"): the Checker gave a
	// claimed mission up without checking it (no account before the
	// claim's deadline, or stopping). Not in the log contract the demo
	// relies on; shown when the Checker logs it.
	MissionNotChecked
)

// Event is one line of the Checker's log that the demo shows. Fields a
// line does not carry stay zero.
type Event struct {
	Kind EventKind
	Time time.Time
	// Session is the Checker's session number (or id), as it logs it.
	Session string
	// Missions are the missions a session started with (SessionStarted).
	Missions []string
	Mission  string
	// Account of a check.
	AccountID    int64
	AccountEmail string
	// Outcome is success, no_slot, login_fail, banned or error.
	Outcome  string
	Slots    int
	Matched  int
	Duration time.Duration
	Detail   string
	// LoggedIn: the check logged in; SessionReused: it went on with a
	// portal session the pool kept (CheckFinished).
	LoggedIn, SessionReused bool
	// RetryAfter is how long the Checker waits for an account (NoAccountFree).
	RetryAfter time.Duration
	// Checks is how many checks a session did (SessionFinished).
	Checks int
	// Message is the log message of a CheckerProblem, with its error.
	Message string
}

// ParseCheckerLine reads one line of the Checker's stderr. It reports false
// for lines the demo does not show: other messages, and anything that is not
// a JSON object (a panic, Chromium's own chatter).
func ParseCheckerLine(line []byte) (Event, bool) {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return Event{}, false
	}
	msg, _ := m["msg"].(string)
	e := Event{Session: text(m["session"])}
	if t, err := time.Parse(time.RFC3339Nano, text(m["time"])); err == nil {
		e.Time = t
	}
	switch msg {
	case "session started":
		e.Kind = SessionStarted
		e.Missions = list(m["missions"])
		if e.Missions == nil {
			e.Missions = list(m["mission_codes"]) // when missions is a count
		}
	case "check finished":
		e.Kind = CheckFinished
		e.Mission = text(m["mission"])
		e.AccountID = int64(number(m["account_id"]))
		e.AccountEmail = text(m["account_email"])
		e.Outcome = text(m["outcome"])
		e.Slots = int(number(m["slots"]))
		e.Matched = int(number(m["matched"]))
		e.Duration = time.Duration(number(m["duration_ms"]) * float64(time.Millisecond))
		e.Detail = text(m["detail"])
		e.LoggedIn, _ = m["logged_in"].(bool)
		e.SessionReused, _ = m["session_reused"].(bool)
	case "no account free":
		e.Kind = NoAccountFree
		e.Mission = text(m["mission"])
		d, err := time.ParseDuration(text(m["retry_after"]))
		if err != nil {
			d = time.Duration(number(m["retry_after_ms"]) * float64(time.Millisecond))
		}
		e.RetryAfter = d
	case "mission not checked":
		e.Kind = MissionNotChecked
		e.Mission = text(m["mission"])
		e.Outcome = text(m["outcome"])
		e.Detail = text(m["detail"])
	case "session finished":
		e.Kind = SessionFinished
		e.Checks = int(number(m["checks"]))
	default:
		if level, _ := m["level"].(string); !strings.EqualFold(level, "ERROR") {
			return Event{}, false
		}
		e.Kind = CheckerProblem
		e.Message = msg
		if err := text(m["error"]); err != "" {
			e.Message += ": " + err
		} else if err := text(m["err"]); err != "" {
			e.Message += ": " + err
		}
	}
	return e, true
}

// text renders a JSON value that should be a string; numbers (a session
// logged as 3 rather than "3") come out as they were written.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// number reads a JSON number, or a string holding one.
func number(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case string:
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return 0
}

// list reads ["fra","bel"], or "fra,bel", or a bare count (which names
// nothing: nil).
func list(v any) []string {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, text(x))
		}
		return out
	case string:
		if v == "" {
			return nil
		}
		out := strings.Split(v, ",")
		for i := range out {
			out[i] = strings.TrimSpace(out[i])
		}
		return out
	}
	return nil
}
