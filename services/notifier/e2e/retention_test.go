package e2e

import (
	"testing"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
)

// TestOldDeliveriesArePrunedAtStart: a Notifier restarted with
// NOTIFIER_RETENTION=1h over one delivery recorded two hours ago and one
// just recorded deletes the old one at start, logs how many it pruned, and
// keeps the other; nothing is recorded or sent again, and the next slot
// found is delivered.
func TestOldDeliveriesArePrunedAtStart(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	for i := range 2 {
		s.createRequests(1)
		s.findSlot()
		eventually(t, "the slot delivered", func() bool {
			return len(deliveries(t, s.nt, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == i+1
		})
	}
	s.notifiers[0].Stop()
	s.exec(`UPDATE notifier.deliveries SET created_at = created_at - interval '2 hours' WHERE id = (SELECT min(id) FROM notifier.deliveries)`)
	kept := s.count(`SELECT max(id) FROM notifier.deliveries`)

	s.ntEnv = append(s.ntEnv, "NOTIFIER_RETENTION=1h")
	n := s.startNotifier()
	eventually(t, "the run logged", func() bool {
		return len(n.Log.With("delivery log retention: pruned rows older than NOTIFIER_RETENTION")) == 1
	})
	logged := n.Log.With("delivery log retention: pruned rows older than NOTIFIER_RETENTION")[0]
	if logged["level"] != "INFO" || logged["pruned"] != float64(1) {
		t.Errorf("logged %v; want info with pruned 1", logged)
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE id = $1`, kept); got != 1 || s.count(`SELECT count(*) FROM notifier.deliveries`) != 1 {
		t.Errorf("the log holds %d rows; want only the recent delivery %d", s.count(`SELECT count(*) FROM notifier.deliveries`), kept)
	}
	s.createRequests(1)
	s.findSlot()
	eventually(t, "the third slot delivered", func() bool { return s.recv.keys() == 3 })
	if hits := len(s.recv.all()); hits != 3 {
		t.Errorf("receiver hits: %d; want one per slot, none again", hits)
	}
}
