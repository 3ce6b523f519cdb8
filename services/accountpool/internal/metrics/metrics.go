// Package metrics is the account pool's domain metrics: what alert rules
// and dashboards watch besides the per-RPC ones. The names are pinned by
// the alert rules in deploy/k8s.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/metriclabel"
)

// Acquire results.
const (
	AcquireLeased          = "leased"
	AcquireExhausted       = "exhausted"
	AcquireNoActiveAccount = "no_active_account"
	AcquireError           = "error"
)

// Pool holds the counters the application layer moves. A nil *Pool counts
// nothing, so the app runs without metrics in tools and tests.
type Pool struct {
	acquires *prometheus.CounterVec
	wait     prometheus.Histogram
	releases *prometheus.CounterVec
	missions *metriclabel.Bounded
	expired  prometheus.Counter
	fencing  prometheus.Counter
	pruned   prometheus.Counter
}

// MaxMissionLabels is how many distinct missions get a series of their own
// in slotwatch_pool_releases_total: the first ones this process releases a
// lease for. Releases for any other mission count under OtherMission. The
// mission comes from Acquire's request, which any checker token writes, so
// without the bound a caller could create series without end.
const MaxMissionLabels = 100

// OtherMission is the mission label of releases past MaxMissionLabels (a
// mission actually called "other" shares it).
const OtherMission = metriclabel.Other

// StatusFunc counts accounts by state now.
type StatusFunc func(ctx context.Context) (domain.PoolStatus, error)

// New registers the pool's metrics on reg. status is queried at each
// scrape for slotwatch_pool_accounts.
func New(reg prometheus.Registerer, status StatusFunc, logger *slog.Logger) *Pool {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Pool{
		acquires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_pool_acquire_total",
			Help: "Acquire calls by result: leased, exhausted (RESOURCE_EXHAUSTED: no account free), no_active_account, error.",
		}, []string{"result"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slotwatch_pool_acquire_wait_seconds",
			Help:    "Time an Acquire that was allowed to wait (wait > 0) spent before it answered.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600},
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_pool_releases_total",
			Help: fmt.Sprintf("Leases released, by outcome and mission (a replayed retry is not counted again); past the first %d missions a process sees, mission is %q.", MaxMissionLabels, OtherMission),
		}, []string{"outcome", "mission"}),
		missions: metriclabel.NewBounded(MaxMissionLabels),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_pool_lease_expired_total",
			Help: "Leases that ended because their holder did not release or renew them in time.",
		}),
		fencing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_pool_fencing_rejections_total",
			Help: "Renew or Release refused because the caller no longer held the lease (stale fencing token, lease expired or already ended).",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_pool_usage_pruned_total",
			Help: "Usage log rows deleted by retention (POOL_USAGE_RETENTION).",
		}),
	}
	for _, r := range []string{AcquireLeased, AcquireExhausted, AcquireNoActiveAccount, AcquireError} {
		m.acquires.WithLabelValues(r)
	}
	reg.MustRegister(m.acquires, m.wait, m.releases, m.expired, m.fencing, m.pruned,
		grpcserver.ScrapeGauge(accountsDesc, accountsByState(status), logger, "pool status for metrics"))
	return m
}

// Acquired counts one Acquire by result.
func (m *Pool) Acquired(result string) {
	if m != nil {
		m.acquires.WithLabelValues(result).Inc()
	}
}

// Waited records how long an Acquire with wait took.
func (m *Pool) Waited(d time.Duration) {
	if m != nil {
		m.wait.Observe(d.Seconds())
	}
}

// Released counts one lease ended by its holder.
func (m *Pool) Released(outcome domain.Outcome, mission string) {
	if m != nil {
		m.releases.WithLabelValues(string(outcome), m.missions.Value(mission)).Inc()
	}
}

// Expired counts n leases that ran out.
func (m *Pool) Expired(n int) {
	if m != nil && n > 0 {
		m.expired.Add(float64(n))
	}
}

// UsagePruned counts n usage log rows deleted by retention.
func (m *Pool) UsagePruned(n int) {
	if m != nil && n > 0 {
		m.pruned.Add(float64(n))
	}
}

// FencingRejected counts a Renew or Release from a holder that no longer
// held its lease.
func (m *Pool) FencingRejected() {
	if m != nil {
		m.fencing.Inc()
	}
}

var accountsDesc = prometheus.NewDesc("slotwatch_pool_accounts",
	"Accounts by state now: available, leased, cooldown, quarantined, disabled, over_login_budget (resting from nothing but the login budget).", []string{"state"}, nil)

// stateOverLoginBudget is the slotwatch_pool_accounts series of the
// accounts GetPoolStatus counts as over_login_budget (not a domain.State:
// the budget is not in an account's timestamps).
const stateOverLoginBudget domain.State = "over_login_budget"

// accountsByState is status as the values of slotwatch_pool_accounts.
func accountsByState(status StatusFunc) func(context.Context) (map[domain.State]int, error) {
	return func(ctx context.Context) (map[domain.State]int, error) {
		st, err := status(ctx)
		if err != nil {
			return nil, err
		}
		return map[domain.State]int{
			domain.StateAvailable: st.Available, domain.StateLeased: st.Leased, domain.StateCooldown: st.InCooldown,
			domain.StateQuarantined: st.Quarantined, domain.StateDisabled: st.Disabled,
			stateOverLoginBudget: st.OverLoginBudget,
		}, nil
	}
}
