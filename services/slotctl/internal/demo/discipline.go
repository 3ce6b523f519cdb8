package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/proctree"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// Discipline is `make bench-discipline` (issue 13): how little load the
// system puts on a portal, read from portalsim's own record. It starts
// portalsim, AccountPool, Requests and two Checker replicas (real binaries
// and Chromium) on a database of its own, with the demo's six accounts and
// one request in each of its two missions (so that one check is one load of
// the portal's slot page), and measures:
//
//  1. Checks checks with the shipped portalsim profile (a login per check)
//     and Checks with the same profile plus `logout: keep_session`
//     (session reuse): logins per check from /admin/logins, the most slot
//     pages the portal served in any 60 seconds, time and CPU per check.
//  2. With the portal capped at Cap checks per minute, the most slot pages
//     it served in any 60 seconds during CapFor (0 skips this).
//  3. A CAPTCHA storm (portalsim's global behaviour): how many slot pages
//     the portal served from the storm's start until Requests paused the
//     portal, and how many during the pause (Hold of it).
type DisciplineConfig struct {
	// BinDir holds portalsim, accountpool, requests and checker.
	BinDir string
	// ProfileFile is the shipped portalsim profile
	// (services/checker/profiles/portalsim.yaml).
	ProfileFile string
	// WorkDir holds the run's files: tokens, keyset, logs, profiles.
	WorkDir string
	// DatabaseURL is a server on which the run makes (and drops) Database.
	DatabaseURL string
	Database    string
	// Checks per reuse mode (200).
	Checks int
	// Cap is the portal's max_checks_per_minute in the cap phase (20).
	Cap int
	// CapFor is how long the cap phase runs; 0 skips it.
	CapFor time.Duration
	// Hold is how long the paused portal is watched after a storm.
	Hold time.Duration
	// ChromePath is the Chromium the Checkers run.
	ChromePath string
	// Patience multiplies the waits for the services and Checkers to be
	// ready and the Checkers' browser start timeout; 0 or 1 keeps them as
	// written, and it is at most maxPatience (3). The test sets it from
	// the machine's load: two Checkers
	// starting Chromium at once at load 40 were not ready in 90 s.
	Patience float64
	Out      io.Writer
}

const (
	benchPortal = "portalsim"
	// highCap is the cap outside the cap phase: never reached, so those
	// phases run as fast as the machine lets them.
	highCap = 10000
	// stormChecks is how many checks run before the storm starts.
	stormChecks = 4
	// portalSessionLifetime is portalsim's session lifetime: issue 13's
	// 30 minutes, after which a kept session is logged out and the check
	// logs in again.
	portalSessionLifetime = "30m"
)

// The run's shortened settings, shown with the table.
var disciplineTimings = []timing{
	{"POOL_COOLDOWN", "2s", "10m"},
	{"POOL_MAX_LOGINS_PER_DAY", "100000", "20"},
	{"REQUESTS_CHECK_INTERVAL", "0s", "2m"},
	{"CHECKER_SESSION_INTERVAL", "200ms", "10s"},
}

