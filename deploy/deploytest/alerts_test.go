package deploytest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// alertRule is the rule of the PrometheusRule that deploy/k8s/base builds
// with this alert name.
func alertRule(t *testing.T, name string) rule {
	t.Helper()
	for _, r := range build(t, "base").rules {
		for _, g := range r.Spec.Groups {
			for _, rl := range g.Rules {
				if rl.Alert == name {
					return rl
				}
			}
		}
	}
	t.Fatalf("the PrometheusRule has no alert %s", name)
	return rule{}
}

// firing says whether alert r is firing at time at, with the series of
// load: one "metric{labels} values" line each, values in the expanding
// notation of promtool's rule tests and promqltest ("4x180", "0+6x180"),
// one a minute from 0. Its expression is evaluated by Prometheus' own
// engine every minute, and the alert fires once every evaluation over its
// `for` (and the one at the end) returned a sample, as Prometheus' rule
// manager decides.
func firing(t *testing.T, r rule, load string, at time.Duration) bool {
	t.Helper()
	return len(firingAlerts(t, r, load, at)) > 0
}

// firingFor says whether alert r is firing for portal at time at, as
// firing does: every evaluation over its `for` returned a sample of that
// portal.
func firingFor(t *testing.T, r rule, load string, at time.Duration, portal string) bool {
	t.Helper()
	for _, l := range firingAlerts(t, r, load, at) {
		if l.Get("portal") == portal {
			return true
		}
	}
	return false
}

// firingAlerts is the label sets r fires with at time at: those every
// evaluation over its `for` (and the one at the end) returned, as
// Prometheus' rule manager keeps one alert per label set.
func firingAlerts(t *testing.T, r rule, load string, at time.Duration) []labels.Labels {
	t.Helper()
	var series []storage.Series
	for _, line := range strings.Split(strings.TrimSpace(load), "\n") {
		lbls, vals, err := promParser.ParseSeriesDesc(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("series %q: %v", line, err)
		}
		var samples []chunks.Sample
		for i, v := range vals {
			if !v.Omitted {
				samples = append(samples, floatSample{t: (time.Duration(i) * time.Minute).Milliseconds(), f: v.Value})
			}
		}
		series = append(series, storage.NewListSeries(lbls, samples))
	}
	queryable := &storage.MockQueryable{MockQuerier: &storage.MockQuerier{
		SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range series {
				if matchesAll(s.Labels(), ms) {
					out = append(out, s)
				}
			}
			return &listSeriesSet{series: out, i: -1}
		},
	}}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	var hold time.Duration
	if r.For != "" {
		d, err := model.ParseDuration(r.For)
		if err != nil {
			t.Fatalf("alert %s: for %q: %v", r.Alert, r.For, err)
		}
		hold = time.Duration(d)
	}
	var held map[string]labels.Labels
	for ts := at - hold; ts <= at; ts += time.Minute {
		q, err := engine.NewInstantQuery(context.Background(), queryable, nil, r.Expr, time.UnixMilli(0).Add(ts))
		if err != nil {
			t.Fatalf("alert %s: %v", r.Alert, err)
		}
		res := q.Exec(context.Background())
		v, err := res.Vector()
		q.Close()
		if res.Err != nil || err != nil {
			t.Fatalf("alert %s at %s: %v %v", r.Alert, ts, res.Err, err)
		}
		now := map[string]labels.Labels{}
		for _, smp := range v {
			now[smp.Metric.String()] = smp.Metric
		}
		if held == nil {
			held = now
		}
		for k := range held {
			if _, ok := now[k]; !ok {
				delete(held, k)
			}
		}
		if len(held) == 0 {
			return nil
		}
	}
	var out []labels.Labels
	for _, l := range held {
		out = append(out, l)
	}
	return out
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// floatSample is one float sample of a test series.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

// listSeriesSet is a storage.SeriesSet over a slice.
type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }

