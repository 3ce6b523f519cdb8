package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// SoakConfig is `make soak` (issue 15): the `make run` system (portalsim,
// AccountPool, Requests, the Notifier with an SMTP sink and a webhook
// receiver, one Checker with Chromium, the demo's data) for
// Duration with short cooldowns, portalsim's slots added and removed at
// random, and every Every a sample of each process's RSS, goroutines and
// open descriptors, the Postgres connections and the table sizes. At the
// end a line is fitted to each series after WarmUp and its slope printed;
// growth beyond a series' tolerance fails the run.
type SoakConfig struct {
	// BinDir holds portalsim, accountpool, requests, notifier and checker.
	BinDir string
	// WorkDir holds the run's files: tokens, keyset, logs, artifacts.
	WorkDir string
	// DatabaseURL is a server on which the run makes (and drops) Database.
	DatabaseURL string
	Database    string
	// Duration is how long the system runs; WarmUp, the start of it that
	// the fit leaves out; Every, the time between samples.
	Duration, WarmUp, Every time.Duration
	// ChromePath is the Chromium the Checker runs (default: the headless
	// shell when installed, as for make run).
	ChromePath string
	Out        io.Writer
}

// The run's shortened settings, shown with the results.
var soakTimings = []timing{
	{"POOL_COOLDOWN", "2s", "10m"},
	{"POOL_MAX_LOGINS_PER_DAY", "100000", "20"},
	{"REQUESTS_CHECK_INTERVAL", "0s", "2m"},
	{"CHECKER_SESSION_INTERVAL", "1s", "10s"},
}

// churnEvery is how often portalsim's slots change.
const churnEvery = 3 * time.Second

// Soak runs the system, samples it and prints the fit; it returns an error
// when a series grew beyond its tolerance, or the system did no work.
func Soak(ctx context.Context, cfg SoakConfig) error {
	if cfg.Every <= 0 || cfg.Duration < cfg.WarmUp+3*cfg.Every {
		return fmt.Errorf("a soak of %s with warm-up %s and a sample every %s leaves fewer than 3 samples to fit", cfg.Duration, cfg.WarmUp, cfg.Every)
	}
	if err := binaries(cfg.BinDir, "notifier"); err != nil {
		return err
	}
	// The Notifier's receivers, as in make run: the applicants' mailboxes
	// (an SMTP sink) and the operator's webhook receiver. They close after
	// the services have stopped.
	sink, err := StartMailSink("")
	if err != nil {
		return err
	}
	defer sink.Close()
	hookSecret, err := randomSecret()
	if err != nil {
		return err
	}
	hooks, err := StartHookReceiver("", []byte(hookSecret))
	if err != nil {
		return err
	}
	defer hooks.Close()
	ds := seed.DemoDataset(time.Now())
	sys, err := startBench(ctx, benchStart{
		binDir: cfg.BinDir, workDir: cfg.WorkDir, serverURL: cfg.DatabaseURL, database: cfg.Database,
		timings: soakTimings, dataset: ds, ports: 4,
	})
	if err != nil {
		return err
	}
	defer sys.close()
	out, sup, rq := cfg.Out, sys.sup, sys.rq
	checkerAddr, notifierAddr := sys.ports[0], sys.ports[2]
	metricsAddr := maps.Clone(sys.metrics)
	metricsAddr["checker"], metricsAddr["notifier"] = sys.ports[1], sys.ports[3]
	notifier, err := sup.start("notifier", filepath.Join(cfg.BinDir, "notifier"),
		notifierEnv(sys.env, notifierAddr, metricsAddr["notifier"], sys.reqAddr, sys.files.notifier, sink.Addr()), nil)
	if err != nil {
		return err
	}
	if err := waitGRPC(ctx, notifier, notifierAddr, 90*time.Second); err != nil {
		return err
	}
	ntConn, err := dialAdmin(notifierAddr, sys.files.admin)
	if err != nil {
		return err
	}
	defer ntConn.Close()
	// Every found request then makes an email to its applicant and a
	// webhook to the operator; a replacing request has the same applicant.
	subCtx, subDone := context.WithTimeout(ctx, time.Minute)
	err = Subscribe(subCtx, notifierv1.NewNotifierServiceClient(ntConn), ds, sys.loaded, hooks.URL(), hookSecret)
	subDone()
	if err != nil {
		return fmt.Errorf("subscribe the soak's applicants and operator: %w", err)
	}
	checker, err := sup.start("checker", filepath.Join(cfg.BinDir, "checker"), append(sys.checkerEnv(demoChrome(func(string) string { return cfg.ChromePath })),
		"LISTEN_ADDR="+checkerAddr, "METRICS_ADDR="+metricsAddr["checker"], "CHECKER_ID=soak", "CHECKER_BROWSER_RECYCLE="+strconv.Itoa(soakRecycle)), nil)
	if err != nil {
		return err
	}
	if err := waitGRPC(ctx, checker, checkerAddr, 90*time.Second); err != nil {
		return err
	}
	db, err := connectDirect(ctx, sys.dbURL)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())

	fmt.Fprintf(out, "Soak: portalsim, AccountPool, Requests, the Notifier and a Checker (Chromium) for %s, a sample every %s, the fit after a warm-up of %s\n",
		cfg.Duration, cfg.Every, cfg.WarmUp)
	shortenedSettings(out, soakTimings)
	fmt.Fprintf(out, "Load: %d accounts, %d requests in %d missions; portalsim's slots change every %s, a found request is replaced by a new one\n",
		len(ds.Accounts), len(ds.Applicants), len(ds.Missions), churnEvery)
	fmt.Fprintf(out, "The Notifier: each applicant has an email contact (to the soak's SMTP sink), the operator a webhook subscription for every mission: a found request makes 2 deliveries\n")

	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	churnDone := make(chan error, 1)
	go func() { churnDone <- churn(runCtx, ds, sys.portal, rq) }()

	procs := map[string]*child{}
	for _, c := range sup.children {
		procs[c.name] = c
	}
	s := &sampler{db: db, database: cfg.Database, procs: procs, metrics: metricsAddr, http: &http.Client{Timeout: 5 * time.Second}}
	start := time.Now()
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	var samples []sample
	for {
		sm, err := s.sample(ctx, time.Since(start))
		if err != nil {
			return err
		}
		samples = append(samples, sm)
		fmt.Fprintf(out, "  %s\n", sm.line())
		select {
		case <-runCtx.Done():
		case c := <-sup.exited:
			return c.exitedEarly()
		case <-tick.C:
			continue
		}
		break
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := <-churnDone; err != nil {
		return err
	}
	keys, _ := hooks.Accepted()
	fmt.Fprintf(out, "Over the whole run the SMTP sink received %d emails and the webhook receiver accepted %d webhooks\n", len(sink.Mails()), len(keys))
	return soakVerdict(out, samples, cfg.WarmUp)
}