// Discipline runs the measurement and prints its tables to cfg.Out.
func Discipline(ctx context.Context, cfg DisciplineConfig) error {
	if cfg.Checks <= 0 {
		return fmt.Errorf("checks must be positive, not %d", cfg.Checks)
	}
	if cfg.Cap <= 0 || cfg.Cap > highCap {
		return fmt.Errorf("cap must be 1 to %d, not %d", highCap, cfg.Cap)
	}
	shipped, err := os.ReadFile(cfg.ProfileFile)
	if err != nil {
		return fmt.Errorf("the shipped portalsim profile: %w", err)
	}
	keep, err := keepSessionProfile(shipped)
	if err != nil {
		return err
	}
	// One request per mission: a check is one slot page at the portal.
	ds := seed.DemoDataset(time.Now())
	ds.Applicants = []seed.Applicant{ds.Applicants[0], ds.Applicants[2]}
	sys, err := startBench(ctx, benchStart{
		binDir: cfg.BinDir, workDir: cfg.WorkDir, serverURL: cfg.DatabaseURL, database: cfg.Database,
		timings: disciplineTimings, portalEnv: []string{"PORTALSIM_SESSION_LIFETIME=" + portalSessionLifetime},
		dataset: ds, ports: 2, patience: patience(cfg.Patience),
	})
	if err != nil {
		return err
	}
	defer sys.close()
	out, rq := cfg.Out, sys.rq
	profiles := map[bool]string{false: filepath.Join(sys.files.dir, "profile-login.yaml"), true: filepath.Join(sys.files.dir, "profile-keep-session.yaml")}
	for reuse, b := range map[bool][]byte{false: shipped, true: keep} {
		if err := os.WriteFile(profiles[reuse], b, 0o600); err != nil {
			return err
		}
	}
	for _, m := range ds.Missions {
		if _, err := rq.UpsertMission(ctx, &rqv1.UpsertMissionRequest{MissionCode: m.Code, Portal: proto.String(benchPortal)}); err != nil {
			return fmt.Errorf("mission %s: %w", m.Code, err)
		}
	}
	setCap := func(n int) error {
		_, err := rq.SetPortal(ctx, &rqv1.SetPortalRequest{Name: benchPortal, MaxChecksPerMinute: proto.Int32(int32(n)),
			MinMissionInterval: durationpb.New(0)})
		return err
	}

	b := &disciplineBench{cfg: cfg, sup: sys.sup, bin: cfg.BinDir, portal: sys.portal, rq: rq, ports: sys.ports,
		env: append(sys.checkerEnv(cfg.ChromePath), patience(cfg.Patience).checkerStartEnv())}

	fmt.Fprintf(out, "Portal load discipline: portalsim, AccountPool, Requests and 2 Checker replicas; %d accounts, %d missions (one request each)\n",
		len(ds.Accounts), len(ds.Missions))
	shortenedSettings(out, disciplineTimings)
	fmt.Fprintf(out, "portalsim's session lifetime: %s\n", portalSessionLifetime)
	fmt.Fprintf(out, "Load: %s; %d CPUs\n\n", loadAvg(), runtime.NumCPU())

	if err := setCap(highCap); err != nil {
		return fmt.Errorf("set the portal's cap: %w", err)
	}
	var modes [2]phaseResult
	for i, reuse := range []bool{false, true} {
		fmt.Fprintf(out, "running %d checks, session reuse %s ...\n", cfg.Checks, onOff(reuse))
		r, err := b.phase(ctx, profiles[reuse], func(ctx context.Context, p *phaseRun) error { return p.waitChecks(ctx, cfg.Checks) })
		if err != nil {
			return err
		}
		modes[i] = r
	}
	fmt.Fprintln(out)
	w := newTable(out)
	w.row("", "reuse off", "reuse on")
	w.row("checks (both replicas)", strconv.Itoa(modes[0].checks), strconv.Itoa(modes[1].checks))
	w.row("logins at the portal", strconv.Itoa(modes[0].logins), strconv.Itoa(modes[1].logins))
	w.row("logins per check (goal: 1.0 off, <= 0.1 on)", ratio(modes[0].logins, modes[0].checks), ratio(modes[1].logins, modes[1].checks))
	w.row("checks that reused a session", strconv.Itoa(modes[0].reused), strconv.Itoa(modes[1].reused))
	w.row("outcomes", modes[0].outcomeText(), modes[1].outcomeText())
	w.row("median check time (Checker)", ms(modes[0].median()), ms(modes[1].median()))
	w.row("wall time per check (2 replicas)", ms(modes[0].perCheck(modes[0].wall)), ms(modes[1].perCheck(modes[1].wall)))
	w.row("CPU per check (Checkers + Chromium, process trees)", ms(modes[0].cpuPerCheck()), ms(modes[1].cpuPerCheck()))
	w.row("portal pages per check", ratio(modes[0].pages, modes[0].checks), ratio(modes[1].pages, modes[1].checks))
	w.row(fmt.Sprintf("most checks in 60s at the portal (cap %d)", highCap), strconv.Itoa(maxPerMinute(modes[0].reqs)), strconv.Itoa(maxPerMinute(modes[1].reqs)))
	w.flush()

	if cfg.CapFor > 0 {
		if err := setCap(cfg.Cap); err != nil {
			return fmt.Errorf("set the portal's cap: %w", err)
		}
		fmt.Fprintf(out, "\nrunning %s with the portal capped at %d checks per minute (reuse on) ...\n", cfg.CapFor, cfg.Cap)
		r, err := b.phase(ctx, profiles[true], func(ctx context.Context, _ *phaseRun) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.CapFor):
				return nil
			}
		})
		if err != nil {
			return err
		}
		if err := setCap(highCap); err != nil {
			return err
		}
		verdict := "within the cap"
		if maxPerMinute(r.reqs) > cfg.Cap {
			verdict = "OVER THE CAP"
		}
		fmt.Fprintf(out, "  checks: %d; most checks in any 60s at the portal: %d, cap %d (%s)\n", r.checks, maxPerMinute(r.reqs), cfg.Cap, verdict)
	}

	fmt.Fprintf(out, "\nCAPTCHA storm: %d checks, then portalsim's global behaviour captcha, until Requests pauses the portal; then %s of the pause ...\n", stormChecks, cfg.Hold)
	var storm stormResult
	_, err = b.phase(ctx, profiles[true], func(ctx context.Context, p *phaseRun) error {
		var err error
		storm, err = b.storm(ctx, p)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  paused after %s: %s\n", storm.toPause.Round(10*time.Millisecond), storm.reason)
	fmt.Fprintf(out, "  pages the portal served after the storm began, before the pause (goal <= 3 checks): %d\n", storm.before)
	fmt.Fprintf(out, "  pages the portal served during the pause (%s watched; goal 0): %d\n", cfg.Hold, storm.during)
	fmt.Fprintf(out, "  those pages, by time from the pause: %s\n", strings.Join(storm.pages, "; "))
	return nil
}

// keepSessionProfile is the shipped portalsim profile with `logout:
// keep_session` instead of its logout step.
func keepSessionProfile(shipped []byte) ([]byte, error) {
	const logout = "logout:\n  url: /logout\n"
	if !bytes.Contains(shipped, []byte(logout)) {
		return nil, fmt.Errorf("the shipped portalsim profile has no %q to replace with logout: keep_session", logout)
	}
	return bytes.Replace(shipped, []byte(logout), []byte("logout: keep_session\n"), 1), nil
}

type disciplineBench struct {
	cfg    DisciplineConfig
	sup    *supervisor
	bin    string
	portal *seed.Portal
	rq     rqv1.RequestsServiceClient
	env    []string
	// ports: LISTEN_ADDR of the two replicas (their METRICS_ADDR is :0).
	ports []string
}

// phaseRun is a phase while its Checkers run: the checks they finished.
type phaseRun struct {
	mu     sync.Mutex
	checks []Event
	more   chan struct{} // closed and replaced on each check
}

func (p *phaseRun) add(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, e)
	close(p.more)
	p.more = make(chan struct{})
}

