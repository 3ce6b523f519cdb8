// Package metrics is the Notifier's domain metrics, besides the per-RPC
// ones. The names are pinned by the alert rules in deploy/k8s.
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
)

// Results of one delivery attempt (the result label of
// slotwatch_notifier_delivery_attempts_total).
const (
	ResultDelivered = "delivered"
	ResultRetry     = "retry"
	ResultDead      = "dead"
)

// Notifier holds the metrics the service moves. A nil *Notifier counts
// nothing.
type Notifier struct {
	attempts *prometheus.CounterVec
	deferred *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	events   *prometheus.CounterVec
	recorded prometheus.Counter
	cursor   prometheus.Gauge
	leader   prometheus.Gauge
	retries  prometheus.Counter
	render   *prometheus.CounterVec
	pruned   prometheus.Counter
	// prunedDeliveries counts deliveries deleted by retention; pruned
	// counts the times Requests' retention took events from the consumer.
	prunedDeliveries prometheus.Counter
}

// CountFunc counts deliveries by state now.
type CountFunc func(ctx context.Context) (map[domain.DeliveryState]int, error)

// New registers the metrics on reg; count is queried at each scrape for
// slotwatch_notifier_deliveries.
func New(reg prometheus.Registerer, count CountFunc, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Notifier{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_notifier_delivery_attempts_total",
			Help: "Delivery attempts by channel and result: delivered, retry (failed, tried again later), dead (given up: refused for good or out of attempts).",
		}, []string{"kind", "result"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_notifier_deliveries_deferred_total",
			Help: "Sends a channel held back, by channel: its own pacing (Telegram's rate limits, or a flood wait Telegram set) would have ended after the send's deadline. Nothing was sent, no attempt counted; the delivery is due again at its turn.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slotwatch_notifier_delivery_latency_seconds",
			Help:    "Time from the event in Requests to the receiver accepting its delivery, by channel.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800},
		}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_notifier_events_total",
			Help: "Requests events consumed by this replica, by type (slot_found, expired, cancelled, other).",
		}, []string{"type"}),
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_notifier_deliveries_recorded_total",
			Help: "Deliveries written to the delivery log by this replica's consumer.",
		}),
		cursor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slotwatch_notifier_consumer_cursor",
			Help: "The Requests event cursor this replica's consumer last recorded (0 while it does not consume).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slotwatch_notifier_consumer_active",
			Help: "1 while this replica holds the consumer lock and follows Requests' events, 0 on standby.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_notifier_consumer_retries_total",
			Help: "Times this replica's consumer lost Requests (the event stream could not open or dropped, or Requests did not answer a lookup) and waits, with backoff, to resume from the stored cursor: it rises while Requests is down or not serving yet.",
		}),
		render: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_notifier_render_failures_total",
			Help: "Messages the consumer could not render, by event type: that recipient is not notified of the event (logged at error with the event's cursor and the recipient); the others and the events after it are.",
		}, []string{"type"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_notifier_consumer_pruned_total",
			Help: "Times Requests refused this replica's consumer's cursor (OUT_OF_RANGE): its retention had pruned events not recorded yet, which are lost; the consumer resumed from the oldest event kept.",
		}),
		prunedDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotwatch_notifier_deliveries_pruned_total",
			Help: "Deliveries deleted by retention (NOTIFIER_RETENTION): delivered or dead, recorded longer ago than it, of events at or before the stored cursor.",
		}),
	}
	for _, k := range []channel.Kind{channel.Email, channel.Telegram, channel.Webhook} {
		m.latency.WithLabelValues(string(k))
		m.deferred.WithLabelValues(string(k))
		for _, r := range []string{ResultDelivered, ResultRetry, ResultDead} {
			m.attempts.WithLabelValues(string(k), r)
		}
	}
	reg.MustRegister(m.attempts, m.deferred, m.latency, m.events, m.recorded, m.cursor, m.leader, m.retries, m.render, m.pruned, m.prunedDeliveries,
		grpcserver.ScrapeGauge(deliveriesDesc, count, logger, "count deliveries for metrics"))
	return m
}

var deliveriesDesc = prometheus.NewDesc("slotwatch_notifier_deliveries",
	"Deliveries in the log by state now: pending, delivered, dead (every replica together).", []string{"state"}, nil)

// Attempted counts one delivery attempt; a delivered one observes its
// latency from the event.
func (m *Notifier) Attempted(kind channel.Kind, result string, sinceEvent time.Duration) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(string(kind), result).Inc()
	if result == ResultDelivered {
		m.latency.WithLabelValues(string(kind)).Observe(max(sinceEvent, 0).Seconds())
	}
}

// Deferred counts one send its channel held back (channel.Deferred).
func (m *Notifier) Deferred(kind channel.Kind) {
	if m != nil {
		m.deferred.WithLabelValues(string(kind)).Inc()
	}
}

// Consumed counts one event and the deliveries it caused.
func (m *Notifier) Consumed(eventType string, deliveries int) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(eventType).Inc()
	m.recorded.Add(float64(deliveries))
}

// RenderFailed counts one message of an event of eventType that could not
// be rendered.
func (m *Notifier) RenderFailed(eventType string) {
	if m != nil {
		m.render.WithLabelValues(eventType).Inc()
	}
}

// Cursor sets the consumer's last recorded cursor.
func (m *Notifier) Cursor(c int64) {
	if m != nil {
		m.cursor.Set(float64(c))
	}
}

// Retrying counts one wait of the consumer for Requests.
func (m *Notifier) Retrying() {
	if m != nil {
		m.retries.Inc()
	}
}

// Pruned counts one OUT_OF_RANGE of the event stream: events were lost.
func (m *Notifier) Pruned() {
	if m != nil {
		m.pruned.Inc()
	}
}

// DeliveriesPruned counts n deliveries deleted by retention.
func (m *Notifier) DeliveriesPruned(n int) {
	if m != nil {
		m.prunedDeliveries.Add(float64(n))
	}
}

// Active says whether this replica consumes.
func (m *Notifier) Active(on bool) {
	if m == nil {
		return
	}
	if on {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}
