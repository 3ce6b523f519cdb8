package e2e

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// wantViolation asserts InvalidArgument naming exactly these fields.
func wantViolation(t *testing.T, err error, fields ...string) {
	t.Helper()
	testkit.WantCode(t, err, codes.InvalidArgument)
	got := apierr.FieldViolations(err)
	for _, f := range fields {
		if _, ok := got[f]; !ok {
			t.Fatalf("violations %v lack %q", got, f)
		}
	}
	if len(got) != len(fields) {
		t.Fatalf("violations %v, want exactly %v", got, fields)
	}
}

// TestBadInput: every wrong field is InvalidArgument naming it, an
// applicant Requests does not know is FAILED_PRECONDITION, and the webhook
// secret never comes back.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	ctx := testkit.Context(t)
	const (
		email   = notifierv1.ContactKind_CONTACT_KIND_EMAIL
		tg      = notifierv1.ContactKind_CONTACT_KIND_TELEGRAM
		hook    = notifierv1.ContactKind_CONTACT_KIND_WEBHOOK
		unknown = "0190a8c4-0000-7000-8000-0000000000ff"
	)
	contact := func(kind notifierv1.ContactKind, addr, lang, secret string) *notifierv1.CreateContactRequest {
		return &notifierv1.CreateContactRequest{ApplicantId: s.applicant, Kind: kind, Address: addr, Language: lang, WebhookSecret: secret}
	}
	for _, tt := range []struct {
		name   string
		req    *notifierv1.CreateContactRequest
		fields []string
	}{
		{"MalformedEmail", contact(email, "ada@", "", ""), []string{"address"}},
		{"EmailWithDisplayName", contact(email, "Ada <ada@example.com>", "", ""), []string{"address"}},
		{"EmptyAddress", contact(email, "", "", ""), []string{"address"}},
		{"NoKind", contact(notifierv1.ContactKind_CONTACT_KIND_UNSPECIFIED, "ada@example.com", "", ""), []string{"kind"}},
		{"UnknownKindNumber", contact(notifierv1.ContactKind(9), "ada@example.com", "", ""), []string{"kind"}},
		{"TelegramNotAChat", contact(tg, "ada lovelace", "", ""), []string{"address"}},
		{"TelegramChatZero", contact(tg, "0", "", ""), []string{"address"}},
		{"TelegramChatBeyondInt64", contact(tg, "-99999999999999999999", "", ""), []string{"address"}},
		{"WebhookPlainHTTPRemote", contact(hook, "http://example.com/hook", "", hookSecret), []string{"address"}},
		{"WebhookFTP", contact(hook, "ftp://example.com/hook", "", hookSecret), []string{"address"}},
		{"WebhookRelative", contact(hook, "/hook", "", hookSecret), []string{"address"}},
		{"WebhookWithCredentials", contact(hook, "https://user:pw@example.com/hook", "", hookSecret), []string{"address"}},
		{"WebhookWithoutSecret", contact(hook, "https://example.com/hook", "", ""), []string{"webhook_secret"}},
		{"WebhookShortSecret", contact(hook, "https://example.com/hook", "", "short"), []string{"webhook_secret"}},
		{"SecretOnEmail", contact(email, "ada@example.com", "", hookSecret), []string{"webhook_secret"}},
		{"UnknownLanguage", contact(email, "ada@example.com", "de", ""), []string{"language"}},
		{"ApplicantNotUUID", &notifierv1.CreateContactRequest{ApplicantId: "ada", Kind: email, Address: "ada@example.com"}, []string{"applicant_id"}},
		// Requests refuses the nil UUID: asked, it answered INVALID_ARGUMENT,
		// which the lookup reported as Requests unavailable.
		{"ApplicantNilUUID", &notifierv1.CreateContactRequest{ApplicantId: uuid.Nil.String(), Kind: email, Address: "ada@example.com"}, []string{"applicant_id"}},
		{"Everything", &notifierv1.CreateContactRequest{Kind: hook, Address: "http://example.com", Language: "xx"}, []string{"applicant_id", "address", "language", "webhook_secret"}},
	} {
		t.Run("CreateContact"+tt.name, func(t *testing.T) {
			_, err := s.nt.CreateContact(ctx, tt.req)
			wantViolation(t, err, tt.fields...)
			if strings.Contains(err.Error(), hookSecret) {
				t.Error("the error echoes the secret")
			}
		})
	}
	// The nil UUID as a filter meant no filter: every applicant's contacts.
	t.Run("ListContactsNilApplicant", func(t *testing.T) {
		_, err := s.nt.ListContacts(ctx, &notifierv1.ListContactsRequest{ApplicantId: uuid.Nil.String()})
		wantViolation(t, err, "applicant_id")
	})
	t.Run("CreateContactUnknownApplicant", func(t *testing.T) {
		_, err := s.nt.CreateContact(ctx, &notifierv1.CreateContactRequest{ApplicantId: unknown, Kind: email, Address: "ada@example.com"})
		testkit.WantCode(t, err, codes.FailedPrecondition)
	})
	t.Run("LoopbackHTTPWebhookIsAllowed", func(t *testing.T) {
		for _, addr := range []string{"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]:9/hook", "https://example.com/hook"} {
			r, err := s.nt.CreateContact(ctx, contact(hook, addr, "fr", hookSecret))
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			if !r.GetContact().GetWebhookSecretSet() || strings.Contains(r.String(), hookSecret) {
				t.Errorf("contact: %v", r.GetContact())
			}
		}
	})
	t.Run("ReaderMayListButNotCreate", func(t *testing.T) {
		_, err := s.reader.CreateContact(ctx, contact(email, "ada@example.com", "", ""))
		testkit.WantCode(t, err, codes.PermissionDenied)
		if _, err := s.reader.ListContacts(ctx, &notifierv1.ListContactsRequest{ApplicantId: s.applicant}); err != nil {
			t.Fatal(err)
		}
	})

	sub := func(missions []string, types ...notifierv1.EventType) *notifierv1.CreateSubscriptionRequest {
		return &notifierv1.CreateSubscriptionRequest{MissionCodes: missions, EventTypes: types, Kind: email, Address: "ops@example.com"}
	}
	for _, tt := range []struct {
		name   string
		req    *notifierv1.CreateSubscriptionRequest
		fields []string
	}{
		{"NoMissions", sub(nil), []string{"mission_codes"}},
		{"BadMissionCode", sub([]string{"fra", "F R A"}), []string{"mission_codes[1]"}},
		{"MissionTwice", sub([]string{"fra", "fra"}), []string{"mission_codes"}},
		{"WithoutSlotFound", sub([]string{"fra"}, notifierv1.EventType_EVENT_TYPE_EXPIRED), []string{"event_types"}},
		{"UnspecifiedType", sub([]string{"fra"}, notifierv1.EventType_EVENT_TYPE_SLOT_FOUND, notifierv1.EventType_EVENT_TYPE_UNSPECIFIED), []string{"event_types[1]"}},
	} {
		t.Run("CreateSubscription"+tt.name, func(t *testing.T) {
			_, err := s.nt.CreateSubscription(ctx, tt.req)
			wantViolation(t, err, tt.fields...)
		})
	}

	c, err := s.nt.CreateContact(ctx, contact(email, "ada@example.com", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	id := c.GetContact().GetId()
	t.Run("UpdateContact", func(t *testing.T) {
		_, err := s.nt.UpdateContact(ctx, &notifierv1.UpdateContactRequest{Id: id, WebhookSecret: ptr(hookSecret)})
		wantViolation(t, err, "webhook_secret")
		_, err = s.nt.UpdateContact(ctx, &notifierv1.UpdateContactRequest{Id: id, Address: ptr("not-an-address"), Language: ptr("")})
		wantViolation(t, err, "address", "language")
		_, err = s.nt.UpdateContact(ctx, &notifierv1.UpdateContactRequest{Id: "nope"})
		wantViolation(t, err, "id")
		_, err = s.nt.UpdateContact(ctx, &notifierv1.UpdateContactRequest{Id: unknown, Language: ptr("fr")})
		testkit.WantCode(t, err, codes.NotFound)
		r, err := s.nt.UpdateContact(ctx, &notifierv1.UpdateContactRequest{Id: id, Address: ptr("ada@lovelace.example.org"), Language: ptr("fr")})
		if err != nil || r.GetContact().GetAddress() != "ada@lovelace.example.org" || r.GetContact().GetLanguage() != "fr" {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("Deliveries", func(t *testing.T) {
		_, err := s.nt.RetryDelivery(ctx, &notifierv1.RetryDeliveryRequest{})
		wantViolation(t, err, "id")
		_, err = s.nt.RetryDelivery(ctx, &notifierv1.RetryDeliveryRequest{Id: 12345})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = s.nt.ListDeliveries(ctx, &notifierv1.ListDeliveriesRequest{PageToken: "garbage", PageSize: -1, State: 7, ContactId: "x"})
		wantViolation(t, err, "page_token", "page_size", "state", "contact_id")
	})
	t.Run("DeleteTwice", func(t *testing.T) {
		if _, err := s.nt.DeleteContact(ctx, &notifierv1.DeleteContactRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		_, err := s.nt.DeleteContact(ctx, &notifierv1.DeleteContactRequest{Id: id})
		testkit.WantCode(t, err, codes.NotFound)
	})
}