// TestNoChecksPagesOnlyWhenNoCheckerAsks: SlotwatchNoChecks (critical,
// runbook "Checker down") is for Checkers that are gone or cannot reach
// Requests, not for missions that are not due: a portal paused after walls
// (15 m doubling to 6 h) or in quiet hours with a quiet cap of 0 claims
// nothing, by design, while the Checkers keep asking (ClaimDueMissions
// every CHECKER_SESSION_INTERVAL) and requests stay pending.
func TestNoChecksPagesOnlyWhenNoCheckerAsks(t *testing.T) {
	t.Parallel()
	r := alertRule(t, "SlotwatchNoChecks")
	const claims = `grpc_server_handled_total{job="requests",grpc_service="slotwatch.requests.v1.RequestsService",grpc_method="ClaimDueMissions",grpc_type="unary",grpc_code="OK"}`
	const base = `slotwatch_requests{job="requests",status="pending"} 4x180
slotwatch_requests_portal_paused{job="requests",portal="vfs"} 1x180
`
	// 3 hours of pending requests on a paused portal (or in its quiet
	// hours): no check is reported, no mission is claimed.
	noReports := `slotwatch_requests_checks_total{job="requests",outcome="no_slot"} 100x180
`
	t.Run("the Checkers keep asking", func(t *testing.T) {
		// One Checker asks every 10 s: 6 a minute, answered OK with no claim.
		if firing(t, r, base+noReports+claims+" 0+6x180\n", 180*time.Minute) {
			t.Errorf("SlotwatchNoChecks fires while the Checkers ask for work every 10 s and nothing is due (a paused portal, quiet hours):\n%s", r.Expr)
		}
	})
	t.Run("no Checker asks", func(t *testing.T) {
		if !firing(t, r, base+noReports+claims+" 500x180\n", 180*time.Minute) {
			t.Errorf("SlotwatchNoChecks does not fire when no Checker has asked Requests for work for hours:\n%s", r.Expr)
		}
	})
	t.Run("Checkers ask and are refused", func(t *testing.T) {
		// A wrong checker token: every call Unauthenticated.
		refused := `grpc_server_handled_total{job="requests",grpc_service="slotwatch.requests.v1.RequestsService",grpc_method="ClaimDueMissions",grpc_type="unary",grpc_code="Unauthenticated"} 0+6x180
`
		if !firing(t, r, base+noReports+claims+" 500x180\n"+refused, 180*time.Minute) {
			t.Errorf("SlotwatchNoChecks does not fire when every ClaimDueMissions is refused:\n%s", r.Expr)
		}
	})
	t.Run("checks reported", func(t *testing.T) {
		reports := `slotwatch_requests_checks_total{job="requests",outcome="no_slot"} 0+3x180
`
		if firing(t, r, base+reports+claims+" 0+6x180\n", 180*time.Minute) {
			t.Errorf("SlotwatchNoChecks fires while checks are reported:\n%s", r.Expr)
		}
	})
}

// TestCheckerErrorsIsAShareOfPortalChecks: SlotwatchCheckerErrors is the
// share of checks that end in error (or aborted), of those that went to the
// portal, as the dashboard's "Unrecognised pages" panel counts them. A mission the
// Checker gives up for want of an account (no_account) never reached the
// portal; counting it would silence the alert exactly when errors
// quarantine the accounts (POOL_MAX_FAILURES) and the pool runs dry.
func TestCheckerErrorsIsAShareOfPortalChecks(t *testing.T) {
	t.Parallel()
	r := alertRule(t, "SlotwatchCheckerErrors")
	// Every check that reaches the portal errors (2 a minute); the other
	// claims find no account (8 a minute).
	load := `slotwatch_checker_checks_total{job="checker",mission="fra",outcome="error"} 0+2x90
slotwatch_checker_checks_total{job="checker",mission="fra",outcome="no_account"} 0+8x90
slotwatch_checker_checks_total{job="checker",mission="fra",outcome="no_slot"} 0x90
`
	if !firing(t, r, load, 90*time.Minute) {
		t.Errorf("SlotwatchCheckerErrors does not fire while every check that reaches the portal errors and the rest find no account:\n%s", r.Expr)
	}
	healthy := `slotwatch_checker_checks_total{job="checker",mission="fra",outcome="error"} 0+1x90
slotwatch_checker_checks_total{job="checker",mission="fra",outcome="no_account"} 0+50x90
slotwatch_checker_checks_total{job="checker",mission="fra",outcome="no_slot"} 0+9x90
`
	if firing(t, r, healthy, 90*time.Minute) {
		t.Errorf("SlotwatchCheckerErrors fires at 10%% errors among the portal's checks:\n%s", r.Expr)
	}
}

