// Package delivery is the Notifier's delivery loop: it claims due
// deliveries from the log (FOR UPDATE SKIP LOCKED, under a lease that
// lapses if this replica dies), or takes those its replica's consumer
// recorded already leased to it (Hand), sends each through its channel,
// and records the outcome. A delivery is sent at least once; the log holds it
// once, and every attempt carries its idempotency key, so a receiver can
// drop the repeat that a crash between send and record causes.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/metrics"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
)

// Defaults of Config.
const (
	DefaultLease       = time.Minute
	DefaultPoll        = time.Second
	DefaultConcurrency = 8
	// MaxConcurrency caps Config.Concurrency: each worker reserves room
	// for handed deliveries, and more sends at once than this would be
	// more connections than a receiver or Postgres wants from one replica.
	MaxConcurrency = 1024
	// maxErrorLen bounds last_error, in characters.
	maxErrorLen = 500
	// handedPerWorker bounds the deliveries handed over by the consumer
	// and not yet sent, per worker: a queue that drains well within a
	// lease when the receivers answer in time (2,048 at the default
	// concurrency: four of the consumer's largest batches), and takes a
	// burst without sending part of it the claim's way.
	handedPerWorker = 256
)

// Config configures the loop.
type Config struct {
	// Retry is the backoff and the attempts before DEAD.
	Retry domain.Retry
	// Lease is how long one attempt holds a delivery; a send is cut at
	// three quarters of it (from the claim, or from the record for a
	// handed delivery), so the outcome is recorded before it lapses; a
	// send still gets its channel's whole timeout (attempt says how).
	Lease time.Duration
	// Poll is how often the log is read when nothing rang the doorbell
	// (deliveries recorded by another replica, retries coming due).
	Poll time.Duration
	// Concurrency is how many sends run at once.
	Concurrency int
}

// Loop sends deliveries.
type Loop struct {
	store   *store.Store
	app     *app.App
	senders map[channel.Kind]channel.Sender
	kinds   []string
	cfg     Config
	now     func() time.Time
	bell    chan struct{}
	// handed are deliveries this replica's consumer recorded leased to
	// this loop (only the consumer sends on it; Offer says how many fit).
	handed  chan domain.Delivery
	metrics *metrics.Notifier
	logger  *slog.Logger
}

// New returns a loop sending through senders (one per kind); deliveries of
// a kind with no sender here stay queued for a replica that has one.
func New(st *store.Store, a *app.App, senders map[channel.Kind]channel.Sender, cfg Config, now func() time.Time,
	m *metrics.Notifier, logger *slog.Logger) *Loop {
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = domain.DefaultRetry
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(senders)) {
		kinds = append(kinds, string(k))
	}
	return &Loop{store: st, app: a, senders: senders, kinds: kinds, cfg: cfg, now: now, bell: make(chan struct{}, 1),
		handed: make(chan domain.Delivery, handedPerWorker*cfg.Concurrency), metrics: m, logger: logger}
}

// Offer says until when deliveries recorded now for this loop to send are
// leased, and how many it takes (Hand) at most.
func (l *Loop) Offer(now time.Time) (leaseUntil time.Time, room int) {
	return now.Add(l.cfg.Lease), cap(l.handed) - len(l.handed)
}

// Sends says whether this loop sends deliveries of kind.
func (l *Loop) Sends(kind channel.Kind) bool {
	_, ok := l.senders[kind]
	return ok
}

// Hand gives the loop deliveries recorded leased to it (as Offer said):
// they are sent without a claim. One that finds no room is left to its
// lease, which lapses for a Claim to take it.
func (l *Loop) Hand(ds []domain.Delivery) {
	for _, d := range ds {
		select {
		case l.handed <- d:
		default:
		}
	}
}

