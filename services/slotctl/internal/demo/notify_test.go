package demo

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
)

// TestHookReceiverCountsAcceptedKeysAndFailsOnDemand: the chaos suite's
// record of webhooks counts each accepted Idempotency-Key; while failing,
// the receiver answers 500 and accepts nothing; a bad signature is 401 and
// not counted.
func TestHookReceiverCountsAcceptedKeysAndFailsOnDemand(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec-chaos-0123456789abcdefghijklmnop")
	h, err := StartHookReceiver("", secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	post := func(key string, secret []byte) int {
		t.Helper()
		body := []byte(`{"type":"slot_found","event_cursor":7}`)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.URL(), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(webhooksig.SignatureHeader, webhooksig.Sign(time.Now(), body, secret))
		req.Header.Set(webhooksig.IdempotencyHeader, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("slotwatch-7-a", secret); c != http.StatusNoContent {
		t.Fatalf("accepted: %d", c)
	}
	h.SetFailing(true)
	if c := post("slotwatch-8-a", secret); c != http.StatusInternalServerError {
		t.Fatalf("while failing: %d, want 500", c)
	}
	h.SetFailing(false)
	if c := post("slotwatch-7-a", secret); c != http.StatusNoContent {
		t.Fatalf("again: %d", c)
	}
	if c := post("slotwatch-9-a", []byte("whsec-another-0123456789abcdefghijklmno")); c != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", c)
	}
	keys, failed := h.Accepted()
	if len(keys) != 1 || keys["slotwatch-7-a"] != 2 || failed != 1 {
		t.Errorf("accepted %v, failed %d; want slotwatch-7-a twice and one 500", keys, failed)
	}
}