// TestCheckerErrorsCountsChecksCutShort: a Chromium that crashes in every
// check is the Checker's error, though its checks are released aborted (no
// failure of the accounts) rather than error: SlotwatchCheckerErrors, whose
// description names Chromium crashing, must still fire on it.
func TestCheckerErrorsCountsChecksCutShort(t *testing.T) {
	t.Parallel()
	r := alertRule(t, "SlotwatchCheckerErrors")
	crashing := `slotwatch_checker_checks_total{job="checker",mission="fra",outcome="aborted"} 0+2x90
slotwatch_checker_checks_total{job="checker",mission="fra",outcome="no_slot"} 0+1x90
`
	if !firing(t, r, crashing, 90*time.Minute) {
		t.Errorf("SlotwatchCheckerErrors does not fire while two checks in three are cut short (a crashing Chromium):\n%s", r.Expr)
	}
}

// TestAllQuarantinedMeansAllQuarantined: SlotwatchPoolAllQuarantined
// (critical: "every active pool account is quarantined", runbook: login
// failures and bans) must not fire while some active accounts only rest
// from their login budget (slotwatch_pool_accounts{state="over_login_budget"},
// which GetPoolStatus counts apart from available): that is a pool out of
// logins, SlotwatchPoolExhausted's runbook, not a portal rejecting them.
func TestAllQuarantinedMeansAllQuarantined(t *testing.T) {
	t.Parallel()
	r := alertRule(t, "SlotwatchPoolAllQuarantined")
	pool := func(quarantined, overBudget int) string {
		var b strings.Builder
		for state, n := range map[string]int{"available": 0, "leased": 0, "cooldown": 0, "disabled": 0,
			"quarantined": quarantined, "over_login_budget": overBudget} {
			fmt.Fprintf(&b, "slotwatch_pool_accounts{job=\"accountpool\",state=%q} %dx60\n", state, n)
		}
		return b.String()
	}
	if firing(t, r, pool(4, 6), 60*time.Minute) {
		t.Errorf("SlotwatchPoolAllQuarantined fires with 4 accounts quarantined and 6 resting from their login budget:\n%s", r.Expr)
	}
	if !firing(t, r, pool(10, 0), 60*time.Minute) {
		t.Errorf("SlotwatchPoolAllQuarantined does not fire with every account quarantined:\n%s", r.Expr)
	}
}