func (p *phaseRun) snapshot() ([]Event, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.checks), p.more
}

// waitChecks returns once n checks have finished.
func (p *phaseRun) waitChecks(ctx context.Context, n int) error {
	for {
		got, more := p.snapshot()
		if len(got) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-more:
		}
	}
}

type phaseResult struct {
	checks, logins, reused int
	outcomes               map[string]int
	durations              []time.Duration
	wall                   time.Duration
	// cpu is the Checkers' process trees' CPU while cpuChecks checks
	// finished (from the replicas' start to the end of drive).
	cpu       time.Duration
	cpuChecks int
	// reqs are the portal's slot pages: one per check.
	reqs []PortalRequest
	// pages are the pages it served (navigations: login, slots, ...).
	pages int
}

// PortalRequest is an entry of portalsim's request log.
type PortalRequest struct {
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
}

// phase clears portalsim's records, runs two Checker replicas with the
// profile until drive returns, stops them (their running checks finish)
// and reads what the portal saw.
func (b *disciplineBench) phase(ctx context.Context, profile string, drive func(context.Context, *phaseRun) error) (phaseResult, error) {
	for _, path := range []string{"/admin/logins", "/admin/requests"} {
		if err := b.portal.Do(ctx, http.MethodDelete, path, nil); err != nil {
			return phaseResult{}, err
		}
	}
	run := &phaseRun{more: make(chan struct{})}
	start := time.Now()
	var replicas []*child
	stop := func() {
		for _, c := range replicas {
			c.stop(grace("checker"), nil)
		}
		replicas = nil
	}
	defer stop()
	for i, addr := range b.ports {
		name := fmt.Sprintf("checker-%d", i+1)
		c, err := b.sup.start(name, filepath.Join(b.bin, "checker"), append(slices.Clone(b.env),
			"LISTEN_ADDR="+addr, "METRICS_ADDR=127.0.0.1:0", "CHECKER_ID=bench-"+strconv.Itoa(i+1), "PORTAL_PROFILE_FILE="+profile,
		), func(line []byte) {
			if e, ok := ParseCheckerLine(line); ok && e.Kind == CheckFinished {
				run.add(e)
			}
		})
		if err != nil {
			return phaseResult{}, err
		}
		replicas = append(replicas, c)
	}
	for i, c := range replicas {
		if err := waitGRPC(ctx, c, b.ports[i], patience(b.cfg.Patience).of(90*time.Second)); err != nil {
			return phaseResult{}, err
		}
	}
	// CPU is read from the process trees (each Checker, its Chromium and
	// Chromium's renderers and GPU process, those reaped included) while
	// they run: at their exit, the Checker's rusage would miss what
	// Chromium's zygotes reaped.
	treeCPU := func() (d time.Duration) {
		for _, c := range replicas {
			d += proctree.CPU(c.cmd.Process.Pid)
		}
		return d
	}
	cpuBefore := treeCPU()
	if err := drive(ctx, run); err != nil {
		return phaseResult{}, err
	}
	cpu := treeCPU() - cpuBefore
	sampled, _ := run.snapshot()
	stop()
	wall := time.Since(start)
	r := phaseResult{wall: wall, outcomes: map[string]int{}, cpu: cpu, cpuChecks: len(sampled)}
	checks, _ := run.snapshot()
	r.checks = len(checks)
	for _, e := range checks {
		r.outcomes[e.Outcome]++
		r.durations = append(r.durations, e.Duration)
		if e.SessionReused {
			r.reused++
		}
	}
	var logins []json.RawMessage
	if err := b.portal.Get(ctx, "/admin/logins", &logins); err != nil {
		return r, err
	}
	r.logins = len(logins)
	var all []PortalRequest
	if err := b.portal.Get(ctx, "/admin/requests", &all); err != nil {
		return r, err
	}
	for _, q := range all {
		if isPage(q.Path) {
			r.pages++
		}
		if q.Method == http.MethodGet && strings.HasPrefix(q.Path, "/missions/") && strings.HasSuffix(q.Path, "/slots") {
			r.reqs = append(r.reqs, q)
		}
	}
	return r, nil
}

