package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestRetryGoesToTheRecipientsAddressAsItIsNow: a delivery that died at
// an address that was wrong is retried, after the contact or subscription
// got the right one, to the right one (RetryDelivery shows it, Claim sends
// there, the log keeps it); a deleted recipient's delivery keeps the
// address it had.
func TestRetryGoesToTheRecipientsAddressAsItIsNow(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	st := store.New(pgtest.NewPool(t, migrations.Set))
	now := time.Now().UTC().Truncate(time.Millisecond)
	applicant := uuid.New()
	target := func(addr string) domain.Target {
		return domain.Target{Kind: channel.Email, Address: addr, Language: "en"}
	}
	contact, err := st.CreateContact(ctx, domain.Contact{ID: uuid.New(), ApplicantID: applicant, Target: target("old@example.com"), CreatedAt: now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := st.CreateSubscription(ctx, domain.Subscription{ID: uuid.New(), MissionCodes: []string{"fra"},
		EventTypes: []domain.EventType{domain.SlotFound}, Target: target("ops-old@example.com"), CreatedAt: now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := st.CreateContact(ctx, domain.Contact{ID: uuid.New(), ApplicantID: applicant, Target: target("gone@example.com"), CreatedAt: now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := st.AcquireConsumer(ctx, "requests", now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lock.Close)
	event := func(contact, sub uuid.UUID, addr string) domain.Delivery {
		return domain.Delivery{EventCursor: 1, EventType: domain.SlotFound, EventOccurredAt: now, RequestID: uuid.New(),
			ContactID: contact, SubscriptionID: sub, Kind: channel.Email, Address: addr, Subject: "Slot found", Text: "t", JSON: []byte(`{}`)}
	}
	if _, err := lock.Record(ctx, 1, []domain.Delivery{event(contact.ID, uuid.Nil, contact.Address),
		event(uuid.Nil, sub.ID, sub.Address), event(gone.ID, uuid.Nil, gone.Address)}, now); err != nil {
		t.Fatal(err)
	}
	claim := func() map[uuid.UUID]domain.Delivery {
		t.Helper()
		ds, err := st.Claim(ctx, now, now.Add(time.Minute), []string{string(channel.Email)}, 10)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uuid.UUID]domain.Delivery{}
		for _, d := range ds {
			out[d.RecipientID()] = d
		}
		return out
	}
	// Every attempt refused for good: the addresses were wrong.
	first := claim()
	if len(first) != 3 {
		t.Fatalf("claimed %v; want the 3 deliveries", first)
	}
	for _, d := range first {
		if ok, err := st.MarkFailed(ctx, d, true, now, "550 no such user"); err != nil || !ok {
			t.Fatalf("mark dead: %v %v", ok, err)
		}
	}
	if _, err := st.UpdateContact(ctx, contact.ID, now, func(c *domain.Contact, _ *store.Secrets) error {
		c.Address = "new@example.com"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateSubscription(ctx, sub.ID, now, func(s *domain.Subscription, _ *store.Secrets) error {
		s.Address = "ops-new@example.com"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteContact(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	want := map[uuid.UUID]string{contact.ID: "new@example.com", sub.ID: "ops-new@example.com", gone.ID: "gone@example.com"}
	for _, d := range first {
		r, err := st.RetryDelivery(ctx, d.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		if r.Address != want[d.RecipientID()] {
			t.Errorf("RetryDelivery of %s shows %q; want %q", d.RecipientID(), r.Address, want[d.RecipientID()])
		}
	}
	retried := claim()
	for id, addr := range want {
		if d := retried[id]; d.Address != addr {
			t.Errorf("retry of %s claimed to %q; want %q", id, d.Address, addr)
		}
	}
	if !retried[gone.ID].RecipientGone || retried[contact.ID].RecipientGone {
		t.Errorf("recipient gone: deleted %v, kept %v", retried[gone.ID].RecipientGone, retried[contact.ID].RecipientGone)
	}
	logged, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{ContactID: contact.ID}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || logged[0].Address != "new@example.com" {
		t.Errorf("the log shows %+v; want the address the retry went to", logged)
	}
}
