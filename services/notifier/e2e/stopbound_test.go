package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestAStopEndsWithinTheLease: a stopping Notifier sends the deliveries it
// had claimed into its queue (handed ones go back), each within its
// lease's three quarters from the claim, so a stop ended within
// NOTIFIER_LEASE of SIGTERM: deploy/k8s/base/notifier.yaml gives it
// terminationGracePeriodSeconds 60, the default lease ("a send in flight
// is recorded before the process exits (its timeout is under the lease)").
// Since af557a9 a claimed delivery that waited in the queue has its lease
// extended and gets its channel's whole timeout from the send's start: a
// stop can last half a lease (the wait) plus the timeout (up to three
// quarters of a lease), 1.25 leases; a kubelet's SIGKILL at the grace
// period then cuts a send the receiver accepts, left unrecorded (sent
// again after the extended lease lapses).
//
// Here (lease 8s, timeout 6s, one worker) the worker's first POST is held
// until 3.3 s after the other two are claimed; SIGTERM comes right after
// the claim; the second delivery (waited 3.3 s) is extended and its POST
// answers in 5.8 s, inside the timeout. The stop must end within the lease.
func TestAStopEndsWithinTheLease(t *testing.T) {
	t.Parallel()
	const lease = 8 * time.Second
	s := newSystem(t, options{notifierEnv: []string{"NOTIFIER_CONCURRENCY=1", "NOTIFIER_LEASE=8s", "NOTIFIER_WEBHOOK_TIMEOUT=6s"}})
	s.webhookContact("en")
	arrived, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	first := true
	s.recv.setAnswer(func(w http.ResponseWriter, _ hit, _ int) {
		mu.Lock()
		isFirst := first
		first = false
		mu.Unlock()
		if isFirst {
			close(arrived)
			<-release
		} else {
			time.Sleep(5800 * time.Millisecond)
		}
		w.WriteHeader(http.StatusOK)
	})
	const n = 3
	s.createRequests(n)
	s.findSlot()
	<-arrived
	// The two handed behind the busy worker are given back after an eighth
	// of the lease and claimed into the loop's queue (lease_token 2).
	eventually(t, "the two queued deliveries claimed", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE lease_token >= 2 AND lease_until IS NOT NULL`) == n-1
	})
	claimed := time.Now()
	stopped := make(chan time.Duration)
	go func() {
		at := time.Now()
		s.notifiers[0].Stop()
		stopped <- time.Since(at)
	}()
	time.Sleep(time.Until(claimed.Add(3300 * time.Millisecond)))
	close(release)
	took := <-stopped
	t.Logf("stop took %s", took.Round(10*time.Millisecond))
	if took > lease {
		t.Errorf("the stop took %s, past NOTIFIER_LEASE (%s): with the default lease, past the pod's 60 s grace period", took.Round(10*time.Millisecond), lease)
	}
}