type stormResult struct {
	toPause        time.Duration
	reason         string
	before, during int
	// pages are the portal's pages from the storm's start on, with their
	// time from the pause.
	pages []string
}

// storm lets stormChecks checks run, turns on the global CAPTCHA, waits
// for Requests to pause the portal (the time of its PORTAL_PAUSED event),
// watches it for cfg.Hold, and counts the pages the portal served (not
// its static files or slot API: a walled check stops at its first page)
// before and during the pause.
func (b *disciplineBench) storm(ctx context.Context, p *phaseRun) (stormResult, error) {
	var r stormResult
	if err := p.waitChecks(ctx, stormChecks); err != nil {
		return r, err
	}
	began := time.Now()
	if err := b.portal.Do(ctx, http.MethodPut, "/admin/behaviour", map[string]string{"kind": "captcha"}); err != nil {
		return r, err
	}
	defer func() { _ = b.portal.Do(context.WithoutCancel(ctx), http.MethodDelete, "/admin/behaviour", nil) }()
	pausedAt, reason, err := b.pausedAt(ctx, 2*time.Minute)
	if err != nil {
		return r, err
	}
	r.toPause, r.reason = pausedAt.Sub(began), reason
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(b.cfg.Hold):
	}
	var all []PortalRequest
	if err := b.portal.Get(ctx, "/admin/requests", &all); err != nil {
		return r, err
	}
	for _, q := range all {
		if q.At.Before(began) || !isPage(q.Path) {
			continue
		}
		if q.At.Before(pausedAt) {
			r.before++
		} else {
			r.during++
		}
		r.pages = append(r.pages, fmt.Sprintf("%+.2fs %s %s", q.At.Sub(pausedAt).Seconds(), q.Method, q.Path))
	}
	return r, nil
}

