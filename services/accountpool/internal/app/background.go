package app

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

// broadcast wakes every waiter at once: wait returns a channel that closes
// at the next fire.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// Listen holds one connection that LISTENs for store.FreeChannel and wakes
// every waiting Acquire of this replica when any replica frees an account.
// It reconnects until ctx ends, and pings a quiet connection to find one
// that died silently (pgdb.Listener); on each (re)connect it wakes every
// waiter, since anything freed while it was not listening went unheard.
func (p *Pool) Listen(ctx context.Context, connConfig *pgx.ConnConfig) error {
	l := &pgdb.Listener{
		Config: connConfig, Channels: []string{store.FreeChannel}, Logger: p.logger,
		Notify:    func(*pgconn.Notification) { p.free.fire() },
		Missed:    p.free.fire,
		IdleCheck: p.listenIdle, PingTimeout: p.listenIdle,
	}
	l.Run(ctx)
	return nil
}

// ExpireLoop ends leases when their time runs out, whether or not anyone
// calls Acquire: an expired lease counts a failure and is logged as
// lease_expired, which is more than a flag turning back. It sleeps until the
// earliest known lease end (plus the expiry grace), and looks again at
// least every maxSleep for leases granted by other replicas. Every replica
// runs it; the store's conditional write makes each lease expire once.
func (p *Pool) ExpireLoop(ctx context.Context, maxSleep time.Duration) error {
	for {
		if _, err := p.ExpireLeases(ctx); err != nil && ctx.Err() == nil {
			p.logger.WarnContext(ctx, "expire leases", "error", err)
		}
		sleep := maxSleep
		if next, err := p.store.NextLeaseExpiry(ctx); err == nil && next != nil {
			sleep = min(sleep, max(next.Add(domain.ExpiryGrace).Sub(p.Now()), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
}
