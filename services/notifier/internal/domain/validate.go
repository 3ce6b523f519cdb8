package domain

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Limits on input.
const (
	MaxURLLen        = 2048
	MinSecretLen     = 32
	MaxSecretLen     = 256
	MaxMissionCodes  = 100
	MaxTelegramIDLen = 64
)

// telegramChannelRE is a public channel's @username.
var telegramChannelRE = regexp.MustCompile(`^@[A-Za-z][A-Za-z0-9_]{4,31}$`)

// TelegramChat reads a Telegram chat as sendMessage takes it: a chat id
// (a non-zero 64-bit integer, negative for groups and channels) as an
// int64, or a public channel's @username as a string; ok is false for
// anything else. Validation and the Telegram channel both read it here.
func TelegramChat(s string) (chat any, ok bool) {
	if telegramChannelRE.MatchString(s) {
		return s, true
	}
	if strings.HasPrefix(s, "+") {
		return nil, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id == 0 {
		return nil, false
	}
	return id, true
}

// Address records a violation unless s is an address of kind: an email
// address, a Telegram chat id or @channel, or an https URL (http only to a
// loopback host, for a receiver on the same machine).
func Address(p *apirule.FieldErrors, field string, kind channel.Kind, s string) {
	if !p.Required(field, s) {
		return
	}
	switch kind {
	case channel.Email:
		p.Email(field, s)
	case channel.Telegram:
		if _, ok := TelegramChat(s); !ok {
			p.Add(field, "must be a Telegram chat id such as 123456789 or -1001234567890, or a channel such as @slotwatch")
		}
	case channel.Webhook:
		webhookURL(p, field, s)
	}
}

func webhookURL(p *apirule.FieldErrors, field, s string) {
	if utf8.RuneCountInString(s) > MaxURLLen {
		p.Add(field, "must be at most %d characters", MaxURLLen)
		return
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		p.Add(field, "must be an absolute URL such as https://example.com/hooks/slotwatch")
		return
	}
	if u.User != nil {
		p.Add(field, "must not carry credentials: the signature authenticates the sender")
		return
	}
	if u.Fragment != "" {
		p.Add(field, "must not have a fragment")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !auth.IsLoopback(u.Hostname()) {
			p.Add(field, "must be https: plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost)")
		}
	default:
		p.Add(field, "must be an https URL")
	}
}

// Language reads a language; empty means the default.
func Language(p *apirule.FieldErrors, field, s string) string {
	if s == "" {
		return Languages[0]
	}
	if !slices.Contains(Languages, s) {
		p.Add(field, "must be one of %s", strings.Join(Languages, ", "))
	}
	return s
}

// Secret records a violation unless s is a webhook secret of a usable
// length. Its value never appears in the violation.
func Secret(p *apirule.FieldErrors, field, s string) {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		p.Add(field, "must be valid UTF-8 without NUL characters")
	case n < MinSecretLen || n > MaxSecretLen:
		p.Add(field, "must be %d to %d characters, got %d", MinSecretLen, MaxSecretLen, n)
	}
}

// TargetInput is what a create request says of where messages go.
type TargetInput struct {
	Kind          channel.Kind // empty: not given or not known
	Address       string
	Language      string
	WebhookSecret string
}

// Check validates a new recipient's target and returns it (language
// defaulted).
func (in TargetInput) Check(p *apirule.FieldErrors) TargetInput {
	if in.Kind == "" {
		p.Add("kind", "must be CONTACT_KIND_EMAIL, CONTACT_KIND_TELEGRAM or CONTACT_KIND_WEBHOOK")
	} else {
		Address(p, "address", in.Kind, in.Address)
	}
	in.Language = Language(p, "language", in.Language)
	switch {
	case in.Kind == channel.Webhook && in.WebhookSecret == "":
		p.Add("webhook_secret", "must be set for a webhook: it keys the Slotwatch-Signature receivers verify")
	case in.Kind == channel.Webhook:
		Secret(p, "webhook_secret", in.WebhookSecret)
	case in.Kind != "" && in.WebhookSecret != "":
		p.Add("webhook_secret", "is for webhooks only")
	}
	return in
}

// TargetUpdate is what an update request says of where messages go; nil
// fields stay.
type TargetUpdate struct {
	Address       *string
	Language      *string
	WebhookSecret *string
	EndRotation   bool
}

// Check validates the update against the recipient's kind.
func (u TargetUpdate) Check(p *apirule.FieldErrors, kind channel.Kind) {
	if u.Address != nil {
		Address(p, "address", kind, *u.Address)
	}
	if u.Language != nil {
		if *u.Language == "" {
			p.Add("language", "must be one of %s", strings.Join(Languages, ", "))
		} else {
			Language(p, "language", *u.Language)
		}
	}
	if u.WebhookSecret != nil {
		if kind != channel.Webhook {
			p.Add("webhook_secret", "is for webhooks only")
		} else {
			Secret(p, "webhook_secret", *u.WebhookSecret)
		}
	}
	if u.EndRotation && kind != channel.Webhook {
		p.Add("end_webhook_secret_rotation", "is for webhooks only")
	}
}

// MissionCodes validates a subscription's missions: 1 to MaxMissionCodes
// codes, no duplicates. It returns them sorted.
func MissionCodes(p *apirule.FieldErrors, field string, codes []string) []string {
	switch {
	case len(codes) == 0:
		p.Add(field, "must name at least one mission")
		return nil
	case len(codes) > MaxMissionCodes:
		p.Add(field, "must name at most %d missions, got %d", MaxMissionCodes, len(codes))
		return nil
	}
	out := slices.Clone(codes)
	for i, c := range out {
		p.MissionCode(field+"["+strconv.Itoa(i)+"]", c)
	}
	slices.Sort(out)
	if len(slices.Compact(slices.Clone(out))) != len(out) {
		p.Add(field, "must not name a mission twice")
	}
	return out
}

// EventTypes validates a subscription's events: empty means SLOT_FOUND
// only; SLOT_FOUND must be among them.
func EventTypes(p *apirule.FieldErrors, field string, types []EventType) []EventType {
	if len(types) == 0 {
		return []EventType{SlotFound}
	}
	var out []EventType
	for i, t := range types {
		if t != SlotFound && t != Expired && t != Cancelled {
			p.Add(field+"["+strconv.Itoa(i)+"]", "must be EVENT_TYPE_SLOT_FOUND, EVENT_TYPE_EXPIRED or EVENT_TYPE_CANCELLED")
			continue
		}
		if slices.Contains(out, t) {
			p.Add(field, "must not name an event type twice")
			continue
		}
		out = append(out, t)
	}
	if !slices.Contains(out, SlotFound) {
		p.Add(field, "must include EVENT_TYPE_SLOT_FOUND: a subscription hears of every slot found")
	}
	return out
}
