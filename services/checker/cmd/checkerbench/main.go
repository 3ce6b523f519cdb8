// Command checkerbench measures what the shared browser buys: the same
// portal check run against an in-process portalsim with one long-lived
// Chromium and a fresh browser context per check, and with a new Chromium
// per check, in one run on one machine.
//
// For each mode it reports checks per minute (one at a time, and
// -parallel at once), the median and p90 check time, the checker's own
// overhead per check (check time minus the time portalsim spent serving
// that check's requests), the CPU time per check of Chromium (every one of
// its processes) and of this process (driver, chromedp and portalsim), and
// the peak memory of this process plus every Chromium process under it
// (RSS and PSS summed from /proc).
//
// First, for each portalsim family (-families), it runs the same check with
// the family's shipped profile, one at a time with the shared browser, and
// prints the families side by side with the classic one: the step engine's
// cost per portal shape. -families-only stops there (a short run).
//
// It measures Debian's chromium (CHROME_PATH, default /usr/bin/chromium)
// and, when installed, the old headless shell of the chromium-headless-shell
// package, which drops the full browser's window machinery. Run as root,
// it needs CHROME_NO_SANDBOX=true, as the checker does.
//
//	go run ./services/checker/cmd/checkerbench [-checks 40] [-fresh-checks 12] [-parallel 5] [-chrome a,b]
//		[-families classic,vfs,tls,ais] [-families-only]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/platform/proctree"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "checkerbench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	gap         time.Duration
	burstGap    time.Duration
	checks      int
	freshChecks int
	parallel    int
	browsers    []string
	families    []sim.Family
	// familiesOnly skips the browser modes: the families' table alone.
	familiesOnly bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("checkerbench", flag.ContinueOnError)
	fs.IntVar(&o.checks, "checks", 40, "checks per phase with the shared browser")
	fs.IntVar(&o.freshChecks, "fresh-checks", 12, "checks per phase with a new browser per check")
	fs.IntVar(&o.parallel, "parallel", 5, "checks at once in the parallel phase (MAX_CONCURRENT_MISSIONS)")
	fs.DurationVar(&o.gap, "gap", 500*time.Millisecond, "pause between checks in the spaced phase, as the session loop leaves")
	fs.DurationVar(&o.burstGap, "burst-gap", 2*time.Second, "pause before each burst of -parallel checks in the burst phases, as between sessions")
	chrome := fs.String("chrome", defaultBrowsers(), "comma-separated Chromium binaries to measure, each in every mode")
	fams := fs.String("families", "classic,vfs,tls,ais", "comma-separated portalsim families to measure with their shipped profiles, side by side (empty: none)")
	fs.BoolVar(&o.familiesOnly, "families-only", false, "measure the families alone, not the browser modes (a short run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name := range strings.SplitSeq(*fams, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		f, err := sim.ParseFamily(name)
		if err != nil {
			return fmt.Errorf("-families: %w", err)
		}
		o.families = append(o.families, f)
	}
	if o.familiesOnly && len(o.families) == 0 {
		return errors.New("-families-only with no -families")
	}
	for b := range strings.SplitSeq(*chrome, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.browsers = append(o.browsers, b)
		}
	}
	if len(o.browsers) == 0 {
		return errors.New("-chrome names no browser")
	}
	if o.checks < 1 || o.freshChecks < 1 || o.parallel < 1 {
		return errors.New("-checks, -fresh-checks and -parallel must be at least 1")
	}

	portalSim, err := sim.New(benchPortal(o.parallel))
	if err != nil {
		return err
	}
	srv := httptest.NewServer(portalSim)
	defer srv.Close()
	prof, err := profile.Default().WithBaseURL(srv.URL)
	if err != nil {
		return err
	}
	artifacts, err := os.MkdirTemp("", "checkerbench-artifacts")
	if err != nil {
		return err
	}
	defer os.RemoveAll(artifacts)

	fmt.Fprintf(out, "checkerbench: %s\n", machine())
	fmt.Fprintf(out, "portal: in-process portalsim at %s; each check logs in, opens the slot page, reads 2 slots loaded by JavaScript, logs out\n", srv.URL)

	for _, exe := range o.browsers {
		fmt.Fprintf(out, "\n### %s (%s)\n\n", exe, version(exe))
		if len(o.families) > 0 {
			if err := benchFamilies(ctx, out, portalSim, srv.URL, artifacts, exe, o.families, o.checks); err != nil {
				return fmt.Errorf("%s: %w", exe, err)
			}
		}
		if o.familiesOnly {
			continue
		}
		b := &bench{sim: portalSim, prof: prof, artifacts: artifacts, exec: exe, wantSlots: 2}
		var rows []row
		for _, ph := range []struct {
			mode     mode
			checks   int
			parallel int
		}{
			{shared, o.checks, 1},
			{perCheck, o.freshChecks, 1},
			{shared, o.checks, o.parallel},
			{perCheck, o.freshChecks, o.parallel},
			{sharedNoSpare, o.checks, 1},
			{sharedSpaced, o.checks, 1},
			{sharedBurst, o.checks, o.parallel},
			{sharedBurstOneSpare, o.checks, o.parallel},
		} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "%s: %s, %d checks, %d at once...\n", exe, ph.mode, ph.checks, ph.parallel)
			gap := o.gap
			if ph.mode.bursts() {
				gap = o.burstGap
			}
			r, err := b.phase(ctx, ph.mode, ph.checks, ph.parallel, gap)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", exe, ph.mode, err)
			}
			rows = append(rows, r)
		}
		report(out, rows)
	}
	fmt.Fprintf(out, "\nload average at the end: %s\n", loadavg())
	return nil
}

