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
		if len(v) == 0 {
			return false
		}
	}
	return true
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
