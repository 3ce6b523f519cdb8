package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestSlotFoundReachesContactAndSubscription: one SLOT_FOUND reaches the
// applicant's webhook (English) and an operator's subscription (French),
// signed, naming the applicant and the slot in the portal's zone, with no
// passport number anywhere: not in the bodies, the log rows, or the logs.
func TestSlotFoundReachesContactAndSubscription(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	contact := s.webhookContact("en")
	sub, err := s.nt.CreateSubscription(testkit.Context(t), &notifierv1.CreateSubscriptionRequest{
		MissionCodes: []string{"fra", "bel"}, Kind: notifierv1.ContactKind_CONTACT_KIND_WEBHOOK, Address: s.recv.url + "/ops",
		Language: "fr", WebhookSecret: rotatedSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := s.createRequests(1)
	if n := s.findSlot(); n != 1 {
		t.Fatalf("matched %d", n)
	}
	eventually(t, "two deliveries", func() bool {
		return len(deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 2
	})

	byPath := map[string]hit{}
	for _, h := range s.recv.all() {
		byPath[h.path] = h
	}
	for path, secret := range map[string]string{"/contact": hookSecret, "/ops": rotatedSecret} {
		h, ok := byPath[path]
		if !ok {
			t.Fatalf("nothing reached %s", path)
		}
		if err := webhooksig.Verify(h.signature, h.body, time.Now(), []byte(secret)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if strings.Contains(string(h.body), passport) {
			t.Errorf("%s: the body holds the passport number", path)
		}
		body := decode(t, h.body)
		req, _ := body["request"].(map[string]any)
		if body["type"] != "slot_found" || req["id"] != ids[0] || req["timezone"] != "Europe/Paris" || body["idempotency_key"] != h.key {
			t.Errorf("%s body: %s", path, h.body)
		}
		text, _ := body["text"].(string)
		for _, want := range []string{"Ada Lovelace", "2027-03-03 09:30", "Europe/Paris", "requests book " + ids[0]} {
			if !strings.Contains(text, want) {
				t.Errorf("%s text lacks %q:\n%s", path, want, text)
			}
		}
	}
	if text := string(byPath["/ops"].body); !strings.Contains(text, "Créneau trouvé") {
		t.Errorf("the subscription asked for French: %s", text)
	}
	ds := deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED)
	for _, d := range ds {
		if d.GetContactId() != contact.GetId() && d.GetSubscriptionId() != sub.GetSubscription().GetId() {
			t.Errorf("delivery to neither recipient: %v", d)
		}
		if d.GetAttempts() != 1 || d.GetRequestId() != ids[0] || d.GetEventType() != notifierv1.EventType_EVENT_TYPE_SLOT_FOUND {
			t.Errorf("delivery: %v", d)
		}
	}
	if n := s.count(`SELECT count(*) FROM notifier.deliveries WHERE body_text LIKE '%' || $1 || '%' OR body_html LIKE '%' || $1 || '%'
		OR convert_from(body_json, 'UTF8') LIKE '%' || $1 || '%'`, passport); n != 0 {
		t.Errorf("%d delivery rows hold the passport number", n)
	}
	for _, p := range s.notifiers {
		for _, secret := range []string{passport, hookSecret, rotatedSecret} {
			if strings.Contains(p.Log.Text(), secret) {
				t.Errorf("the notifier's log holds a secret starting %.3s", secret)
			}
		}
	}
	// The CREATED event reached nobody: contacts hear of SLOT_FOUND and EXPIRED.
	if len(ds) != 2 {
		t.Errorf("deliveries: %d, want 2", len(ds))
	}
}

// TestConsumingReplicaSendsWithoutClaim: the replica that records an
// event's deliveries records them leased to itself and sends them from
// memory, so each delivered row is written twice (the insert and the
// delivered mark), not three times (no claim in between). A trigger the
// test adds counts the updates of each row.
//
// A handed delivery that waits for a worker longer than an eighth of the
// lease is given back for any replica's claim (its release and claim are
// two more updates; one picked up just past that has its lease extended,
// one more): so that a replica with slow receivers does not keep a burst
// to itself. The harness's 4 s lease gives the 50 sends half a second,
// which a loaded machine overran (95 updates, every row sent once). This
// test runs with the default lease, lengthened under load, so that only
// a send without claim passes.
func TestConsumingReplicaSendsWithoutClaim(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_LEASE=" + testkit.Scale(time.Minute).String()}})
	s.webhookContact("en")
	s.exec(`CREATE TABLE public.delivery_updates (id bigint NOT NULL);
		CREATE FUNCTION public.count_delivery_update() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO public.delivery_updates VALUES (NEW.id); RETURN NEW; END $$;
		CREATE TRIGGER count_updates AFTER UPDATE ON notifier.deliveries FOR EACH ROW EXECUTE FUNCTION public.count_delivery_update();`)
	const n = 50
	s.createRequests(n)
	s.findSlot()
	eventually(t, "all delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == n
	})
	if got := s.count(`SELECT count(*) FROM public.delivery_updates`); got != n {
		t.Errorf("%d updates of %d delivered rows, want one each (the delivered mark); the notifier gave back handed deliveries %d times",
			got, n, strings.Count(s.notifiers[0].Log.Text(), "released for the next claim"))
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE attempts = 1 AND lease_token = 1 AND lease_until IS NULL`); got != n {
		t.Errorf("%d of %d rows delivered on their first attempt, lease cleared", got, n)
	}
	if k := s.recv.keys(); k != n || len(s.recv.all()) != n {
		t.Errorf("receiver: %d hits, %d distinct, want %d", len(s.recv.all()), k, n)
	}
}

// TestReceiverErrorThenSuccess: a receiver answering 500 gets the same
// delivery again (same idempotency key) after a backoff, and the log
// shows it delivered on the second attempt.
func TestReceiverErrorThenSuccess(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, before int) {
		if before == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.createRequests(1)
	s.findSlot()
	eventually(t, "delivered", func() bool { return len(deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1 })
	hits := s.recv.all()
	if len(hits) != 2 || hits[0].key != hits[1].key {
		t.Fatalf("hits: %d %v", len(hits), hits)
	}
	d := deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)[0]
	if d.GetAttempts() != 2 || d.GetIdempotencyKey() != hits[0].key {
		t.Errorf("delivery: %v", d)
	}
}

// TestTooManyRequestsHonoursRetryAfter: a 429 with Retry-After: 2 is
// retried no sooner than 2 s later, though the backoff alone (100 ms base)
// would retry far sooner.
func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, before int) {
		if before == 0 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.createRequests(1)
	s.findSlot()
	eventually(t, "delivered", func() bool { return len(deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1 })
	hits := s.recv.all()
	if len(hits) != 2 {
		t.Fatalf("hits: %d", len(hits))
	}
	if gap := hits[1].at.Sub(hits[0].at); gap < 2*time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 2", gap)
	}
}

// TestDeadDeliveryAndRetry: a 4xx kills a delivery at once, a receiver
// failing every attempt kills it after NOTIFIER_MAX_ATTEMPTS; both show
// as DEAD, the metric counts them, and RetryDelivery sends again.
func TestDeadDeliveryAndRetry(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_MAX_ATTEMPTS=3"}})
	s.webhookContact("en")
	s.recv.setAnswer(func(w http.ResponseWriter, h hit, _ int) {
		w.WriteHeader(http.StatusGone)
	})
	s.createRequests(1)
	s.findSlot()
	eventually(t, "dead", func() bool { return len(deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DEAD)) == 1 })
	d := deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DEAD)[0]
	if d.GetAttempts() != 1 || !strings.Contains(d.GetLastError(), "410") {
		t.Errorf("a 410 is permanent: %v", d)
	}

	// Out of attempts.
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) { w.WriteHeader(http.StatusBadGateway) })
	r, err := s.nt.RetryDelivery(testkit.Context(t), &notifierv1.RetryDeliveryRequest{Id: d.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetDelivery().GetState() != notifierv1.DeliveryState_DELIVERY_STATE_PENDING || r.GetDelivery().GetAttempts() != 0 {
		t.Errorf("retried: %v", r.GetDelivery())
	}
	eventually(t, "dead again", func() bool {
		ds := deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DEAD)
		return len(ds) == 1 && ds[0].GetAttempts() == 3
	})
	if n := len(s.recv.all()); n != 4 {
		t.Errorf("receiver hits: %d, want 1 + 3", n)
	}
	_, err = s.nt.RetryDelivery(testkit.Context(t), &notifierv1.RetryDeliveryRequest{Id: d.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	s.recv.setAnswer(nil)
	eventually(t, "delivered after RetryDelivery", func() bool {
		return len(deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1
	})
	if n := s.count(`SELECT count(*) FROM notifier.deliveries`); n != 1 {
		t.Errorf("log rows: %d, want 1", n)
	}
	_, err = s.nt.RetryDelivery(testkit.Context(t), &notifierv1.RetryDeliveryRequest{Id: d.GetId()})
	testkit.WantCode(t, err, codes.FailedPrecondition)
}

// TestSecretRotation: after UpdateContact gives a webhook a new secret,
// deliveries carry a signature by each secret, so a receiver holding
// either verifies; once the rotation ends, only the new secret signs.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	c := s.webhookContact("en")
	r, err := s.nt.UpdateContact(testkit.Context(t), &notifierv1.UpdateContactRequest{Id: c.GetId(), WebhookSecret: ptr(rotatedSecret)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetContact().GetWebhookSecretRotating() {
		t.Errorf("contact: %v", r.GetContact())
	}
	s.createRequests(1)
	s.findSlot()
	eventually(t, "first delivery", func() bool { return len(s.recv.all()) == 1 })
	h := s.recv.all()[0]
	for _, secret := range []string{hookSecret, rotatedSecret} {
		if err := webhooksig.Verify(h.signature, h.body, time.Now(), []byte(secret)); err != nil {
			t.Errorf("during the rotation, secret %.8s…: %v", secret, err)
		}
	}
	if _, err := s.nt.UpdateContact(testkit.Context(t), &notifierv1.UpdateContactRequest{Id: c.GetId(), EndWebhookSecretRotation: true}); err != nil {
		t.Fatal(err)
	}
	s.createRequests(1)
	s.findSlot()
	eventually(t, "second delivery", func() bool { return len(s.recv.all()) == 2 })
	h = s.recv.all()[1]
	if err := webhooksig.Verify(h.signature, h.body, time.Now(), []byte(rotatedSecret)); err != nil {
		t.Errorf("new secret after the rotation: %v", err)
	}
	if err := webhooksig.Verify(h.signature, h.body, time.Now(), []byte(hookSecret)); err == nil {
		t.Error("the old secret still verifies after the rotation ended")
	}
}
