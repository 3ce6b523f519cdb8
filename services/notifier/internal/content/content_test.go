package content_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf16"

	"github.com/slotwatch/slotwatch/services/notifier/internal/content"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
)

func TestShippedTemplatesLoad(t *testing.T) {
	t.Parallel()
	tmpl, err := content.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("SlotFoundNamesEverythingInThePortalsZone", func(t *testing.T) {
		t.Parallel()
		e := content.Sample(domain.SlotFound)
		for _, lang := range domain.Languages {
			m, err := tmpl.Render(lang, false, e, "k-1")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Ada Lovelace", "fra", "paris", "tourism", "2030-07-03 09:30", "Europe/Paris",
				"2030-06-01 10:30 CEST", "requests book " + e.RequestID, ":resume", "ResumeWatching", "ConfirmBooked"} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("%s text lacks %q:\n%s", lang, want, m.Text)
				}
			}
			if !strings.Contains(m.HTML, "Ada Lovelace") || !strings.Contains(m.Subject, "2030-07-03 09:30") {
				t.Errorf("%s: html or subject incomplete: %q", lang, m.Subject)
			}
			var body map[string]any
			if err := json.Unmarshal(m.JSON, &body); err != nil || body["idempotency_key"] != "k-1" || body["type"] != "slot_found" {
				t.Errorf("%s json: %s (%v)", lang, m.JSON, err)
			}
		}
	})
	t.Run("HTMLEscapesWhatRequestsStores", func(t *testing.T) {
		t.Parallel()
		e := content.Sample(domain.SlotFound)
		e.ApplicantName = `<script>alert(1)</script>`
		m, err := tmpl.Render("en", false, e, "k")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.HTML, "<script>") {
			t.Errorf("html not escaped: %s", m.HTML)
		}
	})
	t.Run("RenderJSONIsRenderWithoutHTML", func(t *testing.T) {
		t.Parallel()
		for _, operator := range []bool{false, true} {
			e := content.Sample(domain.SlotFound)
			full, err := tmpl.Render("fr", operator, e, "k-2")
			if err != nil {
				t.Fatal(err)
			}
			hook, err := tmpl.RenderJSON("fr", operator, e, "k-2")
			if err != nil {
				t.Fatal(err)
			}
			if hook.HTML != "" || hook.Subject != full.Subject || hook.Text != full.Text || string(hook.JSON) != string(full.JSON) {
				t.Errorf("operator %v: RenderJSON %+v\nRender %+v", operator, hook, full)
			}
		}
	})
	t.Run("ManySlotsListTheFirstAndCountTheRest", func(t *testing.T) {
		t.Parallel()
		e := content.Sample(domain.SlotFound)
		e.Slots = nil
		for i := range 200 {
			e.Slots = append(e.Slots, content.Slot{Date: fmt.Sprintf("2030-%02d-%02d", 1+i/28, 1+i%28), Time: "09:30"})
		}
		last := e.Slots[content.MaxListedSlots-1].String()
		unlisted := e.Slots[content.MaxListedSlots].String()
		for lang, more := range map[string]string{"en": "and 180 more", "fr": "et 180 autres"} {
			for _, operator := range []bool{false, true} {
				m, err := tmpl.Render(lang, operator, e, "k")
				if err != nil {
					t.Fatal(err)
				}
				// What Telegram's sendMessage gets: at most 4,096 UTF-16
				// code units, or it refuses the message for good.
				telegram := m.Subject + "\n\n" + m.Text
				if n := len(utf16.Encode([]rune(telegram))); n > 4096 {
					t.Errorf("%s: %d UTF-16 code units for Telegram", lang, n)
				}
				for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
					if !strings.Contains(body, last) || strings.Contains(body, unlisted) || !strings.Contains(body, more) {
						t.Errorf("%s %s: want slots up to %s, not %s, and %q:\n%s", lang, part, last, unlisted, more, body)
					}
				}
				var body webhookBody
				if err := json.Unmarshal(m.JSON, &body); err != nil || len(body.Request.Slots) != 200 || body.Request.SlotCount != 200 {
					t.Errorf("%s: the JSON has %d slots, slot_count %d (%v); want all 200", lang, len(body.Request.Slots), body.Request.SlotCount, err)
				}
			}
		}
	})
	// Requests keeps a request's earliest 20 matched slots and counts
	// them all (matched_slot_count): the message says how many more there
	// are beyond those it lists, the webhook's JSON gives the count.
	t.Run("SlotsMatchedBeyondThoseRequestsKeptAreCounted", func(t *testing.T) {
		t.Parallel()
		e := content.Sample(domain.SlotFound)
		e.Slots = nil
		for i := range content.MaxListedSlots {
			e.Slots = append(e.Slots, content.Slot{Date: fmt.Sprintf("2030-07-%02d", 1+i), Time: "09:30"})
		}
		e.SlotCount = 45
		for lang, more := range map[string]string{"en": "and 25 more", "fr": "et 25 autres"} {
			m, err := tmpl.Render(lang, false, e, "k")
			if err != nil {
				t.Fatal(err)
			}
			for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				if !strings.Contains(body, e.Slots[len(e.Slots)-1].String()) || !strings.Contains(body, more) {
					t.Errorf("%s %s: want the 20 slots and %q:\n%s", lang, part, more, body)
				}
			}
			var body webhookBody
			if err := json.Unmarshal(m.JSON, &body); err != nil || len(body.Request.Slots) != 20 || body.Request.SlotCount != 45 {
				t.Errorf("%s: the JSON has %d slots, slot_count %d (%v); want 20 and 45", lang, len(body.Request.Slots), body.Request.SlotCount, err)
			}
		}
	})
	t.Run("UnknownZoneFallsBackToUTC", func(t *testing.T) {
		t.Parallel()
		e := content.Sample(domain.Expired)
		for _, tz := range []string{"", "Mars/Olympus_Mons"} {
			e.Timezone = tz
			m, err := tmpl.Render("fr", true, e, "k")
			if err != nil || !strings.Contains(m.Text, "UTC") {
				t.Fatalf("zone %q: %v\n%s", tz, err, m.Text)
			}
		}
	})
}

