package demo

import (
	"context"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

// chaosLoad is the suite's steady load: at a fixed rate, Acquire+Release
// on AccountPool and ClaimDueMissions+ReportCheckResult on Requests (the
// pairs counted in ops/s), ListDeliveries on the Notifier, and a new
// request every findEvery for the slot the portal always has (find), which
// the Checkers find: a steady stream of SLOT_FOUND events, each a webhook
// (these two record their errors, for no-internal, and are not counted in
// ops/s), each
// call to a replica in turn, an UNAVAILABLE answer retried on the other
// replica, as a client with both addresses would. It records each
// completed pair, each error code, and each claim answered OK.
type chaosLoad struct {
	pools []apv1.AccountPoolServiceClient
	rqs   []rqv1.RequestsServiceClient
	nts   []notifierv1.NotifierServiceClient
	// find is the request made every findEvery (nil: none).
	find      *rqv1.CreateAppointmentRequestRequest
	findEvery time.Duration
	// every is the pause between two pairs of each kind.
	every time.Duration

	mu sync.Mutex
	// done are the times pairs completed (both kinds).
	done []time.Time
	// lastPool and lastClaim are when the last pair of each kind did.
	lastPool, lastClaim time.Time
	errs                []loadError
	// reported counts OK answers per claim id.
	reported map[string]int
}

type loadError struct {
	at     time.Time
	method string
	code   codes.Code
}

// loadHolder and loadChecker name the load's leases and claims.
const (
	loadHolder  = "chaos-load"
	loadChecker = "chaos-load"
	// loadCall bounds each call of the load.
	loadCall = 5 * time.Second
)

func (l *chaosLoad) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); l.loop(ctx, l.every, l.poolPair) }()
	go func() { defer wg.Done(); l.loop(ctx, l.every, l.claimPair) }()
	go func() { defer wg.Done(); l.loop(ctx, l.every, l.listDeliveries) }()
	go func() { defer wg.Done(); l.loop(ctx, l.findEvery, l.createFind) }()
	wg.Wait()
}

func (l *chaosLoad) loop(ctx context.Context, every time.Duration, pair func(ctx context.Context, i int) bool) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pair(ctx, i)
	}
}

// call runs f on replica i, then on the other ones while the answer is
// UNAVAILABLE; every error is recorded.
func (l *chaosLoad) call(ctx context.Context, method string, i, n int, f func(ctx context.Context, replica int) error) error {
	var err error
	for try := range n {
		cctx, cancel := context.WithTimeout(ctx, loadCall)
		err = f(cctx, (i+try)%n)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		l.mu.Lock()
		l.errs = append(l.errs, loadError{at: time.Now(), method: method, code: status.Code(err)})
		l.mu.Unlock()
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			return err
		}
	}
	return err
}

func (l *chaosLoad) poolPair(ctx context.Context, i int) bool {
	var lease *apv1.Lease
	err := l.call(ctx, "Acquire", i, len(l.pools), func(ctx context.Context, r int) error {
		resp, err := l.pools[r].Acquire(ctx, &apv1.AcquireRequest{MissionCode: "load", Holder: loadHolder, LeaseTtl: durationpb.New(time.Minute)})
		lease = resp.GetLease()
		return err
	})
	if err != nil {
		return false
	}
	err = l.call(ctx, "Release", i, len(l.pools), func(ctx context.Context, r int) error {
		_, err := l.pools[r].Release(ctx, &apv1.ReleaseRequest{LeaseId: lease.GetLeaseId(), FencingToken: lease.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT})
		return err
	})
	if err != nil {
		return false
	}
	l.completed(&l.lastPool)
	return true
}

