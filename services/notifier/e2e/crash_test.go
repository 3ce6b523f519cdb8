package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
)

// TestKilledBetweenSendAndRecord: the Notifier is killed (SIGKILL) while
// the receiver holds its first POST, so the send happened and its outcome
// was never recorded. A new Notifier sends it again once the lease lapses:
// the receiver sees it twice under one idempotency key, the log shows one
// delivery, delivered, after two attempts.
func TestKilledBetweenSendAndRecord(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	arrived, release := make(chan struct{}), make(chan struct{})
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, before int) {
		if before == 0 {
			close(arrived)
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	s.createRequests(1)
	s.findSlot()
	<-arrived
	s.notifiers[0].Kill()
	close(release)

	s.startNotifier()
	eventually(t, "delivered by the second notifier", func() bool {
		return len(deliveries(t, s.clientOf(1), notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1
	})
	hits := s.recv.all()
	if len(hits) != 2 || hits[0].key != hits[1].key {
		t.Fatalf("receiver: %d hits %v", len(hits), hits)
	}
	if n := s.count(`SELECT count(*) FROM notifier.deliveries`); n != 1 {
		t.Errorf("log rows: %d, want 1", n)
	}
	if n := s.count(`SELECT attempts FROM notifier.deliveries`); n != 2 {
		t.Errorf("attempts: %d, want 2", n)
	}
}

// TestStopReleasesHandedDeliveries: a Notifier stopped (SIGTERM) with
// deliveries recorded for its own workers and not yet started gives them
// back (unleased, the attempt not counted) instead of leaving them leased
// to a replica that is gone; the next Notifier sends them all.
func TestStopReleasesHandedDeliveries(t *testing.T) {
	t.Parallel()
	// A lease long enough that no handed delivery waits an eighth of it
	// (the loop would give it back) before the stop.
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_CONCURRENCY=1", "NOTIFIER_LEASE=5m"}})
	s.webhookContact("en")
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) {
		once.Do(func() { close(arrived); <-release })
		w.WriteHeader(http.StatusOK)
	})
	const n = 20
	s.createRequests(n)
	s.findSlot()
	<-arrived
	eventually(t, "all recorded", func() bool { return s.count(`SELECT count(*) FROM notifier.deliveries`) == n })
	stopped := make(chan struct{})
	go func() { s.notifiers[0].Stop(); close(stopped) }()
	eventually(t, "the notifier stopping", func() bool {
		return len(s.notifiers[0].Log.With("stopping: letting in-flight RPCs finish")) > 0
	})
	close(release)
	<-stopped
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`); got != 1 {
		t.Fatalf("%d delivered before the stop, want the one in flight", got)
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'pending' AND lease_until IS NULL AND attempts = 0`); got != n-1 {
		t.Errorf("%d of %d unsent deliveries released (unleased, no attempt counted)", got, n-1)
	}
	s.startNotifier()
	eventually(t, "all delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == n
	})
	if got := s.count(`SELECT max(attempts) FROM notifier.deliveries`); got != 1 {
		t.Errorf("max attempts %d, want 1", got)
	}
	if k := s.recv.keys(); k != n {
		t.Errorf("receiver saw %d distinct deliveries, want %d", k, n)
	}
}