// Wake rings the doorbell: deliveries were recorded.
func (l *Loop) Wake() {
	select {
	case l.bell <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends. Sends in flight finish (within their timeout)
// before it returns; handed deliveries not yet started are released.
//
// Concurrency workers send what was handed over and what this loop claims
// for them: a batch of up to twice their number whenever at least half of
// the queue is free, so a burst is claimed in a few statements rather than
// one per delivery.
func (l *Loop) Run(ctx context.Context) error {
	n := l.cfg.Concurrency
	work, freed := make(chan domain.Delivery, 2*n), make(chan struct{}, 1)
	delivered := make(chan domain.Delivery, 4*n)
	// Sends are recorded even while the service stops.
	record := context.WithoutCancel(ctx)
	recorded := make(chan struct{})
	go func() { l.recordDelivered(record, delivered); close(recorded) }()
	send := func(d domain.Delivery) {
		if l.attempt(record, ctx.Err() != nil, d) {
			delivered <- d
		}
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Once stopping, the claimed ones are sent, not the handed.
				if ctx.Err() != nil {
					for d := range work {
						send(d)
					}
					return
				}
				select {
				case <-ctx.Done():
				case d := <-l.handed:
					send(d)
				case d, ok := <-work:
					if !ok {
						return
					}
					send(d)
					select {
					case freed <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	swept := make(chan struct{})
	go func() { l.sweepHanded(ctx, record); close(swept) }()
	defer func() {
		<-swept
		// The handed deliveries no worker started go back now, not after
		// the sends in flight: a stop cut short by SIGKILL would leave
		// them leased to this process. Stragglers go after the wait.
		l.release(record)
		close(work)
		wg.Wait()
		l.release(record)
		close(delivered)
		<-recorded
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-l.bell:
		}
		for ctx.Err() == nil {
			room := cap(work) - len(work)
			if room < n {
				select {
				case <-ctx.Done():
				case <-freed:
				}
				continue
			}
			now := l.now()
			ds, err := l.store.Claim(ctx, now, now.Add(l.cfg.Lease), l.kinds, room)
			if err != nil {
				if ctx.Err() == nil {
					l.logger.Warn("claim deliveries failed", "error", err)
				}
				break
			}
			for _, d := range ds {
				work <- d // room was free, and only this loop sends
			}
			if len(ds) < room {
				break
			}
		}
		timer.Reset(l.cfg.Poll)
	}
}

// recordBatch bounds the deliveries one statement marks delivered;
// recordEvery bounds how long a delivered one waits for its batch.
const (
	recordBatch = 128
	recordEvery = 5 * time.Millisecond
)

// recordDelivered marks the accepted deliveries delivered, many per
// statement: what arrives while one statement runs goes in the next.
func (l *Loop) recordDelivered(ctx context.Context, in <-chan domain.Delivery) {
	var batch []domain.Delivery
	flush := func() {
		if len(batch) == 0 {
			return
		}
		now := l.now()
		held, err := l.store.MarkDeliveredBatch(ctx, batch, now)
		switch {
		case err != nil:
			l.logger.Warn("could not record delivered attempts; they will be attempted again when their leases lapse", "count", len(batch), "error", err)
		case held < len(batch):
			l.logger.Warn("delivery attempts outlived their lease; other attempts own those deliveries", "count", len(batch)-held)
		}
		for _, d := range batch {
			l.metrics.Attempted(d.Kind, metrics.ResultDelivered, now.Sub(d.EventOccurredAt))
		}
		batch = batch[:0]
	}
	for {
		d, ok := <-in
		if !ok {
			return
		}
		batch = append(batch, d)
		deadline := time.After(recordEvery)
	fill:
		for len(batch) < recordBatch {
			select {
			case d, ok := <-in:
				if !ok {
					flush()
					return
				}
				batch = append(batch, d)
			case <-deadline:
				break fill
			}
		}
		flush()
	}
}

// attempt sends d once; it records a failure itself and says whether the
// receiver accepted d (for recordDelivered to record).
func (l *Loop) attempt(ctx context.Context, stopping bool, d domain.Delivery) bool {
	// The send ends with a quarter of the lease left, to record its
	// outcome while the attempt still holds the delivery. One that waited
	// for a worker for half of its lease is given back instead.
	left := d.LeaseUntil.Add(-l.cfg.Lease / 4).Sub(l.now())
	if left < l.cfg.Lease/4 {
		l.logger.Info("a delivery waited too long for a worker; released for the next claim", "delivery", d.ID)
		l.giveBack(ctx, []domain.Delivery{d})
		return false
	}
	// One that waited less still gets its channel's whole timeout: cut
	// short, a receiver answering within the timeout would count as a
	// failed attempt. Up to an eighth of the lease comes out of the
	// quarter kept for recording (a handed delivery waits no longer than
	// that: handWait); past that, the lease is extended first.
	if need := l.sendTime(d.Kind); left < need {
		if need-left > l.cfg.Lease/8 {
			// A stopping loop extends no lease: the stop must end
			// within one (the pod's grace period is the lease), so the
			// delivery goes back, its attempt uncounted, for another
			// replica.
			if stopping {
				l.logger.Info("stopping: a delivery that would need its lease extended is released for the next claim", "delivery", d.ID)
				l.giveBack(ctx, []domain.Delivery{d})
				return false
			}
			now := l.now()
			held, err := l.store.Extend(ctx, d, now.Add(l.cfg.Lease))
			if err != nil || !held {
				l.recorded(d, held, err)
				return false
			}
			d.LeaseUntil = now.Add(l.cfg.Lease)
		}
		left = need
	}
	msg := channel.Message{IdempotencyKey: d.IdempotencyKey(), To: d.Address, Subject: d.Subject, Text: d.Text, HTML: d.HTML, JSON: d.JSON}
	err := l.prepare(d, &msg)
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, left)
		err = l.senders[d.Kind].Send(sendCtx, msg)
		cancel()
	}
	if err == nil {
		return true
	}
	now := l.now()
	o := l.cfg.Retry.Outcome(d, err, now)
	if o.Deferred {
		held, recErr := l.store.Defer(ctx, d, now.Add(o.Wait), truncate(err.Error()))
		l.recorded(d, held, recErr)
		l.logger.Debug("delivery deferred to its channel's next turn; no attempt counted", "delivery", d.ID, "kind", string(d.Kind),
			"retry_in", o.Wait.String(), "error", err)
		l.metrics.Deferred(d.Kind)
		return false
	}
	held, recErr := l.store.MarkFailed(ctx, d, o.Dead, now.Add(o.Wait), truncate(err.Error()))
	l.recorded(d, held, recErr)
	result := metrics.ResultRetry
	if o.Dead {
		result = metrics.ResultDead
		l.logger.Warn("delivery is dead", "delivery", d.ID, "kind", string(d.Kind), "attempts", d.Attempts, "error", err)
	} else {
		l.logger.Info("delivery failed; retrying later", "delivery", d.ID, "kind", string(d.Kind), "attempts", d.Attempts,
			"retry_in", o.Wait.String(), "error", err)
	}
	l.metrics.Attempted(d.Kind, result, 0)
	return false
}

// sendTime is how long a send of kind needs at most: its channel's own
// timeout, within the three quarters of a lease that a send gets.
func (l *Loop) sendTime(kind channel.Kind) time.Duration {
	budget := l.cfg.Lease * 3 / 4
	if t, ok := l.senders[kind].(channel.Timed); ok && t.Timeout() > 0 {
		return min(t.Timeout(), budget)
	}
	return budget
}

// release gives back the handed deliveries no worker started (the loop is
// stopping), so another replica claims them without waiting for their
// leases to lapse. One the consumer hands over after this lapses, as a
// crashed replica's would.
func (l *Loop) release(ctx context.Context) {
	l.giveBackHanded(ctx, func(domain.Delivery) bool { return true })
}

// handWait is how long a handed delivery waits for a worker of its loop
// before it is given back for any replica's claim: a loop whose receivers
// are slow does not keep a burst to itself while other replicas idle.
func (l *Loop) handWait() time.Duration { return l.cfg.Lease / 8 }

// sweepHanded gives back, every half handWait until ctx ends, the handed
// deliveries that waited handWait.
func (l *Loop) sweepHanded(ctx, record context.Context) {
	t := time.NewTicker(l.handWait() / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := l.now().Add(-l.handWait())
		if n := l.giveBackHanded(record, func(d domain.Delivery) bool {
			return !d.LeaseUntil.Add(-l.cfg.Lease).After(cutoff) // handed before cutoff
		}); n > 0 {
			l.logger.Info("a delivery waited too long for a worker; released for the next claim", "count", n)
		}
	}
}

// giveBackHanded takes the handed deliveries from the head of the queue
// (the oldest first) while give says so, and gives them back; the first
// one it keeps goes back to the queue's tail. It returns how many it gave
// back.
func (l *Loop) giveBackHanded(ctx context.Context, give func(domain.Delivery) bool) int {
	var ds []domain.Delivery
take:
	for range cap(l.handed) {
		select {
		case d := <-l.handed:
			if give(d) {
				ds = append(ds, d)
				continue
			}
			select {
			case l.handed <- d:
			default: // the consumer filled its place meanwhile
				ds = append(ds, d)
			}
			break take
		default:
			break take
		}
	}
	if len(ds) > 0 {
		l.giveBack(ctx, ds)
	}
	return len(ds)
}

func (l *Loop) giveBack(ctx context.Context, ds []domain.Delivery) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.store.Release(ctx, ds); err != nil {
		l.logger.Warn("could not release deliveries; they are due again when their leases lapse", "count", len(ds), "error", err)
		return
	}
	l.Wake()
}

// prepare adds what the stored message lacks: a webhook's signing secrets,
// as claimed with it.
func (l *Loop) prepare(d domain.Delivery, msg *channel.Message) error {
	if d.RecipientGone {
		return channel.Permanent(errors.New("the recipient was deleted"))
	}
	if d.Kind != channel.Webhook {
		return nil
	}
	secrets, err := l.app.OpenSecrets(d)
	if err != nil {
		return err
	}
	msg.SigningSecrets = secrets
	return nil
}

func (l *Loop) recorded(d domain.Delivery, held bool, err error) {
	switch {
	case err != nil:
		l.logger.Warn("could not record a delivery attempt; it will be attempted again when its lease lapses", "delivery", d.ID, "error", err)
	case !held:
		l.logger.Warn("a delivery attempt outlived its lease; another attempt owns the delivery", "delivery", d.ID)
	}
}

func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxErrorLen {
		return s
	}
	r := []rune(s)
	return string(r[:maxErrorLen]) + "…"
}
