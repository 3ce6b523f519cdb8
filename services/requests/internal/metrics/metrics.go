// Package metrics is the Requests service's domain metrics, besides the
// per-RPC ones. The names are pinned by the alert rules in deploy/k8s.
package metrics

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// Requests holds the counters the service moves. A nil *Requests counts
// nothing.
type Requests struct {
	claims   prometheus.Counter
	lapsed   prometheus.Counter
	lag      prometheus.Histogram
	checks   *prometheus.CounterVec
	streamed prometheus.Counter
	watchers prometheus.Gauge
	reads    *prometheus.CounterVec
	fellBack prometheus.Counter
	refused  *prometheus.CounterVec
	pruned   *prometheus.CounterVec
}

// Readers of the events table (the reader label of
// slotwatch_requests_event_reads_total).
const (
	// ReadFeed: the process's one live feed, reading new events once for
	// every stream.
	ReadFeed = "feed"
	// ReadReplay: a stream catching up from its own cursor.
	ReadReplay = "replay"
)

// Limits a WatchEvents stream can be refused by (the limit label of
// slotwatch_requests_watch_refused_total).
const (
	LimitPerCaller = "per_caller"
	LimitTotal     = "total"
)

// CountFunc counts requests by status now.
type CountFunc func(ctx context.Context) (map[domain.Status]int, error)

// New registers the metrics on reg; count is queried at each scrape for
// slotwatch_requests.
func New(reg prometheus.Registerer, count CountFunc, logger *slog.Logger) *Requests {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Requests{
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_requests_claims_total",
			Help: "Mission claims granted by ClaimDueMissions.",
		}),
		lapsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_requests_claims_lapsed_total",
			Help: "Claims that ran out without a report (counted when the mission is claimed again).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slotwatch_requests_claim_lag_seconds",
			Help:    "Time from a mission becoming due for a check (last check plus REQUESTS_CHECK_INTERVAL, a lapsed claim's end, or a new pending request) to a checker claiming it, including the time it waits for its portal (a pause, the cap per minute, quiet hours, the minimum interval).",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_requests_checks_total",
			Help: "Checks reported by ReportCheckResult, by outcome: no_slot, slots_found, failed, and the walls captcha, blocked, rate_limited, maintenance.",
		}, []string{"outcome"}),
		streamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_requests_events_streamed_total",
			Help: "Events sent to WatchEvents streams.",
		}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slotwatch_requests_watchers",
			Help: "WatchEvents streams open on this replica.",
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_requests_event_reads_total",
			Help: "Queries of the events table by reader: feed (the one live reader per replica), replay (a stream catching up from its cursor).",
		}, []string{"reader"}),
		fellBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_requests_watch_fell_behind_total",
			Help: "Times a WatchEvents stream fell behind the live feed (its buffer full) and went back to replaying from its cursor.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_requests_watch_refused_total",
			Help: "WatchEvents streams refused with RESOURCE_EXHAUSTED, by limit: per_caller, total.",
		}, []string{"limit"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_requests_pruned_rows_total",
			Help: "Rows deleted by retention (REQUESTS_RETENTION), by table: checks, claims, events.",
		}, []string{"table"}),
	}
	for _, t := range []string{"checks", "claims", "events"} {
		m.pruned.WithLabelValues(t)
	}
	for _, r := range []string{ReadFeed, ReadReplay} {
		m.reads.WithLabelValues(r)
	}
	for _, l := range []string{LimitPerCaller, LimitTotal} {
		m.refused.WithLabelValues(l)
	}
	for _, o := range []domain.Outcome{domain.OutcomeNoSlot, domain.OutcomeSlotsFound, domain.OutcomeFailed,
		domain.OutcomeCaptcha, domain.OutcomeBlocked, domain.OutcomeRateLimited, domain.OutcomeMaintenance} {
		m.checks.WithLabelValues(string(o))
	}
	reg.MustRegister(m.claims, m.lapsed, m.lag, m.checks, m.streamed, m.watchers, m.reads, m.fellBack, m.refused, m.pruned,
		grpcserver.ScrapeGauge(requestsDesc, count, logger, "count requests for metrics"))
	return m
}

// Claimed counts the claims of one ClaimDueMissions and observes each
// one's claim lag.
func (m *Requests) Claimed(claims []domain.Claim) {
	if m == nil {
		return
	}
	m.claims.Add(float64(len(claims)))
	for _, c := range claims {
		// A replica whose clock is behind the one that wrote
		// last_checked_at may see a mission claimed before it was due.
		m.lag.Observe(max(c.ClaimedAt.Sub(c.DueAt), 0).Seconds())
		if c.TookOverLapsed {
			m.lapsed.Inc()
		}
	}
}

