// Package content renders the Notifier's messages from per-language
// template files (templates/<language>/<event>.txt with "subject" and
// "text", and <event>.html with "html"), embedded in the binary. Load
// parses every file and renders each against a sample, so a broken
// template stops the service at start rather than at the first slot found.
//
// A message names the applicant, the mission, centre, category and the
// slots in the portal's time zone, and says what to do next. It never holds
// a passport number or a portal password: Event has no field for them.
package content

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
)

//go:embed templates
var files embed.FS

// Events are the event types with templates.
var Events = []domain.EventType{domain.SlotFound, domain.Expired, domain.Cancelled}

// Slot is one free appointment as the portal shows it: a date and a time
// of day in the portal's time zone.
type Slot struct {
	Date string `json:"date"`
	Time string `json:"time,omitempty"`
}

func (s Slot) String() string {
	if s.Time == "" {
		return s.Date
	}
	return s.Date + " " + s.Time
}

// Event is what a message tells of: a Requests event, with the
// applicant's name and the mission's time zone looked up.
type Event struct {
	Cursor        int64
	Type          domain.EventType
	OccurredAt    time.Time
	RequestID     string
	ApplicantID   string
	ApplicantName string
	MissionCode   string
	Centre        string
	Category      string
	EarliestDate  string
	LatestDate    string
	// Slots are the matched slots Requests keeps (the earliest
	// apirule.MaxSlotsPerRequest); SlotCount is how many matched in all
	// (matched_slot_count), 0 when unknown.
	Slots     []Slot
	SlotCount int
	// Timezone is the mission's IANA zone: the portal's dates and times
	// are in it, and OccurredAt is shown in it.
	Timezone string
}

// Message is a rendered message, as the delivery log stores it.
type Message struct {
	Subject string
	Text    string
	HTML    string
	JSON    []byte
}

// MaxListedSlots is the most slots a message lists; it says how many
// more there are (the webhook's JSON has every slot Requests keeps, and
// the count of all). A page of slots in a
// message is more than a reader goes through, and Telegram refuses a
// message over 4,096 characters: some 140 slots.
const MaxListedSlots = 20

// view is what the templates see.
type view struct {
	ApplicantName string
	Operator      bool
	MissionCode   string
	Centre        string
	Category      string
	// Slots are the first MaxListedSlots; MoreSlots is how many follow.
	Slots        []Slot
	MoreSlots    int
	FirstSlot    string
	Timezone     string
	EarliestDate string
	LatestDate   string
	RequestID    string
	OccurredAt   string
}

// Templates are the parsed templates of every language and event.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
	// zones caches the missions' time zones by name (time.LoadLocation
	// reads and parses the zone file at each call).
	zones sync.Map
}

func key(lang string, t domain.EventType) string { return lang + "/" + string(t) }

// Load parses the embedded templates and validates them.
func Load() (*Templates, error) { return LoadFS(files) }