// pausedAt waits for the benchmark's portal to be paused and returns when
// it was, from its PORTAL_PAUSED event, and why.
func (b *disciplineBench) pausedAt(ctx context.Context, timeout time.Duration) (time.Time, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stream, err := b.rq.WatchEvents(ctx, &rqv1.WatchEventsRequest{})
	if err != nil {
		return time.Time{}, "", fmt.Errorf("watch events: %w", err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return time.Time{}, "", fmt.Errorf("no PORTAL_PAUSED event within %s of the storm: %w", timeout, err)
		}
		if ev.GetType() == rqv1.EventType_EVENT_TYPE_PORTAL_PAUSED && ev.GetPortal().GetName() == benchPortal {
			return ev.GetOccurredAt().AsTime(), ev.GetPortal().GetPauseReason(), nil
		}
	}
}

// isPage says whether a portal request is a page a browser navigates to,
// not a file or the script's API call within one.
func isPage(path string) bool {
	return !strings.HasPrefix(path, "/static/") && !strings.HasPrefix(path, "/api/") && path != "/favicon.ico"
}

// maxPerMinute is the most requests in any 60 seconds.
func maxPerMinute(reqs []PortalRequest) int {
	ts := make([]time.Time, len(reqs))
	for i, r := range reqs {
		ts[i] = r.At
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= time.Minute {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func (r phaseResult) median() time.Duration {
	if len(r.durations) == 0 {
		return 0
	}
	d := slices.Clone(r.durations)
	slices.Sort(d)
	return d[len(d)/2]
}

func (r phaseResult) cpuPerCheck() time.Duration {
	if r.cpuChecks == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.cpuChecks)
}

func (r phaseResult) perCheck(d time.Duration) time.Duration {
	if r.checks == 0 {
		return 0
	}
	return d / time.Duration(r.checks)
}

func (r phaseResult) outcomeText() string {
	var parts []string
	for o, n := range r.outcomes {
		parts = append(parts, fmt.Sprintf("%s %d", o, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func ratio(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// table prints rows with aligned columns.
type table struct {
	out  io.Writer
	rows [][]string
}

func newTable(out io.Writer) *table { return &table{out: out} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) flush() {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range t.rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		fmt.Fprintln(t.out, strings.TrimRight(line.String(), " "))
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(f[:3], " ") + " (1, 5, 15 min)"
}