// churn adds and removes portalsim's slots at random: each change sets
// the slots of one of the dataset's requests' mission, centre and
// category to none, one or two dates, half of them inside the request's
// window (churnSlots).
// A request that is found is replaced by a new one with the same wish, so
// the load stays the same.
func churn(ctx context.Context, ds seed.Dataset, portal *seed.Portal, rq RequestsClient) error {
	found := make(chan foundEvent, 16)
	go watchSlotFound(ctx, rq, found)
	tick := time.NewTicker(churnEvery)
	defer tick.Stop()
	today := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-found:
			r := ev.Request
			_, err := rq.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
				ApplicantId: r.GetApplicantId(), MissionCode: r.GetMissionCode(), Centre: r.GetCentre(),
				VisaCategory: r.GetVisaCategory(), EarliestDate: r.GetEarliestDate(), LatestDate: r.GetLatestDate(),
			})
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("replace a found request: %w", err)
			}
		case <-tick.C:
			a := ds.Applicants[rand.IntN(len(ds.Applicants))]
			r := a.Requests[0]
			err := portal.SetSlots(ctx, r.Mission, r.Centre, r.VisaCategory, churnSlots(r, today))
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("change portalsim's slots: %w", err)
			}
		}
	}
}

// churnSlots are none, one or two free slots for r's mission, centre and
// category, on dates in the coming year: each in r's window with even
// odds, so that checks find requests (and the Notifier has deliveries to
// make) all through the run; anywhere in the year, a tenth fell in a
// window.
func churnSlots(r seed.Request, today time.Time) []seed.Slot {
	earliest, err1 := time.Parse(time.DateOnly, r.Earliest)
	latest, err2 := time.Parse(time.DateOnly, r.Latest)
	inWindow := err1 == nil && err2 == nil && !latest.Before(earliest)
	var slots []seed.Slot
	for range rand.IntN(3) {
		d := today.AddDate(0, 0, 1+rand.IntN(365))
		if inWindow && rand.IntN(2) == 0 {
			d = earliest.AddDate(0, 0, rand.IntN(int(latest.Sub(earliest).Hours()/24)+1))
		}
		slots = append(slots, seed.Slot{Date: d.Format(time.DateOnly), Time: "09:30"})
	}
	return slots
}