// LoadFS parses templates/<language>/<event>.{txt,html} from fsys for
// every language of domain.Languages and every event of Events, and
// renders each against a sample.
func LoadFS(fsys fs.FS) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	var errs []error
	for _, lang := range domain.Languages {
		for _, ev := range Events {
			base := "templates/" + lang + "/" + string(ev)
			tt, err := texttemplate.New("").Option("missingkey=error").ParseFS(fsys, base+".txt")
			if err != nil {
				errs = append(errs, fmt.Errorf("template %s.txt: %w", base, err))
				continue
			}
			ht, err := htmltemplate.New("").Option("missingkey=error").ParseFS(fsys, base+".html")
			if err != nil {
				errs = append(errs, fmt.Errorf("template %s.html: %w", base, err))
				continue
			}
			for _, name := range []string{"subject", "text"} {
				if tt.Lookup(name) == nil {
					errs = append(errs, fmt.Errorf("template %s.txt: defines no %q", base, name))
				}
			}
			if ht.Lookup("html") == nil {
				errs = append(errs, fmt.Errorf("template %s.html: defines no \"html\"", base))
			}
			t.text[key(lang, ev)], t.html[key(lang, ev)] = tt, ht
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, lang := range domain.Languages {
		for _, ev := range Events {
			// The sample, and one with more slots than a message lists.
			long := Sample(ev)
			for len(long.Slots) <= MaxListedSlots {
				long.Slots = append(long.Slots, long.Slots[0])
			}
			for _, e := range []Event{Sample(ev), long} {
				for _, operator := range []bool{false, true} {
					if _, err := t.Render(lang, operator, e, "sample-key"); err != nil {
						errs = append(errs, fmt.Errorf("template %s/%s against a sample: %w", lang, ev, err))
					}
				}
			}
		}
	}
	return t, errors.Join(errs...)
}

// Sample is an event of type t with every field set, which Load renders
// every template against.
func Sample(t domain.EventType) Event {
	return Event{
		Cursor: 42, Type: t, OccurredAt: time.Date(2030, 6, 1, 8, 30, 0, 0, time.UTC),
		RequestID: "0190a8c4-0000-7000-8000-000000000001", ApplicantID: "0190a8c4-0000-7000-8000-000000000002",
		ApplicantName: "Ada Lovelace", MissionCode: "fra", Centre: "paris", Category: "tourism",
		EarliestDate: "2030-07-01", LatestDate: "2030-07-10",
		Slots:    []Slot{{Date: "2030-07-03", Time: "09:30"}, {Date: "2030-07-04"}},
		Timezone: "Europe/Paris",
	}
}

// Render renders the message of e for a recipient reading lang: an
// applicant's contact, or an operator's subscription. key is the
// delivery's idempotency key, which the JSON body carries too (idemKey).
func (t *Templates) Render(lang string, operator bool, e Event, idemKey string) (Message, error) {
	return t.render(lang, operator, e, idemKey, true)
}

// RenderJSON is Render without the HTML body: what a webhook posts (the
// JSON, which holds the subject and the text).
func (t *Templates) RenderJSON(lang string, operator bool, e Event, idemKey string) (Message, error) {
	return t.render(lang, operator, e, idemKey, false)
}

func (t *Templates) render(lang string, operator bool, e Event, idemKey string, withHTML bool) (Message, error) {
	tt, ok := t.text[key(lang, e.Type)]
	if !ok {
		return Message{}, fmt.Errorf("no template for %s in %q", e.Type, lang)
	}
	ht := t.html[key(lang, e.Type)]
	loc, ok := t.location(e.Timezone)
	if !ok {
		loc, e.Timezone = time.UTC, "UTC"
	}
	v := view{
		ApplicantName: e.ApplicantName, Operator: operator, MissionCode: e.MissionCode, Centre: e.Centre, Category: e.Category,
		Slots: e.Slots, Timezone: e.Timezone, EarliestDate: e.EarliestDate, LatestDate: e.LatestDate, RequestID: e.RequestID,
		OccurredAt: e.OccurredAt.In(loc).Format("2006-01-02 15:04 MST"),
	}
	if len(e.Slots) > 0 {
		v.FirstSlot = e.Slots[0].String()
	}
	if len(v.Slots) > MaxListedSlots {
		v.Slots = v.Slots[:MaxListedSlots]
	}
	v.MoreSlots = e.slotCount() - len(v.Slots)
	var subject, text, html bytes.Buffer
	text.Grow(1024)
	if err := tt.ExecuteTemplate(&subject, "subject", v); err != nil {
		return Message{}, err
	}
	if err := tt.ExecuteTemplate(&text, "text", v); err != nil {
		return Message{}, err
	}
	if withHTML {
		html.Grow(2048)
		if err := ht.ExecuteTemplate(&html, "html", v); err != nil {
			return Message{}, err
		}
	}
	// A centre or a name from Requests may hold a line break: the
	// subject is made one line rather than refused.
	s := channel.OneLine(subject.String())
	if s == "" {
		return Message{}, errors.New("the subject is empty")
	}
	m := Message{Subject: s, Text: strings.TrimLeft(text.String(), "\n"), HTML: strings.TrimLeft(html.String(), "\n")}
	var err error
	m.JSON, err = json.Marshal(payload{
		Type: string(e.Type), EventCursor: e.Cursor, OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano), IdempotencyKey: idemKey,
		Language: lang, Subject: m.Subject, Text: m.Text,
		Request: requestJSON{ID: e.RequestID, MissionCode: e.MissionCode, Centre: e.Centre, VisaCategory: e.Category,
			EarliestDate: e.EarliestDate, LatestDate: e.LatestDate, Slots: e.Slots, SlotCount: e.slotCount(), Timezone: e.Timezone},
		Applicant: applicantJSON{ID: e.ApplicantID, FullName: e.ApplicantName},
	})
	return m, err
}

// slotCount is how many slots matched in all: SlotCount, or the slots
// listed when that is unknown (or, from an older Requests, fewer).
func (e Event) slotCount() int {
	return max(e.SlotCount, len(e.Slots))
}

// location is the zone named tz; false for "" or an unknown name.
func (t *Templates) location(tz string) (*time.Location, bool) {
	if tz == "" {
		return nil, false
	}
	if loc, ok := t.zones.Load(tz); ok {
		return loc.(*time.Location), true
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, false
	}
	t.zones.Store(tz, loc)
	return loc, true
}

// payload is a webhook's JSON body (docs/NOTIFIER.md).
type payload struct {
	Type           string        `json:"type"`
	EventCursor    int64         `json:"event_cursor"`
	OccurredAt     string        `json:"occurred_at"`
	IdempotencyKey string        `json:"idempotency_key"`
	Language       string        `json:"language"`
	Subject        string        `json:"subject"`
	Text           string        `json:"text"`
	Request        requestJSON   `json:"request"`
	Applicant      applicantJSON `json:"applicant"`
}

type requestJSON struct {
	ID           string `json:"id"`
	MissionCode  string `json:"mission_code"`
	Centre       string `json:"centre"`
	VisaCategory string `json:"visa_category"`
	EarliestDate string `json:"earliest_date"`
	LatestDate   string `json:"latest_date"`
	Slots        []Slot `json:"slots"`
	SlotCount    int    `json:"slot_count"`
	Timezone     string `json:"timezone"`
}

type applicantJSON struct {
	ID       string `json:"id,omitempty"`
	FullName string `json:"full_name,omitempty"`
}