// defaultBrowsers is Debian's chromium, plus its old headless shell (the
// chromium-headless-shell package) when it is installed.
func defaultBrowsers() string {
	list := []string{envOr("CHROME_PATH", browser.DefaultExecPath)}
	const shell = "/usr/lib/chromium/chromium-headless-shell"
	if _, err := os.Stat(shell); err == nil && list[0] != shell {
		list = append(list, shell)
	}
	return strings.Join(list, ",")
}

type mode string

const (
	shared        mode = "shared browser, fresh context per check"
	perCheck      mode = "new browser per check"
	sharedNoSpare mode = "shared browser, no tab opened ahead"
	sharedSpaced  mode = "shared browser, checks spaced by -gap"
	// A session starts up to MAX_CONCURRENT_MISSIONS checks together, then
	// the accounts cool down: bursts with idle time between them.
	sharedBurst         mode = "shared browser, bursts, a spare per check at once"
	sharedBurstOneSpare mode = "shared browser, bursts, one spare"
)

// bursts: the mode pauses before each group of -parallel checks.
func (m mode) bursts() bool { return m == sharedBurst || m == sharedBurstOneSpare }

// paused: the mode's pauses are not the checker's, so it has no
// throughput figure.
func (m mode) paused() bool { return m == sharedSpaced || m.bursts() }

