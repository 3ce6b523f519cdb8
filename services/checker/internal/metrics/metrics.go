// Package metrics is the checker's domain metrics, registered on the
// server's registry beside the per-RPC ones. The names are relied on by
// dashboards and alert rules: keep them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/metriclabel"
)

// MaxMissionLabels is how many distinct missions get a series of their
// own; the mission codes come from Requests' claims, so the rest share
// the mission label "other" rather than grow the series without bound.
const MaxMissionLabels = 100

// Checker holds the checker's metrics; it implements session.Metrics.
type Checker struct {
	checks      *prometheus.CounterVec
	missions    *metriclabel.Bounded
	duration    prometheus.Histogram
	acquireWait prometheus.Histogram
	pages       *prometheus.CounterVec
	logins      *prometheus.CounterVec
}

var (
	_ session.Metrics    = (*Checker)(nil)
	_ portal.PageCounter = (*Checker)(nil)
)

// New registers the metrics on reg. browserStatus and inFlight are read at
// each scrape.
func New(reg prometheus.Registerer, browserStatus func() browser.Status, inFlight func() int) *Checker {
	m := &Checker{
		missions: metriclabel.NewBounded(MaxMissionLabels),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_checker_checks_total",
			Help: "Missions checked, by outcome (success, no_slot, login_fail, banned, error, aborted when slotwatch cut the check short (drain, browser failure), unused when the check was called off before reaching the portal, or no_account when no account could be leased) and mission (the first 100 distinct, then other).",
		}, []string{"outcome", "mission"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slotwatch_checker_check_duration_seconds",
			Help:    "Time of one portal check with a leased account: login, slot pages, reading the dates.",
			Buckets: []float64{0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89},
		}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_checker_pages_total",
			Help: "Pages the checks classified, by profile, step of the profile and kind (captcha, blocked, rate_limited, maintenance, bad_credentials, logged_out, logged_in, a marker the step expected, server_error, unknown). A rising unknown share means the portal's pages changed (profile drift).",
		}, []string{"profile", "step", "kind"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotwatch_checker_logins_total",
			Help: "Checks that logged in to the portal, by mission (as slotwatch_checker_checks_total); the other checks reused the account's kept portal session. Logins per check is this over the checks counter.",
		}, []string{"mission"}),
		acquireWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slotwatch_checker_acquire_wait_seconds",
			Help:    "Time from a mission's first Acquire to its lease, or to giving up when no account freed in time.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600},
		}),
	}
	restarts := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "slotwatch_checker_browser_restarts_total",
		Help: "Browsers started after the first: recycled after CHECKER_BROWSER_RECYCLE checks or replacing one that died.",
	}, func() float64 { return float64(browserStatus().Restarts) })
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slotwatch_checker_browser_up",
		Help: "1 while a browser process is running.",
	}, func() float64 {
		if browserStatus().Running {
			return 1
		}
		return 0
	})
	flying := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slotwatch_checker_missions_in_flight",
		Help: "Claimed missions not finished yet, waiting for an account or being checked.",
	}, func() float64 { return float64(inFlight()) })
	reg.MustRegister(m.checks, m.duration, m.acquireWait, m.pages, m.logins, restarts, up, flying)
	return m
}

// CheckFinished implements session.Metrics.
func (m *Checker) CheckFinished(mission string, outcome session.Outcome, d time.Duration) {
	m.checks.WithLabelValues(string(outcome), m.missions.Value(mission)).Inc()
	if outcome != session.NoAccount {
		m.duration.Observe(d.Seconds())
	}
}

// PageClassified implements portal.PageCounter. Its labels come from the
// profile (one per checker), its steps and the fixed kinds, never from a
// page, so the series stay bounded.
func (m *Checker) PageClassified(profile, step, kind string) {
	m.pages.WithLabelValues(profile, step, kind).Inc()
}

// AcquireWaited implements session.Metrics.
func (m *Checker) AcquireWaited(d time.Duration) { m.acquireWait.Observe(d.Seconds()) }

// LoggedIn implements session.Metrics.
func (m *Checker) LoggedIn(mission string) { m.logins.WithLabelValues(m.missions.Value(mission)).Inc() }