// TestPoolRatesAreSharesOfReleasesThatReachedThePortal: SlotwatchHighLoginFailureRate
// and SlotwatchHighBanRate are shares of the leases that went to the
// portal. A lease released `unused` (the check called off before it
// reached the portal: a portal paused since the claim, a drain before the
// first page) says nothing about logins or bans; counting it would
// dilute either rate exactly while a portal pauses and its claims are
// handed back. Only `unused` is left out, by name: an outcome added later
// counts as a lease that reached the portal.
func TestPoolRatesAreSharesOfReleasesThatReachedThePortal(t *testing.T) {
	t.Parallel()
	releases := func(counts map[string]int) string {
		var b strings.Builder
		for outcome, perMinute := range counts {
			fmt.Fprintf(&b, "slotwatch_pool_releases_total{job=\"accountpool\",mission=\"fra\",outcome=%q} 0+%dx90\n", outcome, perMinute)
		}
		return b.String()
	}
	for _, tc := range []struct {
		alert  string
		counts map[string]int
		want   bool
	}{
		// 1 login failure in 4 checks at the portal (25 % > 20 %), and 20
		// leases a minute handed back unused.
		{"SlotwatchHighLoginFailureRate", map[string]int{"login_fail": 1, "success": 3, "unused": 20}, true},
		{"SlotwatchHighLoginFailureRate", map[string]int{"login_fail": 1, "success": 9, "unused": 0}, false},
		// 1 ban in 10 checks at the portal (10 % > 5 %), 100 leases unused.
		{"SlotwatchHighBanRate", map[string]int{"banned": 1, "no_slot": 9, "unused": 100}, true},
		{"SlotwatchHighBanRate", map[string]int{"banned": 1, "no_slot": 40, "unused": 0}, false},
		// An outcome the rule does not name reached the portal: it counts.
		{"SlotwatchHighBanRate", map[string]int{"banned": 1, "no_slot": 9, "aborted": 40}, false},
	} {
		r := alertRule(t, tc.alert)
		if got := firing(t, r, releases(tc.counts), 90*time.Minute); got != tc.want {
			t.Errorf("%s with releases a minute %v: firing %v, want %v:\n%s", tc.alert, tc.counts, got, tc.want, r.Expr)
		}
	}
}

// series is one test series of firing's load: per minute from 0, the
// value at(m) for m in [0, minutes).
func series(desc string, minutes int, at func(m int) float64) string {
	vals := make([]string, minutes)
	for m := range vals {
		vals[m] = fmt.Sprint(at(m))
	}
	return desc + " " + strings.Join(vals, " ") + "\n"
}

// pauses is a portal's pause history: paused minutes, each followed by
// the minutes until the next pause (the checks that met the next wall).
type pauses []struct{ paused, gap int }

// load is the slotwatch_requests_portal_paused gauge of portal for these
// pauses, each one of kind reason (walls, maintenance: both series, as
// Requests exports them, 1 in reason's while paused), and
// slotwatch_requests_checks_total with walls of kind wall just before each
// pause (n a pause) and no other wall, as one Requests replica (instance
// portal) counted them: the counter has no portal label, so the loads of
// two portals sum up in it as two replicas' counts do.
func (ps pauses) load(portal, reason, wall string, walls int) string {
	var paused []bool
	var reported []int // walls reported by minute m
	n := 0
	for _, p := range ps {
		n += walls
		for range p.paused {
			paused = append(paused, true)
			reported = append(reported, n)
		}
		for range p.gap {
			paused = append(paused, false)
			reported = append(reported, n)
		}
	}
	var out string
	for _, r := range []string{"walls", "maintenance"} {
		out += series(fmt.Sprintf(`slotwatch_requests_portal_paused{job="requests",portal=%q,reason=%q}`, portal, r), len(paused), func(m int) float64 {
			if paused[m] && r == reason {
				return 1
			}
			return 0
		})
	}
	for _, o := range []string{"no_slot", "slots_found", "failed", "captcha", "blocked", "rate_limited", "maintenance"} {
		out += series(fmt.Sprintf(`slotwatch_requests_checks_total{job="requests",instance=%q,outcome=%q}`, portal, o), len(paused), func(m int) float64 {
			if o == wall {
				return float64(reported[m])
			}
			return 0
		})
	}
	return out
}

