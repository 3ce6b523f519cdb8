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
	checks   *prometheus.CounterVec
	streamed prometheus.Counter
	watchers prometheus.Gauge
}

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
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_requests_checks_total",
			Help: "Checks reported by ReportCheckResult, by outcome: no_slot, slots_found, failed.",
		}, []string{"outcome"}),
		streamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_requests_events_streamed_total",
			Help: "Events sent to WatchEvents streams.",
		}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slotwatch_requests_watchers",
			Help: "WatchEvents streams open on this replica.",
		}),
	}
	for _, o := range []domain.Outcome{domain.OutcomeNoSlot, domain.OutcomeSlotsFound, domain.OutcomeFailed} {
		m.checks.WithLabelValues(string(o))
	}
	reg.MustRegister(m.claims, m.lapsed, m.checks, m.streamed, m.watchers,
		grpcserver.ScrapeGauge(requestsDesc, count, logger, "count requests for metrics"))
	return m
}

// Claimed counts the claims of one ClaimDueMissions.
func (m *Requests) Claimed(claims []domain.Claim) {
	if m == nil {
		return
	}
	m.claims.Add(float64(len(claims)))
	for _, c := range claims {
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

var requestsDesc = prometheus.NewDesc("slotwatch_requests",
	"Appointment requests by status now: pending, slot_found, cancelled, expired.", []string{"status"}, nil)
