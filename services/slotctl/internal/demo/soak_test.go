package demo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// TestSoak is `make soak`'s short sibling: the real binaries (the real
// Checker, with Chromium; the Notifier, mailing the soak's SMTP sink and
// posting to its webhook receiver) for 90 seconds, a sample every 5 seconds, the
// fit after a warm-up of 30. It asserts that the run carried load, that
// every series was sampled, and the verdict; the 30-minute run's figures
// are in docs/RELIABILITY.md.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a 90-second run of the whole system")
	}
	t.Parallel()
	server := pgtest.ServerURL(t)
	bin := filepath.Join(t.TempDir(), "bin")
	const mod = "github.com/slotwatch/slotwatch/services/"
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), mod+"portalsim/cmd/portalsim",
		mod+"accountpool/cmd/accountpool", mod+"requests/cmd/requests", mod+"notifier/cmd/notifier", mod+"checker/cmd/checker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	began := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	t.Logf("built in %s", time.Since(began).Round(time.Second))
	db := "slotwatch_soak_test_" + randomHex(t, 6)
	t.Cleanup(func() { dropDatabase(t, server, db) })
	var out testkit.SyncBuffer
	err := Soak(t.Context(), SoakConfig{
		BinDir: bin, WorkDir: t.TempDir(), DatabaseURL: server, Database: db,
		Duration: 90 * time.Second, WarmUp: 30 * time.Second, Every: 5 * time.Second,
		ChromePath: os.Getenv("CHROME_PATH"), Out: &out,
	})
	t.Logf("soak output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Soak: %v", err)
	}
	for _, series := range []string{"portalsim.rss_mib", "accountpool.goroutines", "requests.fds", "checker+chromium.rss_mib",
		"postgres.pg_conns", "requests.checks.rows", "accountpool.usage_log.rows",
		"notifier.rss_mib", "notifier.fds", "notifier.goroutines", "notifier.deliveries.rows",
		"postgres.accountpool.conns", "postgres.requests.conns", "postgres.notifier.conns",
		"postgres.accountpool.outside_conns", "postgres.requests.outside_conns", "postgres.notifier.outside_conns"} {
		if !strings.Contains(out.String(), "\n"+series+" ") {
			t.Errorf("no fit of %s", series)
		}
	}
}