// A series is one measured quantity over the run.
type series struct {
	name string
	unit string
	// tolerance is the growth over the fitted window that still passes,
	// given the series' mean; nil means the series is shown, not judged.
	tolerance func(mean float64) float64
}

// sample is one reading of every series, at a time since the start.
type sample struct {
	at     time.Duration
	values map[string]float64
	// limits are bounds a series must stay within at each sample (the
	// Postgres connections in all: the pools' maxima and the LISTEN
	// connections), judged instead of its growth.
	limits map[string]float64
	order  []string
	checks float64
	// restarts is the Checker's slotwatch_checker_browser_restarts_total
	// (browsers started after its first), when its /metrics answered
	// (restartsRead).
	restarts     float64
	restartsRead bool
	// found is how many SLOT_FOUND events Requests has recorded, and
	// delivered how many of the Notifier's deliveries (email and webhook)
	// went out.
	found, delivered float64
}

func (s sample) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s", s.at.Round(time.Second))
	for _, k := range s.order {
		fmt.Fprintf(&b, "  %s=%s", k, strconv.FormatFloat(s.values[k], 'f', -1, 64))
	}
	return b.String()
}

const mib = 1 << 20

// kinds are the judged series by the suffix of their names, with their
// tolerances: growth over the fitted window of at most 10% of the mean
// and an absolute floor that noise on an idle process stays under.
var kinds = map[string]series{
	"rss_mib":    {unit: "MiB", tolerance: func(m float64) float64 { return math.Max(0.10*m, 8) }},
	"goroutines": {unit: "", tolerance: func(m float64) float64 { return math.Max(0.10*m, 5) }},
	"fds":        {unit: "", tolerance: func(m float64) float64 { return math.Max(0.10*m, 5) }},
	// A service's connections outside its pool and its LISTEN connection:
	// a pool opens connections on demand and keeps them until they have
	// been idle 30 minutes, so it climbs after a burst without leaking;
	// a connection opened beside it and never closed is a leak.
	"outside_conns": {unit: "", tolerance: func(float64) float64 { return 1 }},
}

// listenConns are the connections each service holds outside its pool:
// AccountPool's and Requests' LISTEN connection; the Notifier has none.
var listenConns = map[string]float64{"accountpool": 1, "requests": 1, "notifier": 0}

type sampler struct {
	db       *pgx.Conn
	database string
	procs    map[string]*child
	metrics  map[string]string
	http     *http.Client
	// maxConns is each service's pool maximum (pgxpool_max_conns) as last
	// read: it does not change while the pool runs, so a reading in which
	// the service's /metrics did not answer still bounds its connections.
	maxConns map[string]float64
}

// Each process series is the least of floorReadings readings floorGap
// apart: a check in flight (a browser context and its renderer, the
// goroutines that drive it) comes and goes within a second, and read as
// growth when it happened to fall on the samples late in the window. A
// leak raises the floor; a check in flight does not.
const (
	floorReadings = 5
	floorGap      = 300 * time.Millisecond
)