// TestHandedDeliveryWaitingHalfItsLeaseIsGivenBack: with one worker held
// by a slow receiver for over half a lease, the deliveries handed to the
// same loop behind it are given back (unleased, the attempt not counted)
// rather than sent with too little of their lease left; the claim then
// sends each once.
func TestHandedDeliveryWaitingHalfItsLeaseIsGivenBack(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_CONCURRENCY=1", "NOTIFIER_LEASE=8s", "NOTIFIER_WEBHOOK_TIMEOUT=6s"}})
	s.webhookContact("en")
	var once sync.Once
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) {
		once.Do(func() { time.Sleep(4500 * time.Millisecond) }) // the lease is 8 s: the others wait past 4 s
		w.WriteHeader(http.StatusOK)
	})
	const n = 5
	s.createRequests(n)
	s.findSlot()
	eventually(t, "all delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == n
	})
	if got := len(s.notifiers[0].Log.With("a delivery waited too long for a worker; released for the next claim")); got == 0 {
		t.Error("no delivery was given back")
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE attempts = 1`); got != n {
		t.Errorf("%d of %d delivered on one counted attempt", got, n)
	}
	if hits, k := len(s.recv.all()), s.recv.keys(); hits != n || k != n {
		t.Errorf("receiver: %d hits, %d distinct, want %d", hits, k, n)
	}
}

// TestKilledMidStreamLosesNothing: the Notifier is killed while it
// records a stream of events, and Requests restarts mid-stream too; every
// SLOT_FOUND reaches the receiver, and the log holds each one once.
func TestKilledMidStreamLosesNothing(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	s.createRequests(60)
	s.findSlot()
	eventually(t, "some deliveries recorded", func() bool { return s.count(`SELECT count(*) FROM notifier.deliveries`) > 0 })
	s.notifiers[0].Kill()
	// Requests restarts (on the same address) while no notifier runs and
	// again while one does: the stream resumes from the stored cursor.
	s.rqProc.Stop()
	s.startRequests()
	s.startNotifier()
	more := s.createRequests(40)
	s.rqProc.Stop()
	s.startRequests()
	s.findSlot()
	eventually(t, "100 delivered", func() bool {
		return len(deliveries(t, s.clientOf(1), notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 100
	})
	if n := s.count(`SELECT count(*) FROM notifier.deliveries`); n != 100 {
		t.Errorf("log rows: %d, want 100", n)
	}
	if k := s.recv.keys(); k != 100 {
		t.Errorf("receiver saw %d distinct deliveries, want 100", k)
	}
	if n := s.count(`SELECT count(*) FROM notifier.deliveries WHERE request_id = $1`, more[0]); n != 1 {
		t.Errorf("deliveries of %s: %d", more[0], n)
	}
}

// TestEventsPrunedWhileAwayAreSkipped: the Notifier is away while
// Requests' retention prunes events it had not recorded. The real Requests
// refuses its cursor with OUT_OF_RANGE; the Notifier logs the loss at
// error, resumes from the oldest event kept (instead of retrying the
// refused cursor forever), and the next slot found reaches the receiver.
func TestEventsPrunedWhileAwayAreSkipped(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	s.createRequests(1)
	s.findSlot()
	eventually(t, "the first slot delivered", func() bool { return s.recv.keys() == 1 })
	s.notifiers[0].Stop()
	// Two slots found while it is away, then every event made older than
	// the retention, and Requests restarted with it: it prunes them all.
	s.createRequests(2)
	s.findSlot()
	s.exec(`UPDATE requests.events SET occurred_at = now() - interval '2 hours'`)
	last := s.count(`SELECT max(id) FROM requests.events`)
	s.rqProc.Stop()
	s.rqEnv = append(s.rqEnv, "REQUESTS_RETENTION=1h")
	s.startRequests()
	eventually(t, "Requests pruned the events", func() bool {
		return s.count(`SELECT events_pruned_through FROM requests.retention`) == last
	})
	n := s.startNotifier()
	s.createRequests(1)
	s.findSlot()
	eventually(t, "the slot found after the pruning delivered", func() bool { return s.recv.keys() == 2 })
	lost := n.Log.With("events were lost: Requests' retention pruned them before they were recorded (its REQUESTS_RETENTION is shorter than this consumer was away); resuming from the oldest event kept")
	if len(lost) != 1 || lost[0]["level"] != "ERROR" || lost[0]["pruned_through"] != float64(last) {
		t.Errorf("logged %v; want one error naming the last cursor pruned (%d)", lost, last)
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries`); got != 2 {
		t.Errorf("log rows: %d, want 2 (the slots found while away were pruned unseen)", got)
	}
}

