package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// batcher coalesces calls group-commit style (issue 16): a call that
// arrives while no batch of its kind is in flight starts one at once, with
// itself alone; calls that arrive while one runs queue up and go together
// in the next, which starts as soon as the running one ends. No call waits
// for company, and under load each statement serves many callers.
type batcher[Req, Res any] struct {
	// run serves the requests of one batch, answering each (in order).
	run func(ctx context.Context, reqs []Req) []Res
	// abandoned gets the answers of the calls whose callers gave up while
	// their batch ran (leases to hand back), all of one batch at once. It
	// is called in the batch loop, so it must not wait for the database.
	abandoned func(ctx context.Context, res []Res)
	// max is the most calls in one batch.
	max int
	// work counts the batch loop as in flight from the moment a call
	// starts it until it ends, hand-backs included, for Drain: a batch
	// whose callers all gave up has no one else waiting for it.
	work *inFlight

	mu      sync.Mutex
	pending []*call[Req, Res]
	running bool

	// batches and calls count the statements run and the calls they
	// served; busy is the time the batches took, in nanoseconds.
	batches, calls, busy atomic.Int64
}

// call is one caller's place in a batch.
type call[Req, Res any] struct {
	req  Req
	done chan Res
	// state: callWaiting, then callAnswered (the batch answered) or
	// callAbandoned (the caller left first); whoever moves it first wins.
	state atomic.Int32
}

const (
	callWaiting int32 = iota
	callAnswered
	callAbandoned
)

// batchTimeout bounds one batch's statement: it runs for many callers, so
// it does not end with the context of any one of them.
const batchTimeout = 30 * time.Second

// do queues req and returns its answer, or ctx's error if the caller gives
// up first. A caller who gives up before its batch starts is left out of
// it; one who gives up while it runs has its answer passed to abandoned.
func (b *batcher[Req, Res]) do(ctx context.Context, req Req) (Res, error) {
	if err := ctx.Err(); err != nil {
		var zero Res
		return zero, err // gone already: no batch for it
	}
	c := &call[Req, Res]{req: req, done: make(chan Res, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	lead := !b.running
	if lead {
		b.running = true
		b.work.add()
	}
	b.mu.Unlock()
	if lead {
		// The leader is in the batch it runs here, and cannot leave
		// while it runs: if it gave up meanwhile, its answer is
		// abandoned now, as a waiting caller's would have been (still
		// in flight for Drain until then: a hard stop does not wait for
		// this handler).
		b.work.add()
		defer b.work.done()
		b.lead(context.WithoutCancel(ctx))
		res := <-c.done
		if err := ctx.Err(); err != nil {
			if b.abandoned != nil {
				b.abandoned(context.WithoutCancel(ctx), []Res{res})
			}
			var zero Res
			return zero, err
		}
		return res, nil
	}
	select {
	case res := <-c.done:
		return res, nil
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			var zero Res
			return zero, ctx.Err()
		}
		// The answer was given before the caller left: it is the caller's.
		return <-c.done, nil
	}
}

// lead runs one batch of what is pending, then hands the lead to a new
// goroutine if more calls queued meanwhile, so that the caller who led
// gets its own answer without waiting for later batches.
func (b *batcher[Req, Res]) lead(ctx context.Context) {
	b.mu.Lock()
	var calls []*call[Req, Res]
	for len(b.pending) > 0 && len(calls) < b.max {
		c := b.pending[0]
		b.pending = b.pending[1:]
		if c.state.Load() == callWaiting {
			calls = append(calls, c)
		}
	}
	if len(b.pending) == 0 {
		b.pending = nil
	}
	b.mu.Unlock()

	if len(calls) > 0 {
		reqs := make([]Req, len(calls))
		for i, c := range calls {
			reqs[i] = c.req
		}
		b.batches.Add(1)
		b.calls.Add(int64(len(calls)))
		runCtx, cancel := context.WithTimeout(ctx, batchTimeout)
		started := time.Now()
		answers := b.run(runCtx, reqs)
		b.busy.Add(int64(time.Since(started)))
		cancel()
		var gone []Res
		for i, c := range calls {
			if c.state.CompareAndSwap(callWaiting, callAnswered) {
				c.done <- answers[i]
			} else {
				gone = append(gone, answers[i])
			}
		}
		if len(gone) > 0 && b.abandoned != nil {
			b.abandoned(ctx, gone)
		}
	}

	b.mu.Lock()
	more := len(b.pending) > 0
	b.running = more
	b.mu.Unlock()
	if more {
		go b.lead(ctx) // still in flight: the next batch ends it
		return
	}
	b.work.done()
}

// inFlight counts work that must end before the database pool closes.
// Unlike a sync.WaitGroup, it may go from zero to one while someone waits
// (a call that comes during a stop).
type inFlight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero
}

func (w *inFlight) add() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		w.idle = make(chan struct{})
	}
	w.n++
}

func (w *inFlight) done() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n--
	if w.n == 0 {
		close(w.idle)
	}
}

// goCounted runs f in a goroutine of its own, counted.
func (w *inFlight) goCounted(f func()) {
	w.add()
	go func() {
		defer w.done()
		f()
	}()
}

// wait returns when nothing is in flight, or ctx's error.
func (w *inFlight) wait(ctx context.Context) error {
	w.mu.Lock()
	if w.n == 0 {
		w.mu.Unlock()
		return nil
	}
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchStats counts the batches a Store ran: those with Acquires and
// with Releases in them (a batch may have both) and the calls of each kind
// they served; Batches and Busy are all the batches and the time they took
// (from the first byte sent to the commit's answer, in this process).
type BatchStats struct {
	AcquireBatches, AcquireCalls, ReleaseBatches, ReleaseCalls int64
	Batches                                                    int64
	Busy                                                       time.Duration
}

// BatchStats returns the counts so far; zero without WithBatching.
func (s *Store) BatchStats() BatchStats {
	if s.batch == nil {
		return BatchStats{}
	}
	return BatchStats{
		AcquireBatches: s.counts.acquireBatches.Load(), AcquireCalls: s.counts.acquireCalls.Load(),
		ReleaseBatches: s.counts.releaseBatches.Load(), ReleaseCalls: s.counts.releaseCalls.Load(),
		Batches: s.batch.batches.Load(), Busy: time.Duration(s.batch.busy.Load()),
	}
}