// Checked counts one reported check.
func (m *Requests) Checked(o domain.Outcome) {
	if m != nil {
		m.checks.WithLabelValues(string(o)).Inc()
	}
}

// Streamed counts one event sent to a watcher.
func (m *Requests) Streamed() {
	if m != nil {
		m.streamed.Inc()
	}
}

// Watching counts a WatchEvents stream until the returned function is
// called.
func (m *Requests) Watching() (done func()) {
	if m == nil {
		return func() {}
	}
	m.watchers.Inc()
	return m.watchers.Dec
}

// EventsRead counts one query of the events table by reader (ReadFeed,
// ReadReplay).
func (m *Requests) EventsRead(reader string) {
	if m != nil {
		m.reads.WithLabelValues(reader).Inc()
	}
}

// FellBehind counts a stream that went back to replaying.
func (m *Requests) FellBehind() {
	if m != nil {
		m.fellBack.Inc()
	}
}

// WatchRefused counts a stream refused by limit (LimitPerCaller,
// LimitTotal).
func (m *Requests) WatchRefused(limit string) {
	if m != nil {
		m.refused.WithLabelValues(limit).Inc()
	}
}

// Pruned counts n rows of table deleted by retention.
func (m *Requests) Pruned(table string, n int) {
	if m != nil && n > 0 {
		m.pruned.WithLabelValues(table).Add(float64(n))
	}
}

// PausedFunc gives, for every portal, the reason of its pause in force
// (requests.portals.pause_reason, never empty), or "" when it is not
// paused.
type PausedFunc func(ctx context.Context) (map[string]string, error)

// Kinds of pause (the reason label of slotwatch_requests_portal_paused).
const (
	// PausedWalls: a pause after walls, the backoff's (its level raised),
	// or a bot wall's Retry-After, also one that lengthened a
	// maintenance's pause.
	PausedWalls = "walls"
	// PausedMaintenance: the portal's maintenance page named when it is
	// back, below the walls threshold (domain.Portal.Wall): the pause lasts
	// that Retry-After and leaves the level, and no bot wall lengthened it.
	PausedMaintenance = "maintenance"
)

type pausedKey struct{ portal, reason string }

// PortalsPaused is the slotwatch_requests_portal_paused gauge, read from
// the database at each scrape; its portal label takes the names in
// requests.portals, so it stays bounded by what operators configured and
// walls of configured missions created. Each portal has both series,
// reason walls and reason maintenance, always: 1 in the one its pause in
// force is (PausedWalls, PausedMaintenance), 0 in the other, 0 in both
// when it is not paused. So a pause of the other kind moves a value and
// makes no series appear or go stale, and max_over_time bridges the checks
// between two pauses of one kind.
func PortalsPaused(query PausedFunc, logger *slog.Logger) prometheus.Collector {
	if logger == nil {
		logger = slog.Default()
	}
	return grpcserver.ScrapeGaugeVec(portalPausedDesc, func(ctx context.Context) (map[pausedKey]int, error) {
		reasons, err := query(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[pausedKey]int, 2*len(reasons))
		for portal, reason := range reasons {
			out[pausedKey{portal, PausedWalls}], out[pausedKey{portal, PausedMaintenance}] = 0, 0
			switch {
			case reason == "":
			case domain.IsMaintenancePause(reason):
				out[pausedKey{portal, PausedMaintenance}] = 1
			default:
				out[pausedKey{portal, PausedWalls}] = 1
			}
		}
		return out, nil
	}, func(k pausedKey) []string { return []string{k.portal, k.reason} }, logger, "read paused portals for metrics")
}

var portalPausedDesc = prometheus.NewDesc("slotwatch_requests_portal_paused",
	"1 while a portal is paused (no mission of it is claimed) in the series of the pause's reason: walls (after walls: CAPTCHA, blocked, rate limited, or maintenance pages reaching the threshold), maintenance (its maintenance page named when it is back); 0 otherwise. Two series per portal in requests.portals, always.",
	[]string{"portal", "reason"}, nil)

var requestsDesc = prometheus.NewDesc("slotwatch_requests",
	"Appointment requests by status now: pending, slot_found, booked, cancelled, expired.", []string{"status"}, nil)