// TestPortalPausedPagesForWallsNotForAMaintenance: SlotwatchPortalPaused
// (warning) is for a portal that keeps pushing back: paused after walls
// for an hour, through the short checks between two pauses, that is into
// its third pause in a row (15 m, 30 m, then 1 h). A maintenance is not
// that: the portal said when it is back (Retry-After, often 30 m to
// hours, each one a pause, with one check between them), nothing is to
// be lowered, and paging for it every time was noise; the gauge's reason
// label tells them apart, per portal (a maintenance on one portal while
// another meets walls paged the maintenance as walls while the rules told
// them apart by Requests' checks counter, which has no portal label).
// SlotwatchPortalMaintenanceLong pages once a maintenance has kept the
// portal paused for 6 hours: then a person looks at the portal, in case
// its pages changed and the profile reads them as maintenance.
func TestPortalPausedPagesForWallsNotForAMaintenance(t *testing.T) {
	t.Parallel()
	paused := alertRule(t, "SlotwatchPortalPaused")
	long := alertRule(t, "SlotwatchPortalMaintenanceLong")

	// Walls: 3 CAPTCHAs, 15 m; 3 more within 3 m of its end, 30 m; then 1 h.
	wallPauses := pauses{{15, 3}, {30, 3}, {60, 3}, {120, 3}}
	walls := wallPauses.load("vfs", "walls", "captcha", 3)
	if firing(t, paused, walls, 40*time.Minute) {
		t.Errorf("SlotwatchPortalPaused fires 40 m into walls, in the second pause:\n%s", paused.Expr)
	}
	if !firing(t, paused, walls, 80*time.Minute) {
		t.Errorf("SlotwatchPortalPaused does not fire in the third wall pause in a row (80 m paused but for two checks):\n%s", paused.Expr)
	}
	if firing(t, long, walls, 230*time.Minute) {
		t.Errorf("SlotwatchPortalMaintenanceLong fires for walls:\n%s", long.Expr)
	}

	// A maintenance of 7 h with Retry-After 1h: a pause of 1 h, one check
	// a minute after it meets the page again, and so on.
	var maint pauses
	for range 7 {
		maint = append(maint, pauses{{60, 1}}...)
	}
	load := maint.load("vfs", "maintenance", "maintenance", 1)
	for _, at := range []time.Duration{50 * time.Minute, 3 * time.Hour, 7 * time.Hour} {
		if firing(t, paused, load, at) {
			t.Errorf("SlotwatchPortalPaused fires %s into a maintenance with Retry-After 1h:\n%s", at, paused.Expr)
		}
	}
	if firing(t, long, load, 5*time.Hour) {
		t.Errorf("SlotwatchPortalMaintenanceLong fires 5 h into a maintenance:\n%s", long.Expr)
	}
	if !firing(t, long, load, 6*time.Hour+30*time.Minute) {
		t.Errorf("SlotwatchPortalMaintenanceLong does not fire 6h30 into a maintenance:\n%s", long.Expr)
	}

	// Two portals: a maintenance on a while b meets walls. Each is paged
	// for what its own pauses are: b as paused after walls, a only after
	// 6 h, as a long maintenance.
	two := maint.load("a", "maintenance", "maintenance", 1) + wallPauses.load("b", "walls", "captcha", 3)
	if !firingFor(t, paused, two, 80*time.Minute, "b") {
		t.Errorf("SlotwatchPortalPaused does not fire for b, 80 m into its walls, while a is down for maintenance:\n%s", paused.Expr)
	}
	for _, at := range []time.Duration{80 * time.Minute, 3 * time.Hour, 7 * time.Hour} {
		if firingFor(t, paused, two, at, "a") {
			t.Errorf("SlotwatchPortalPaused fires for a %s into its maintenance, while b meets walls:\n%s", at, paused.Expr)
		}
	}
	if firingFor(t, long, two, 5*time.Hour, "a") {
		t.Errorf("SlotwatchPortalMaintenanceLong fires for a 5 h into its maintenance:\n%s", long.Expr)
	}
	if !firingFor(t, long, two, 6*time.Hour+30*time.Minute, "a") {
		t.Errorf("SlotwatchPortalMaintenanceLong does not fire for a 6h30 into its maintenance, while b met walls:\n%s", long.Expr)
	}
	for _, at := range []time.Duration{80 * time.Minute, 230 * time.Minute} {
		if firingFor(t, long, two, at, "b") {
			t.Errorf("SlotwatchPortalMaintenanceLong fires for b's walls at %s:\n%s", at, long.Expr)
		}
	}
}