// TestNotifierStartedBeforeRequests: a Notifier starts while Requests is
// down; its consumer tries again with a growing wait (no hot loop), and
// once Requests serves it follows the stream: the events found then reach
// the receiver, each on one attempt, none dead.
func TestNotifierStartedBeforeRequests(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	s.webhookContact("en")
	s.notifiers[0].Stop()
	s.rqProc.Stop()
	n := s.startNotifier()
	const dropped = "Requests event stream dropped; resuming from the stored cursor"
	eventually(t, "four tries while Requests is down", func() bool { return len(n.Log.With(dropped)) >= 4 })
	s.startRequests()
	s.createRequests(3)
	s.findSlot()
	eventually(t, "3 delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == 3
	})
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE attempts = 1`); got != 3 {
		t.Errorf("%d of 3 delivered on one attempt", got)
	}
	if k := s.recv.keys(); k != 3 {
		t.Errorf("receiver saw %d distinct deliveries, want 3", k)
	}
	var waits []time.Duration
	for _, l := range n.Log.With(dropped) {
		d, err := time.ParseDuration(l["retry_in"].(string))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, d)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Fatalf("waits %v: a try came sooner after a failed one than the one before", waits)
		}
	}
}

// TestTwoReplicasThousandEvents: two Notifiers share the log; 1000
// SLOT_FOUND events, one webhook contact: each (event, contact) reaches
// the receiver, and the log holds each exactly once.
func TestTwoReplicasThousandEvents(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifiers: 2})
	s.webhookContact("en")
	s.createRequests(1000)
	if n := s.findSlot(); n != 1000 {
		t.Fatalf("matched %d", n)
	}
	eventually(t, "1000 delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == 1000
	})
	if n := s.count(`SELECT count(*) FROM notifier.deliveries`); n != 1000 {
		t.Errorf("log rows: %d, want 1000", n)
	}
	if n := s.count(`SELECT count(DISTINCT (event_cursor, recipient_id)) FROM notifier.deliveries`); n != 1000 {
		t.Errorf("distinct (event, contact): %d", n)
	}
	if k := s.recv.keys(); k != 1000 {
		t.Errorf("receiver saw %d distinct deliveries, want 1000", k)
	}
	t.Logf("receiver hits: %d for 1000 deliveries", len(s.recv.all()))
}

// clientOf is an admin client of the i-th notifier started.
func (s *system) clientOf(i int) notifierv1.NotifierServiceClient {
	s.t.Helper()
	return notifierv1.NewNotifierServiceClient(dial(s.t, s.notifiers[i].Addr, s.adminToken))
}

// TestStandbyTakesOver: of two Notifiers one consumes; when it is killed,
// the other takes the consumer lock and the events that follow reach the
// receiver, each once in the log.
func TestStandbyTakesOver(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifiers: 2})
	s.webhookContact("en")
	const consuming = "consuming Requests events: this replica holds the consumer lock"
	active := -1
	eventually(t, "one replica consuming", func() bool {
		for i, p := range s.notifiers {
			if len(p.Log.With(consuming)) > 0 {
				active = i
				return true
			}
		}
		return false
	})
	standby := 1 - active
	if len(s.notifiers[standby].Log.With(consuming)) != 0 {
		t.Fatal("both replicas consume")
	}
	s.createRequests(5)
	s.findSlot()
	eventually(t, "5 delivered", func() bool { return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == 5 })
	s.notifiers[active].Kill()
	eventually(t, "the standby consuming", func() bool { return len(s.notifiers[standby].Log.With(consuming)) > 0 })
	s.createRequests(5)
	s.findSlot()
	eventually(t, "10 delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == 10
	})
	if k := s.recv.keys(); k != 10 {
		t.Errorf("receiver saw %d distinct deliveries, want 10", k)
	}
	if n := s.count(`SELECT count(*) FROM notifier.deliveries`); n != 10 {
		t.Errorf("log rows: %d, want 10", n)
	}
}

// TestSlowReceiverBurstIsSharedByReplicas: the consuming replica records
// a burst leased to its own loop; with a slow receiver, what its one
// worker has not started within an eighth of the lease is given back, and
// the other replica's worker sends part of it: the receiver sees two
// sends at once (each replica has one worker), and each delivery once.
func TestSlowReceiverBurstIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	// The burst takes one worker 6 s: under half the lease (a send that
	// waited that long is given back by its worker anyway), over an eighth.
	s := newSystem(t, options{notifiers: 2, notifierEnv: []string{"NOTIFIER_CONCURRENCY=1", "NOTIFIER_LEASE=16s"}})
	s.webhookContact("en")
	var mu sync.Mutex
	var inFlight, peak int
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(250 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	const n = 24
	s.createRequests(n)
	s.findSlot()
	eventually(t, "all delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == n
	})
	mu.Lock()
	p := peak
	mu.Unlock()
	if p < 2 {
		t.Errorf("at most %d send at a time: the other replica sent none of the burst", p)
	}
	if k := s.recv.keys(); k != n {
		t.Errorf("receiver saw %d distinct deliveries, want %d", k, n)
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE attempts = 1`); got != n {
		t.Errorf("%d of %d delivered on one counted attempt", got, n)
	}
}

// TestADeliveryThatWaitedForAWorkerGetsItsWholeTimeout: a send was cut at
// three quarters of its lease counted from the claim, so a delivery that
// waited for a worker had less than NOTIFIER_WEBHOOK_TIMEOUT: a receiver
// answering within the timeout was cut off, and the attempt counted as
// failed (a retry; dead after NOTIFIER_MAX_ATTEMPTS). With one worker held
// 3 s by the first POST, the second delivery (given back by the hand-over
// after an eighth of the 8 s lease, then claimed) starts its POST with
// about 4.5 s of its lease's three quarters left; its receiver answers in
// 5 s, inside the 6 s timeout: it must be delivered on its first attempt.
func TestADeliveryThatWaitedForAWorkerGetsItsWholeTimeout(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_CONCURRENCY=1", "NOTIFIER_LEASE=8s", "NOTIFIER_WEBHOOK_TIMEOUT=6s"}})
	s.webhookContact("en")
	var mu sync.Mutex
	first := true
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) {
		mu.Lock()
		wait := 5 * time.Second
		if first {
			first, wait = false, 3*time.Second
		}
		mu.Unlock()
		time.Sleep(wait)
		w.WriteHeader(http.StatusOK)
	})
	const n = 2
	s.createRequests(n)
	s.findSlot()
	eventually(t, "all delivered", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered'`) == n
	})
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE attempts = 1`); got != n {
		t.Errorf("%d of %d delivered on their first attempt; a send inside NOTIFIER_WEBHOOK_TIMEOUT was cut short", got, n)
	}
	if hits, k := len(s.recv.all()), s.recv.keys(); hits != n || k != n {
		t.Errorf("receiver: %d hits, %d distinct, want %d", hits, k, n)
	}
}