// benchPortal has one account per parallel check, so no two checks share
// an account, and one mission whose London / tourism has two slots.
func benchPortal(parallel int) sim.Config {
	cfg := sim.Config{Missions: []sim.Mission{{
		Code: "fra", Name: "France", Centres: []string{"London"}, VisaCategories: []string{"tourism"},
		Slots: []sim.Slot{
			{Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"},
			{Centre: "London", VisaCategory: "tourism", Date: "2027-03-02", Time: "14:00"},
		},
	}}}
	for i := range parallel {
		cfg.Accounts = append(cfg.Accounts, sim.Account{Email: fmt.Sprintf("bench%d@example.com", i), Password: fmt.Sprintf("bench-pw-%d", i)})
	}
	return cfg
}

type bench struct {
	sim       *sim.Sim
	prof      *profile.Profile
	artifacts string
	exec      string
	// wantSlots is what a check must find: the portal's two slots, or the
	// earliest alone where the portal shows only that (vfs).
	wantSlots int
}

type row struct {
	mode       mode
	family     string // the portal family, in the families' table
	background bool   // its profile's background_tabs
	parallel   int
	checks     int
	wall       time.Duration
	total      []time.Duration // per check
	overhead   []time.Duration // per check, one-at-a-time phases only
	peak       memory
	cpu        time.Duration // Chromium CPU per check
	selfCPU    time.Duration // this process's CPU per check: driver, chromedp, portalsim
	failed     int
}

// phase measures one mode: checks, parallel at a time, timed, then a
// shorter pass of the same for the peak memory.
func (b *bench) phase(ctx context.Context, m mode, checks, parallel int, gap time.Duration) (row, error) {
	r, err := b.pass(ctx, m, checks, parallel, gap, false)
	if err != nil {
		return r, err
	}
	// Memory is sampled in a pass of its own: reading every Chromium
	// process's smaps_rollup every 50 ms takes enough of two cores to
	// stretch the checks it watches by a quarter or more.
	mr, err := b.pass(ctx, m, max(checks/3, 2*parallel), parallel, gap, true)
	if err != nil {
		return r, fmt.Errorf("memory pass: %w", err)
	}
	r.peak = mr.peak
	return r, nil
}

// pass runs checks, parallel at a time, timing them, and samples memory
// meanwhile when sample is set.
func (b *bench) pass(ctx context.Context, m mode, checks, parallel int, gap time.Duration, sample bool) (row, error) {
	r := row{mode: m, parallel: parallel, checks: checks}
	var (
		shm       *browser.Manager
		chromeCPU atomic.Int64 // of the browsers closed so far
	)
	selfBefore := selfCPU()
	cpuChecks := checks // the checks the CPU figures are divided by
	spares := parallel  // as the Checker: one per mission checked at once
	if m != perCheck {
		if m == sharedBurstOneSpare {
			spares = 1
		}
		if m == sharedNoSpare {
			spares = 0
		}
		shm = browser.New(browser.Config{ExecPath: b.exec, NoSandbox: noSandbox(), Background: b.prof.BackgroundTabs, NoSpare: spares == 0, Spares: spares})
		defer shm.Close()
		// Start it and warm it up outside the time measurement: the shared
		// browser's start is paid once per CHECKER_BROWSER_RECYCLE checks.
		// Its CPU and the warm-up check's are in the CPU figures, which
		// count the warm-up as one more check.
		cpuChecks++
		if _, err := b.check(ctx, shm, 0); err != nil {
			return r, fmt.Errorf("warm-up: %w", err)
		}
	}

	var sampler *sampler
	if sample {
		sampler = startSampler()
	}
	var (
		mu   sync.Mutex
		next atomic.Int64
	)
	one := func(w int) {
		before := b.sim.Stats().Busy
		began := time.Now()
		var (
			err     error
			took    time.Duration
			cpuRead time.Duration
		)
		if shm != nil {
			_, err = b.check(ctx, shm, w)
			took = time.Since(began)
		} else {
			var cpu time.Duration
			cpu, cpuRead, err = b.freshBrowserCheck(ctx, w)
			chromeCPU.Add(int64(cpu))
			took = time.Since(began) - cpuRead
		}
		portalBusy := b.sim.Stats().Busy - before
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			// A failure (a browser that did not start in time on a loaded
			// machine) is counted, not timed.
			r.failed++
			fmt.Fprintf(os.Stderr, "  check failed: %v\n", err)
			return
		}
		r.total = append(r.total, took)
		if parallel == 1 {
			r.overhead = append(r.overhead, took-portalBusy)
		}
	}
	start := time.Now()
	if m.bursts() {
		for done := 0; done < checks; done += parallel {
			time.Sleep(gap) // the spares are opened meanwhile
			var wg sync.WaitGroup
			for w := range min(parallel, checks-done) {
				wg.Go(func() { one(w) })
			}
			wg.Wait()
		}
	} else {
		var wg sync.WaitGroup
		for w := range parallel {
			wg.Go(func() {
				for next.Add(1) <= int64(checks) {
					if m == sharedSpaced {
						// The session loop leaves time between a mission's
						// checks; the teardown and the next spare tab use it.
						time.Sleep(gap)
					}
					one(w)
				}
			})
		}
		wg.Wait()
	}
	r.wall = time.Since(start)
	if sampler != nil {
		r.peak = sampler.stop()
	}
	if shm != nil {
		chromeCPU.Add(int64(browserCPU(shm, spares)))
		_ = shm.Close()
	}
	r.cpu = time.Duration(chromeCPU.Load()) / time.Duration(cpuChecks)
	r.selfCPU = (selfCPU() - selfBefore) / time.Duration(cpuChecks)
	if r.failed == checks {
		return r, errors.New("every check failed")
	}
	return r, nil
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// browserCPU is the CPU time a manager's browser has used since it
// started, read from its process tree just before it is closed (see
// proctree.CPU), once the last checks' logouts and teardowns are done: when no
// more than spares tabs are open. The tree of a browser that was replaced
// (recycled, crashed) is gone: the phases are shorter than
// CHECKER_BROWSER_RECYCLE, and a crash is reported.
func browserCPU(m *browser.Manager, spares int) time.Duration {
	for deadline := time.Now().Add(10 * time.Second); m.Status().ActiveTabs > spares && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	st := m.Status()
	if st.Restarts > 0 {
		fmt.Fprintf(os.Stderr, "  the browser was replaced %d times: its CPU figure misses the earlier ones\n", st.Restarts)
	}
	if st.PID == 0 {
		return 0
	}
	return proctree.CPU(st.PID)
}

func (b *bench) check(ctx context.Context, m *browser.Manager, account int) (portal.Result, error) {
	d, err := portal.New(portal.Config{Profile: b.prof, Browser: m, ArtifactsDir: b.artifacts})
	if err != nil {
		return portal.Result{}, err
	}
	acct := portal.Account{Email: fmt.Sprintf("bench%d@example.com", account), Password: fmt.Sprintf("bench-pw-%d", account)}
	res, err := d.Check(ctx, acct, portal.Target{Mission: "fra", Centre: "London", VisaCategory: "tourism"})
	if err != nil {
		return res, err
	}
	if res.Outcome != portal.Success || len(res.Slots) != b.wantSlots {
		return res, fmt.Errorf("check ended %s/%s: %s", res.Outcome, res.Reason, res.Detail)
	}
	return res, nil
}

// freshBrowserCheck pays for a whole browser: start, check, kill. It opens
// no spare tab: nothing would use it. It returns the browser's CPU and the
// time reading it took (waiting for the logout included), which is not
// the check's: the shared browser's checks do not wait for it either.
func (b *bench) freshBrowserCheck(ctx context.Context, account int) (cpu, reading time.Duration, err error) {
	m := browser.New(browser.Config{ExecPath: b.exec, NoSandbox: noSandbox(), Background: b.prof.BackgroundTabs, NoSpare: true})
	_, err = b.check(ctx, m, account)
	began := time.Now()
	cpu = browserCPU(m, 0)
	reading = time.Since(began)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return cpu, reading, err
}

func report(out io.Writer, rows []row) {
	fmt.Fprintln(out, "| mode | at once | checks (failed) | checks/min | check time median | p90 | checker overhead median | p90 | Chromium CPU per check | bench process CPU per check | peak RSS sum | peak PSS sum |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		ovMed, ovP90 := "n/a", "n/a"
		if len(r.overhead) > 0 {
			ovMed, ovP90 = ms(quantile(r.overhead, 0.5)), ms(quantile(r.overhead, 0.9))
		}
		rate := fmt.Sprintf("%.0f", float64(r.checks-r.failed)/r.wall.Minutes())
		if r.mode.paused() {
			rate = "n/a" // the pauses are not the checker's
		}
		fmt.Fprintf(out, "| %s | %d | %d (%d) | %s | %s | %s | %s | %s | %s | %s | %d MiB | %d MiB |\n",
			r.mode, r.parallel, r.checks, r.failed, rate,
			ms(quantile(r.total, 0.5)), ms(quantile(r.total, 0.9)), ovMed, ovP90, ms(r.cpu), ms(r.selfCPU), r.peak.rss>>20, r.peak.pss>>20)
	}
	fmt.Fprintln(out)
	for i := 0; i+1 < len(rows) && rows[i+1].mode == perCheck; i += 2 {
		s, f := rows[i], rows[i+1]
		line := fmt.Sprintf("%d at once: a new browser per check is %.1fx slower per check", s.parallel,
			float64(quantile(f.total, 0.5))/float64(quantile(s.total, 0.5)))
		if len(s.overhead) > 0 {
			line += fmt.Sprintf(", %.1fx the overhead", float64(quantile(f.overhead, 0.5))/float64(quantile(s.overhead, 0.5)))
		}
		line += fmt.Sprintf(", %.2fx the throughput and %.2fx the peak memory (PSS) of the shared browser",
			(float64(f.checks-f.failed)/f.wall.Minutes())/(float64(s.checks-s.failed)/s.wall.Minutes()), float64(f.peak.pss)/float64(s.peak.pss))
		fmt.Fprintln(out, line)
	}
	var burst, burstOne *row
	for i := range rows {
		switch rows[i].mode {
		case sharedBurst:
			burst = &rows[i]
		case sharedBurstOneSpare:
			burstOne = &rows[i]
		}
	}
	if burst != nil && burstOne != nil && len(burst.total) > 0 && len(burstOne.total) > 0 {
		fmt.Fprintf(out, "bursts of %d: a spare per check at once gives %s median (p90 %s) against %s (p90 %s) with one spare: %.2fx, for %.2fx the peak memory (PSS)\n",
			burst.parallel, ms(quantile(burst.total, 0.5)), ms(quantile(burst.total, 0.9)),
			ms(quantile(burstOne.total, 0.5)), ms(quantile(burstOne.total, 0.9)),
			float64(quantile(burst.total, 0.5))/float64(quantile(burstOne.total, 0.5)), float64(burst.peak.pss)/float64(burstOne.peak.pss))
	}
	// The goal, for the shared browser with a fresh context per check: one
	// verdict for checks back to back, one for checks spaced as the
	// session loop spaces them. Back to back, each check also carries the
	// previous one's logout and teardown and the next spare tab: on a
	// machine of few cores the check time cannot go below the CPU a check
	// takes divided by the cores, which the line says.
	for _, r := range rows {
		if (r.mode != shared && r.mode != sharedSpaced) || len(r.overhead) == 0 {
			continue
		}
		med := quantile(r.overhead, 0.5)
		verdict := "meets"
		if med >= 150*time.Millisecond {
			verdict = "MISSES"
		}
		line := fmt.Sprintf("goal: overhead median under 150 ms, %s: %s %s", r.mode, verdict, ms(med))
		if r.mode == shared {
			line += fmt.Sprintf(" (floor on %d cores: (%s Chromium + %s this process) CPU per check / %d = %s)",
				runtime.NumCPU(), ms(r.cpu), ms(r.selfCPU), runtime.NumCPU(), ms((r.cpu+r.selfCPU)/time.Duration(runtime.NumCPU())))
		}
		fmt.Fprintln(out, line)
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// memory is what this process and every process under it use: RSS
// summed (what per-process tools add up; it counts the pages Chromium's
// processes share once per process) and PSS summed (shared pages split
// between their users: the better estimate of the machine's memory).
type memory struct{ rss, pss int64 }

// sampler records the peak memory of this process and its descendants.
type sampler struct {
	mu   sync.Mutex
	peak memory
	done chan struct{}
	wg   sync.WaitGroup
}

func startSampler() *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m := treeMemory(os.Getpid())
			s.mu.Lock()
			s.peak.rss = max(s.peak.rss, m.rss)
			s.peak.pss = max(s.peak.pss, m.pss)
			s.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *sampler) stop() memory {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

func treeMemory(pid int) memory {
	var total memory
	for _, p := range proctree.Tree(pid) {
		total.rss += kbField(fmt.Sprintf("/proc/%d/status", p.PID), "VmRSS:")
		total.pss += kbField(fmt.Sprintf("/proc/%d/smaps_rollup", p.PID), "Pss:")
	}
	return total
}

// kbField reads a "Name:   123 kB" line of a /proc file, in bytes.
func kbField(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// machine describes where the figures come from.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s, %s/%s, load average at the start: %s",
		runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH, loadavg())
}

func version(exe string) string {
	outb, err := exec.Command(exe, "--version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(outb))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// noSandbox is CHROME_NO_SANDBOX, as the checker reads it.
func noSandbox() bool {
	v, _ := strconv.ParseBool(os.Getenv("CHROME_NO_SANDBOX"))
	return v
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