func (l *chaosLoad) claimPair(ctx context.Context, i int) bool {
	var claims []*rqv1.MissionClaim
	err := l.call(ctx, "ClaimDueMissions", i, len(l.rqs), func(ctx context.Context, r int) error {
		resp, err := l.rqs[r].ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: loadChecker, MaxMissions: 1, ClaimTtl: durationpb.New(30 * time.Second)})
		claims = resp.GetClaims()
		return err
	})
	if err != nil {
		return false
	}
	for _, c := range claims {
		err := l.call(ctx, "ReportCheckResult", i, len(l.rqs), func(ctx context.Context, r int) error {
			_, err := l.rqs[r].ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{ClaimId: c.GetClaimId(),
				Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT, AccountId: 1, Detail: "chaos load"})
			return err
		})
		if err != nil {
			return false
		}
		l.mu.Lock()
		l.reported[c.GetClaimId()]++
		l.mu.Unlock()
	}
	l.completed(&l.lastClaim)
	return true
}

// listDeliveries reads the Notifier's log, as an operator's dashboard
// does; it is not a pair and does not count in ops/s.
func (l *chaosLoad) listDeliveries(ctx context.Context, i int) bool {
	if len(l.nts) == 0 {
		return true
	}
	err := l.call(ctx, "ListDeliveries", i, len(l.nts), func(ctx context.Context, r int) error {
		_, err := l.nts[r].ListDeliveries(ctx, &notifierv1.ListDeliveriesRequest{PageSize: 5})
		return err
	})
	return err == nil
}

// createFind opens the request the Checkers will find.
func (l *chaosLoad) createFind(ctx context.Context, i int) bool {
	if l.find == nil {
		return true
	}
	err := l.call(ctx, "CreateAppointmentRequest", i, len(l.rqs), func(ctx context.Context, r int) error {
		_, err := l.rqs[r].CreateAppointmentRequest(ctx, l.find)
		return err
	})
	return err == nil
}

func (l *chaosLoad) completed(last *time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = append(l.done, now)
	*last = now
}

// rate is the pairs per second completed in [from, to).
func (l *chaosLoad) rate(from, to time.Time) float64 {
	if !to.After(from) {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.done {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// bothSince says whether a pair of each kind completed after t.
func (l *chaosLoad) bothSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastPool.After(t) && l.lastClaim.After(t)
}

// internals counts INTERNAL answers since t.
func (l *chaosLoad) internals(since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		if e.code == codes.Internal && !e.at.Before(since) {
			n++
		}
	}
	return n
}

// doubleReports counts claims answered OK more than once.
func (l *chaosLoad) doubleReports() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.reported {
		if c > 1 {
			n++
		}
	}
	return n
}

// eventWatcher follows WatchEvents as a consumer does: from its cursor,
// on another replica when a stream breaks. It records the cursor of every
// event it gets, so that the suite can check each was delivered once.
type eventWatcher struct {
	rqs []rqv1.RequestsServiceClient

	mu     sync.Mutex
	seen   map[int64]int
	cursor int64
	// outOfOrder counts events whose cursor was not above the last one.
	outOfOrder int
}

func (w *eventWatcher) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		w.mu.Lock()
		after := w.cursor
		w.mu.Unlock()
		stream, err := w.rqs[i%len(w.rqs)].WatchEvents(ctx, &rqv1.WatchEventsRequest{AfterCursor: after})
		if err == nil {
			for {
				ev, err := stream.Recv()
				if err != nil {
					break
				}
				w.mu.Lock()
				if ev.GetCursor() <= w.cursor {
					w.outOfOrder++
				}
				w.seen[ev.GetCursor()]++
				w.cursor = max(w.cursor, ev.GetCursor())
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// check compares what the watcher got with the event ids in the database:
// each id up to the watcher's cursor delivered exactly once, none out of
// order. It reports the problems found (empty: held) and whether the
// watcher has caught up with last, the largest id.
func (w *eventWatcher) check(ids []int64, last int64) (problem string, caughtUp bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	missing, dup := 0, 0
	for _, id := range ids {
		if id > w.cursor {
			break
		}
		switch w.seen[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || w.outOfOrder > 0 {
		problem = "missing " + strconv.Itoa(missing) + ", duplicated " + strconv.Itoa(dup) + ", out of order " + strconv.Itoa(w.outOfOrder)
	}
	return problem, w.cursor >= last
}