func TestBrokenTemplateStopsLoad(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{}
	for _, lang := range domain.Languages {
		for _, ev := range content.Events {
			base := "templates/" + lang + "/" + string(ev)
			fsys[base+".txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}s{{end}}{{define "text"}}t{{end}}`)}
			fsys[base+".html"] = &fstest.MapFile{Data: []byte(`{{define "html"}}h{{end}}`)}
		}
	}
	if _, err := content.LoadFS(fsys); err != nil {
		t.Fatalf("a complete set: %v", err)
	}
	// A field the view does not have fails at start, not at the first slot.
	fsys["templates/fr/expired.txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}{{.PassportNumber}}{{end}}{{define "text"}}t{{end}}`)}
	if _, err := content.LoadFS(fsys); err == nil || !strings.Contains(err.Error(), "fr/expired") {
		t.Fatalf("err = %v, want one naming fr/expired", err)
	}
	delete(fsys, "templates/en/cancelled.html")
	if _, err := content.LoadFS(fsys); err == nil || !strings.Contains(err.Error(), "en/cancelled.html") {
		t.Fatalf("err = %v, want one naming the missing file", err)
	}
}

// BenchmarkRender is the consumer's rendering of one delivery: all parts
// (email, Telegram) and the webhook's (no HTML).
func BenchmarkRender(b *testing.B) {
	tmpl, err := content.Load()
	if err != nil {
		b.Fatal(err)
	}
	e := content.Sample(domain.SlotFound)
	for _, bm := range []struct {
		name   string
		render func(string, bool, content.Event, string) (content.Message, error)
	}{{"All", tmpl.Render}, {"Webhook", tmpl.RenderJSON}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.render("en", false, e, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// webhookBody is the part of a webhook's JSON the slot tests read.
type webhookBody struct {
	Request struct {
		Slots     []content.Slot
		SlotCount int `json:"slot_count"`
	} `json:"request"`
}