// A series that climbs fails; one that scatters as much without climbing
// passes; a run without checks fails.
func TestSoakVerdict(t *testing.T) {
	t.Parallel()
	// notify is the run's SLOT_FOUND events and the Notifier's deliveries
	// by sample; nil is a Notifier that delivers each found request to
	// two recipients.
	type notify func(i int) (found, delivered float64)
	runSeries := func(name string, f func(i int) float64, checks func(i int) float64, n notify) (string, error) {
		var samples []sample
		for i := range 20 {
			found, delivered := n(i)
			samples = append(samples, sample{at: time.Duration(i) * time.Minute, order: []string{name},
				values: map[string]float64{name: f(i)}, checks: checks(i), found: found, delivered: delivered})
		}
		var out bytes.Buffer
		err := soakVerdict(&out, samples, 5*time.Minute)
		return out.String(), err
	}
	delivering := func(i int) (float64, float64) { return float64(3 * i), float64(6 * i) }
	run := func(f func(i int) float64, checks func(i int) float64) (string, error) {
		return runSeries("x.rss_mib", f, checks, delivering)
	}
	working := func(i int) float64 { return float64(100 * i) }
	flat := func(int) float64 { return 100 }

	t.Run("LeakFails", func(t *testing.T) {
		t.Parallel()
		out, err := run(func(i int) float64 { return 100 + 2*float64(i) }, working) // 2 MiB a minute
		if err == nil || !strings.Contains(err.Error(), "x.rss_mib") || !strings.Contains(out, "FAIL") {
			t.Fatalf("a leak of 2 MiB/min passed: %v\n%s", err, out)
		}
	})
	t.Run("ScatterPasses", func(t *testing.T) {
		t.Parallel()
		out, err := run(func(i int) float64 { return 100 + float64(40*(i%2)) }, working)
		if err != nil {
			t.Fatalf("scatter failed: %v\n%s", err, out)
		}
	})
	t.Run("ChecksInFlightLateInTheWindowPass", func(t *testing.T) {
		// A level 360 descriptors, with four samples caught mid-check
		// (a browser context and its renderer open) late in the window:
		// the least-squares line climbs 72 against a tolerance of 38,
		// well past twice its standard error.
		t.Parallel()
		late := map[int]bool{13: true, 16: true, 18: true, 19: true}
		out, err := run(func(i int) float64 {
			if late[i] {
				return 440
			}
			return 360
		}, working)
		if err != nil || !strings.Contains(out, "pass (spikes)") {
			t.Fatalf("checks in flight failed the soak: %v\n%s", err, out)
		}
	})
	// TestSoak's shape: 19 samples 5 s apart, the fit over the 13 after a
	// warm-up of 30 s.
	runShort := func(f func(i int) float64) (string, error) {
		var samples []sample
		for i := range 19 {
			samples = append(samples, sample{at: time.Duration(i) * 5 * time.Second, order: []string{"x.fds"},
				values: map[string]float64{"x.fds": f(i)}, checks: float64(10 * i), found: float64(3 * i), delivered: float64(6 * i)})
		}
		var out bytes.Buffer
		err := soakVerdict(&out, samples, 30*time.Second)
		return out.String(), err
	}
	t.Run("ChecksInFlightInThreeOfTheLastFourSamplesPass", func(t *testing.T) {
		// The CI failure's shape, worse: 13 samples, three of the last
		// four caught mid-check. The last third's median (4 or 5 samples)
		// would be 440 and fail; the last quarter's floor is 360.
		t.Parallel()
		late := map[int]bool{15: true, 17: true, 18: true}
		out, err := runShort(func(i int) float64 {
			if late[i] {
				return 440
			}
			return 360
		})
		if err != nil || !strings.Contains(out, "pass (spikes)") {
			t.Fatalf("three of the last four samples mid-check failed the soak: %v\n%s", err, out)
		}
	})
	t.Run("TheLastFourOfThirteenSamplesHighFail", func(t *testing.T) {
		// The price of catching a late leak: the last quarter all high
		// is a level that rose (each sample is the least of five
		// readings 0.3 s apart), not checks in flight. The median
		// pairwise slope passed it.
		t.Parallel()
		out, err := runShort(func(i int) float64 {
			if i >= 15 {
				return 440
			}
			return 360
		})
		if err == nil || !strings.Contains(err.Error(), "x.fds") {
			t.Fatalf("the last four samples 80 descriptors up passed: %v\n%s", err, out)
		}
	})
	t.Run("AConnectionOutsideAPoolForOneReadingPasses", func(t *testing.T) {
		// A pool opening a connection between the two reads: its
		// /metrics counts it, pg_stat_activity did not yet (-1), at a
		// sample in the first quarter.
		t.Parallel()
		out, err := runSeries("postgres.requests.outside_conns", func(i int) float64 {
			if i == 6 {
				return -1
			}
			return 0
		}, working, delivering)
		if err != nil {
			t.Fatalf("one reading a connection short failed the soak: %v\n%s", err, out)
		}
	})
	t.Run("ALeakThatBeginsLateInTheWindowFails", func(t *testing.T) {
		// The reviewer's: level at 100 MiB, then 40 MiB a minute from
		// minute 16 of 20 (the fit from 5): more than half of the sample
		// pairs lie before it, so the median pairwise slope was 0 and it
		// passed as spikes.
		t.Parallel()
		out, err := run(func(i int) float64 { return 100 + 40*float64(max(i-15, 0)) }, working)
		if err == nil || !strings.Contains(err.Error(), "x.rss_mib") {
			t.Fatalf("RSS from 100 to 260 MiB in the last 4 minutes passed the soak: %v\n%s", err, out)
		}
	})
	// The connections in all, against the pools' maxima and the LISTEN
	// connections (limit) the sampler read at each sample.
	runConns := func(conns func(i int) float64, limit float64) (string, error) {
		var samples []sample
		for i := range 20 {
			samples = append(samples, sample{at: time.Duration(i) * time.Minute, order: []string{"postgres.pg_conns"},
				values: map[string]float64{"postgres.pg_conns": conns(i)}, limits: map[string]float64{"postgres.pg_conns": limit},
				checks: float64(100 * i), found: float64(3 * i), delivered: float64(6 * i)})
		}
		var out bytes.Buffer
		err := soakVerdict(&out, samples, 5*time.Minute)
		return out.String(), err
	}
	t.Run("ConnectionPoolsGrowingToTheirMaximumPass", func(t *testing.T) {
		// 6 connections, then one more a minute up to the pools' maxima
		// and the LISTEN connections (8 + 8 + 8 + 2): a climb, yet a bound.
		t.Parallel()
		out, err := runConns(func(i int) float64 { return min(6+float64(i), 26) }, 26)
		if err != nil {
			t.Fatalf("pools filling up failed the soak: %v\n%s", err, out)
		}
	})
	t.Run("ConnectionsPastThePoolsMaximumFail", func(t *testing.T) {
		t.Parallel()
		out, err := runConns(func(i int) float64 { return 21 + float64(i)/3 }, 26)
		if err == nil || !strings.Contains(err.Error(), "postgres.pg_conns") {
			t.Fatalf("connections past the pools' maximum passed: %v\n%s", err, out)
		}
	})
	t.Run("TheBrowsersSawtoothIsJudgedOnlyOverManyLifetimes", func(t *testing.T) {
		// The Checker's and Chromium's RSS climbing through the window:
		// within one browser's lifetime (140 checks, CHECKER_BROWSER_RECYCLE
		// 100) that is its sawtooth, shown; over fourteen it is a leak.
		t.Parallel()
		climb := func(i int) float64 { return 800 + 30*float64(i) }
		out, err := runSeries("checker+chromium.rss_mib", climb, func(i int) float64 { return float64(10 * i) }, delivering)
		if err != nil || !strings.Contains(out, "shown (1.4 browser lifetimes)") {
			t.Fatalf("a climb within one browser's lifetime was judged: %v\n%s", err, out)
		}
		out, err = runSeries("checker+chromium.rss_mib", climb, working, delivering)
		if err == nil || !strings.Contains(err.Error(), "checker+chromium.rss_mib") {
			t.Fatalf("a climb over fourteen browser lifetimes passed: %v\n%s", err, out)
		}
	})
	t.Run("BrowserLifetimesAreCountedFromTheBrowsersStarted", func(t *testing.T) {
		// 1,500 checks in the window, but the Checker replaced its
		// browser once (slotwatch_checker_browser_restarts_total): most
		// checks opened no tab (no account free, a portal paused). The
		// lifetimes were counted from the checks (15), and the sawtooth
		// of the one browser was judged a leak.
		t.Parallel()
		var samples []sample
		for i := range 20 {
			samples = append(samples, sample{at: time.Duration(i) * time.Minute, order: []string{"checker+chromium.rss_mib"},
				values: map[string]float64{"checker+chromium.rss_mib": 800 + 30*float64(i)}, checks: float64(100 * i),
				restarts: float64(i / 10), restartsRead: true, found: float64(3 * i), delivered: float64(6 * i)})
		}
		var out bytes.Buffer
		err := soakVerdict(&out, samples, 5*time.Minute)
		if err != nil || !strings.Contains(out.String(), "shown (1.0 browser lifetimes)") {
			t.Fatalf("one browser's sawtooth, judged by the checks' count: %v\n%s", err, out.String())
		}
		// Six browsers started in the window: the climb is judged.
		for i := range samples {
			samples[i].restarts = float64(i / 2)
		}
		out.Reset()
		if err := soakVerdict(&out, samples, 5*time.Minute); err == nil || !strings.Contains(err.Error(), "checker+chromium.rss_mib") {
			t.Fatalf("a climb over seven browser lifetimes passed: %v\n%s", err, out.String())
		}
	})
	t.Run("ASteadyClimbJustPastItsToleranceFails", func(t *testing.T) {
		// 12 MiB over the 14-minute window against a tolerance of about
		// 10.6: the quarters' floors (samples 5 and 16) lie 11/14 of the
		// window apart, so their rise is scaled to the whole window.
		t.Parallel()
		out, err := runSeries("x.rss_mib", func(i int) float64 { return 100 + float64(i-5)*6/7 }, working, delivering)
		if err == nil || !strings.Contains(out, "FAIL") {
			t.Fatalf("a steady climb past its tolerance passed: %v\n%s", err, out)
		}
	})
	t.Run("FlatPasses", func(t *testing.T) {
		t.Parallel()
		out, err := run(func(int) float64 { return 100 }, working)
		if err != nil || !strings.Contains(out, "soak: PASS") {
			t.Fatalf("flat failed: %v\n%s", err, out)
		}
	})
	t.Run("NothingDeliveredWhileRequestsWereFoundFails", func(t *testing.T) {
		// Requests found 3 a minute, the Notifier's log still at what it
		// had delivered before the warm-up ended.
		t.Parallel()
		out, err := runSeries("x.rss_mib", flat, working, func(i int) (float64, float64) { return float64(3 * i), 8 })
		if err == nil || !strings.Contains(err.Error(), "Notifier delivered nothing") {
			t.Fatalf("a Notifier that delivered nothing while requests were found passed: %v\n%s", err, out)
		}
	})
	t.Run("NoRequestFoundFails", func(t *testing.T) {
		// Checks all along, none of them finding a slot: the Notifier had
		// nothing to deliver, and its series say nothing about its leaks.
		t.Parallel()
		out, err := runSeries("x.rss_mib", flat, working, func(int) (float64, float64) { return 5, 10 })
		if err == nil || !strings.Contains(err.Error(), "no request was found") {
			t.Fatalf("a run without a found request passed: %v\n%s", err, out)
		}
	})
	t.Run("NoLoadFails", func(t *testing.T) {
		t.Parallel()
		if _, err := run(func(int) float64 { return 100 }, func(int) float64 { return 7 }); err == nil {
			t.Fatal("a run without checks passed")
		}
	})
}

// Half of churn's dates fall in the request's window, so that the soak's
// checks find requests, and its Notifier delivers, all through the run
// (with dates anywhere in the year, a tenth fell in a window: TestSoak saw
// no request found for 45 of its 90 seconds); all of them in the coming
// year.
func TestChurnPutsHalfItsDatesInTheRequestsWindow(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ds := seed.DemoDataset(today)
	for _, a := range ds.Applicants {
		r := a.Requests[0]
		var in, all int
		for range 2000 {
			for _, s := range churnSlots(r, today) {
				all++
				d, err := time.Parse(time.DateOnly, s.Date)
				if err != nil || !d.After(today) || d.After(today.AddDate(1, 0, 0)) {
					t.Fatalf("slot %+v is not in the coming year", s)
				}
				if s.Date >= r.Earliest && s.Date <= r.Latest {
					in++
				}
			}
		}
		if share := float64(in) / float64(all); share < 0.45 {
			t.Errorf("%s %s: %.0f%% of %d dates in the window %s..%s, want at least 45%%", r.Mission, r.Centre, 100*share, all, r.Earliest, r.Latest)
		}
	}
}
