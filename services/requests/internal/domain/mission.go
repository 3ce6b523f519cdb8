package domain

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Mission is a mission's settings. Every mission code a request names has
// one, with the defaults (no portal, DefaultTimezone) until an operator
// sets them.
type Mission struct {
	Code string
	// Portal names the portal (the Checker's profile) the mission is
	// checked on; empty when not set.
	Portal string
	// Timezone is the IANA name of the zone the portal's dates are in: a
	// request's window and a slot's date are calendar days there, so the
	// mission's today (Mission.Today) is the day it is there.
	Timezone  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultTimezone is the zone of a mission without settings.
const DefaultTimezone = "UTC"

// PortalPattern is the form of a portal name (a Checker profile's name).
const PortalPattern = `^[a-z0-9_-]{1,32}$`

// MaxTimezoneLen bounds a time zone name (the longest IANA name is about
// 30 characters).
const MaxTimezoneLen = 64

var portalRE = regexp.MustCompile(PortalPattern)

// NewMission is a mission with the defaults, first seen at now.
func NewMission(code string, now time.Time) Mission {
	return Mission{Code: code, Timezone: DefaultTimezone, CreatedAt: now, UpdatedAt: now}
}

// Today is the calendar day it is at now in the mission's zone.
func (m Mission) Today(now time.Time) time.Time { return Today(now, Zone(m.Timezone)) }

// MissionFields are the settings a caller changes: those that are non-nil.
type MissionFields struct {
	Portal   *string
	Timezone *string
}

// Apply validates the fields that are set and writes them to m. A portal
// is empty (cleared) or matches PortalPattern; a time zone is a name
// time.LoadLocation knows, other than "" and "Local" (which mean UTC and
// the server's own zone to Go, not a portal's).
func (f MissionFields) Apply(p *apirule.FieldErrors, m *Mission) {
	if f.Portal != nil {
		m.Portal = strings.TrimSpace(*f.Portal)
		if m.Portal != "" && !portalRE.MatchString(m.Portal) {
			p.Add("portal", "must match %s (lower-case letters, digits, _ or -), e.g. \"vfs\", or be empty", PortalPattern)
		}
	}
	if f.Timezone != nil {
		m.Timezone = strings.TrimSpace(*f.Timezone)
		if !p.Required("timezone", m.Timezone) {
			return
		}
		if len(m.Timezone) > MaxTimezoneLen {
			p.Add("timezone", "must be at most %d characters, got %d", MaxTimezoneLen, len(m.Timezone))
			return
		}
		if _, err := LoadZone(m.Timezone); err != nil {
			p.Add("timezone", "must be an IANA time zone name such as Europe/Paris, America/Los_Angeles or UTC")
		}
	}
}

// zones caches loaded locations: time.LoadLocation reads the zone file on
// every call, and claims look zones up on every call.
var zones sync.Map // name → *time.Location

// LoadZone loads the named IANA zone. "" and "Local" are refused: Go reads
// them as UTC and as the server's own zone.
func LoadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errUnknownZone
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, l)
	return l, nil
}

var errUnknownZone = errors.New("not an IANA time zone name")

// Zone is the stored zone name's location. Names are validated before they
// are stored; one that no longer loads (a tz database without it) counts
// as UTC, as a mission without settings does, rather than stopping every
// claim.
func Zone(name string) *time.Location {
	l, err := LoadZone(name)
	if err != nil {
		return time.UTC
	}
	return l
}