func (s *sampler) sample(ctx context.Context, at time.Duration) (sample, error) {
	sm := sample{at: at, values: map[string]float64{}}
	set := func(k string, v float64) {
		sm.values[k] = v
		sm.order = append(sm.order, k)
	}
	least := func(k string, v float64) {
		if old, ok := sm.values[k]; !ok {
			set(k, v)
		} else {
			sm.values[k] = math.Min(old, v)
		}
	}
	for i := range floorReadings {
		if i > 0 {
			select {
			case <-ctx.Done():
				return sm, ctx.Err()
			case <-time.After(floorGap):
			}
		}
		scraped := s.readProcesses(ctx, least)
		if r, ok := scraped["checker"]["slotwatch_checker_browser_restarts_total"]; ok {
			sm.restarts, sm.restartsRead = max(sm.restarts, r), true
		}
		// Connections too. A pool's count on its /metrics (read once per
		// reading, with the goroutines) comes before pg_stat_activity: a
		// connection it opens between the two reads shows one more
		// outside it for that reading, which the floor drops; one it
		// closes (its backend exiting) shows one fewer, which the floor
		// keeps, and which the tolerance of 1 absorbs when it falls in
		// the window's first quarter.
		limit, bounded, err := s.readConns(ctx, least, scraped)
		if err != nil {
			return sm, err
		}
		if bounded && (sm.limits == nil || limit > sm.limits["postgres.pg_conns"]) {
			sm.limits = map[string]float64{"postgres.pg_conns": limit}
		}
	}
	var found, delivered int64
	if err := s.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM requests.events WHERE type = 'slot_found'),
		(SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered')`).Scan(&found, &delivered); err != nil {
		return sm, fmt.Errorf("count found requests and deliveries: %w", err)
	}
	sm.found, sm.delivered = float64(found), float64(delivered)
	rows, err := s.db.Query(ctx, `SELECT schemaname || '.' || relname FROM pg_stat_user_tables
		WHERE schemaname IN ('accountpool', 'requests', 'notifier') AND relname NOT LIKE 'goose%' ORDER BY 1`)
	if err != nil {
		return sm, fmt.Errorf("list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return sm, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		var n int64
		if err := s.db.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return sm, fmt.Errorf("count %s: %w", t, err)
		}
		set(t+".rows", float64(n))
		if t == "requests.checks" {
			sm.checks = float64(n)
		}
	}
	return sm, nil
}

// readConns reads the Postgres connections once: in all (judged against
// limit, the sum of the pools' maxima, pgxpool_max_conns, and the LISTEN
// connections; bounded is false when a service with connections has not
// had its maximum read yet) and, for each service whose /metrics answered,
// by application_name (shown: the URL may name them all alike) and outside
// its pool: those minus its pool's (pgxpool_total_conns) and its LISTEN
// connection (judged by growth).
func (s *sampler) readConns(ctx context.Context, set func(k string, v float64), scraped map[string]map[string]float64) (limit float64, bounded bool, err error) {
	var all int64
	byName := map[string]float64{}
	rows, err := s.db.Query(ctx, `SELECT application_name, count(*) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1`, s.database)
	if err != nil {
		return 0, false, fmt.Errorf("count Postgres connections: %w", err)
	}
	var name string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		byName[name] = float64(n)
		all += n
		return nil
	}); err != nil {
		return 0, false, fmt.Errorf("count Postgres connections: %w", err)
	}
	set("postgres.pg_conns", float64(all))
	if s.maxConns == nil {
		s.maxConns = map[string]float64{}
	}
	bounded = true
	for _, svc := range []string{"accountpool", "requests", "notifier"} {
		set("postgres."+svc+".conns", byName[svc])
		g := scraped[svc]
		if most, ok := g["pgxpool_max_conns"]; ok {
			s.maxConns[svc] = most
		}
		most, known := s.maxConns[svc]
		switch {
		case known:
			limit += most + listenConns[svc]
		case byName[svc] > 0:
			// Connections named for a service whose pool was never
			// read: no bound can be given for this reading.
			bounded = false
		}
		if total, ok := g["pgxpool_total_conns"]; ok && known {
			set("postgres."+svc+".outside_conns", byName[svc]-total-listenConns[svc])
		}
	}
	return limit, bounded, nil
}

// readProcesses reads each process's RSS and open descriptors (the
// Checker with all of Chromium's processes) and the Go services'
// goroutines once; it returns what it read of each Go service's /metrics
// (its pool's gauges, for readConns).
func (s *sampler) readProcesses(ctx context.Context, set func(k string, v float64)) map[string]map[string]float64 {
	scraped := map[string]map[string]float64{}
	for _, name := range []string{"portalsim", "accountpool", "requests", "notifier", "checker"} {
		if c := s.procs[name]; c != nil && c.cmd.Process != nil {
			pid := c.cmd.Process.Pid
			pids := []int{pid}
			label := name
			if name == "checker" {
				pids = append(pids, descendants(pid)...)
				label = "checker+chromium"
			}
			var rss, fds float64
			for _, p := range pids {
				rss += float64(rssBytes(p)) / mib
				fds += float64(openFDs(p))
			}
			set(label+".rss_mib", math.Round(rss*10)/10)
			set(label+".fds", fds)
		}
		if addr := s.metrics[name]; addr != "" {
			scraped[name] = s.gauges(ctx, addr, "go_goroutines", "pgxpool_total_conns", "pgxpool_max_conns", "slotwatch_checker_browser_restarts_total")
			if g, ok := scraped[name]["go_goroutines"]; ok {
				set(name+".goroutines", g)
			}
		}
	}
	return scraped
}

// gauges reads unlabelled metrics from a Prometheus /metrics page; a
// metric it could not read is missing.
func (s *sampler) gauges(ctx context.Context, addr string, names ...string) map[string]float64 {
	got := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return got
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return got
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		for _, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					got[name] = f
				}
			}
		}
	}
	return got
}

// rssBytes is a process's resident set (0 when it is gone).
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(es)
}

// descendants are the processes below pid (Chromium's, for the Checker).
func descendants(pid int) []int {
	es, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range es {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// soakVerdict fits a line to each series after warmUp, prints the slopes
// and fails on growth beyond a judged series' tolerance, or on a run that
// carried no load: no check made, no request found, or nothing the
// Notifier delivered.
// soakRecycle is the soak Checker's CHECKER_BROWSER_RECYCLE (its
// default): a browser serves this many checks, then a fresh one replaces
// it. The Checker's and Chromium's RSS and descriptors follow that
// sawtooth (low after a replacement, climbing with the tabs served), so
// they are judged only over a window of at least judgedLifetimes browser
// lifetimes (the browsers it started in the window, from its
// slotwatch_checker_browser_restarts_total), where a phase of the sawtooth
// cannot pass for a climb; a shorter window (TestSoak's minute holds about
// one) shows them.
const (
	soakRecycle     = 100
	judgedLifetimes = 5
)

// lastLimit is the bound on series k at the last sample that has one.
func lastLimit(samples []sample, k string) (float64, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if l, ok := samples[i].limits[k]; ok {
			return l, true
		}
	}
	return 0, false
}

func soakVerdict(out io.Writer, samples []sample, warmUp time.Duration) error {
	var fit []sample
	for _, s := range samples {
		if s.at >= warmUp {
			fit = append(fit, s)
		}
	}
	if len(fit) < 3 {
		return fmt.Errorf("only %d samples after the warm-up: too few to fit", len(fit))
	}
	span := (fit[len(fit)-1].at - fit[0].at).Minutes()
	checks := fit[len(fit)-1].checks - fit[0].checks
	// The browsers started in the window, each a lifetime: counted from
	// the Checker's restarts, or, where its /metrics did not answer, from
	// the checks (which include checks that opened no tab, so the count
	// runs high).
	lifetimes := checks / soakRecycle
	if first, last := fit[0], fit[len(fit)-1]; first.restartsRead && last.restartsRead {
		lifetimes = last.restarts - first.restarts
	}
	// A request found after the second-to-last sample may still have its
	// deliveries on the way when the run ends: a Notifier that delivered
	// nothing is judged on the requests found before it.
	found := fit[len(fit)-2].found - fit[0].found
	delivered := fit[len(fit)-1].delivered - fit[0].delivered
	fmt.Fprintf(out, "\nFit over %d samples from %s to %s (%.1f min); %.0f checks in that window (%.1f/min); %.0f requests found, %.0f deliveries by the Notifier\n",
		len(fit), fit[0].at.Round(time.Second), fit[len(fit)-1].at.Round(time.Second), span, checks, checks/span,
		fit[len(fit)-1].found-fit[0].found, delivered)
	w := newTable(out)
	w.row("series", "first", "last", "mean", "slope/min", "±2 s.e.", "growth fitted", "floor rise", "tolerance", "verdict")
	var failed []string
	for _, k := range samples[len(samples)-1].order {
		xs, ys := make([]float64, 0, len(fit)), make([]float64, 0, len(fit))
		for _, s := range fit {
			if v, ok := s.values[k]; ok {
				xs = append(xs, s.at.Minutes())
				ys = append(ys, v)
			}
		}
		if len(xs) < 3 {
			continue
		}
		slope, se, mean := fitLine(xs, ys)
		growth := slope * span
		rise := floorRise(ys)
		verdict, tol := "shown", "-"
		if limit, bounded := lastLimit(fit, k); bounded {
			tol = "at most " + num(limit)
			verdict = "pass"
			for _, s := range fit {
				if l, ok := s.limits[k]; ok && s.values[k] > l {
					verdict = "FAIL"
				}
			}
			if verdict == "FAIL" {
				failed = append(failed, k)
			}
		} else if sr, ok := kinds[k[strings.LastIndexByte(k, '.')+1:]]; ok && strings.HasPrefix(k, "checker+chromium.") && lifetimes < judgedLifetimes {
			verdict = fmt.Sprintf("shown (%.1f browser lifetimes)", lifetimes)
		} else if ok {
			limit := sr.tolerance(mean)
			tol = num(limit)
			switch {
			case growth <= limit:
				verdict = "pass"
			case slope <= 2*se:
				verdict = "pass (noise)" // the samples scatter more than they climb
			case rise <= limit:
				verdict = "pass (spikes)" // high samples, each quarter's floor level
			default:
				verdict = "FAIL"
				failed = append(failed, k)
			}
		}
		w.row(k, num(ys[0]), num(ys[len(ys)-1]), num(mean), num(slope), num(2*se), num(growth), num(rise), tol, verdict)
	}
	w.flush()
	fmt.Fprintln(out, "Judged: rss_mib, goroutines, fds (fitted growth over the window at most max(10% of the mean, 8 MiB / 5)), a service's outside_conns")
	fmt.Fprintln(out, "(its Postgres connections, by application_name, outside its pool and its LISTEN connection: growth at most 1),")
	fmt.Fprintln(out, "pg_conns (all connections: at every sample at most the pools' maxima and the LISTEN connections, a bound: a pool keeps what a burst opened);")
	fmt.Fprintln(out, "growth beyond that fails only when the slope is above twice its standard error (a climb, not scatter)")
	fmt.Fprintln(out, "and the floor (least sample) of the window's last quarter exceeds its first quarter's, scaled to the window, by more too (a climb, not samples caught mid-check).")
	fmt.Fprintf(out, "checker+chromium's rss_mib and fds are judged over a window of at least %d browser lifetimes (browsers the Checker started: it replaces one after %d checks, CHECKER_BROWSER_RECYCLE), shown over a shorter one.\n", judgedLifetimes, soakRecycle)
	fmt.Fprintln(out, "table rows are shown: retention keeps at least an hour of checks, claims, events, usage and deliveries (90 days by default), so in a soak they grow with the checks and finds.")
	if checks <= 0 {
		return fmt.Errorf("no check was made after the warm-up: the soak carried no load")
	}
	if found <= 0 {
		return fmt.Errorf("no request was found after the warm-up (before the last sample): the Notifier carried no load")
	}
	if delivered <= 0 {
		return fmt.Errorf("the Notifier delivered nothing after the warm-up while %.0f requests were found: the soak carried no notification load", found)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s grew beyond tolerance", strings.Join(failed, ", "))
	}
	fmt.Fprintln(out, "soak: PASS")
	return nil
}

// fitLine is the least-squares slope of ys over xs, its standard error
// (0 with fewer than 3 points), and the mean of ys.
func fitLine(xs, ys []float64) (slope, se, mean float64) {
	n := float64(len(xs))
	var mx float64
	for i := range xs {
		mx += xs[i]
		mean += ys[i]
	}
	mx /= n
	mean /= n
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - mean)
	}
	if sxx == 0 {
		return 0, 0, mean
	}
	slope = sxy / sxx
	if len(xs) < 3 {
		return slope, 0, mean
	}
	var ssr float64
	for i := range xs {
		r := ys[i] - mean - slope*(xs[i]-mx)
		ssr += r * r
	}
	return slope, math.Sqrt(ssr / (n - 2) / sxx), mean
}

// floorRise is how far the least of the last quarter of ys (rounded up)
// lies above the least of the first quarter. Samples caught mid-check (a
// browser context open, its goroutines running) sit above a level series
// at random; late in a short window a few of them tilt the least-squares
// line, but one level sample among them keeps the quarter's floor down. A
// leak raises every sample after it began: a leak that began before the
// last quarter raises its floor, however late (the median of the pairwise
// slopes stayed 0 for one that began after about 71% of the window).
func floorRise(ys []float64) float64 {
	k := (len(ys) + 3) / 4
	if len(ys) <= k {
		return 0
	}
	// The two floors of a steady climb are its first sample and the first
	// of the last quarter, (n-k)/(n-1) of the window apart: scaled to the
	// whole window, as the fitted growth is.
	return (slices.Min(ys[len(ys)-k:]) - slices.Min(ys[:k])) * float64(len(ys)-1) / float64(len(ys)-k)
}

func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}
