// Package browser keeps one long-lived headless Chromium for the checker and
// hands out tabs, each in a fresh browser context (an incognito-like
// profile with its own cookies and storage), so accounts checked one after
// the other or side by side never share a portal session.
//
// Starting Chromium costs about half a second and a fresh context a fraction
// of that, which is why the browser is shared. It is replaced when it dies
// (crash, OOM kill) and after a number of checks (CHECKER_BROWSER_RECYCLE),
// so a slow leak in a long-lived renderer cannot grow without bound. A
// browser being replaced finishes the checks it has before it stops.
package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// DefaultExecPath is where Debian's chromium package puts the browser.
const DefaultExecPath = "/usr/bin/chromium"

// DefaultStartTimeout is Config.StartTimeout's default: Chromium starts in
// about half a second alone, in several seconds on a busy node.
const DefaultStartTimeout = 30 * time.Second

// ErrClosed is returned by NewTab after Close.
var ErrClosed = errors.New("browser manager closed")

// ErrRootWithoutNoSandbox is returned when the process runs as root and
// Config.NoSandbox is not set: Chromium refuses to start sandboxed as root,
// and running it unsandboxed must be asked for.
var ErrRootWithoutNoSandbox = errors.New("the checker runs as root, where Chromium cannot use its sandbox: " +
	"run it as a non-root user (the image's uid 10001), or, for root-run local development only, set CHROME_NO_SANDBOX=true")

// CheckSandbox says whether Chromium can start with the sandbox setting
// noSandbox in this process: as root only with noSandbox.
func CheckSandbox(noSandbox bool) error { return checkSandbox(os.Geteuid(), noSandbox) }

func checkSandbox(euid int, noSandbox bool) error {
	if euid == 0 && !noSandbox {
		return ErrRootWithoutNoSandbox
	}
	return nil
}

// Config configures a Manager. Zero fields take the defaults.
type Config struct {
	// ExecPath is the Chromium binary (CHROME_PATH).
	ExecPath string
	// RecycleAfter is how many tabs one browser serves before it is
	// replaced (CHECKER_BROWSER_RECYCLE, default 100).
	RecycleAfter int
	// StartTimeout bounds starting the browser and opening a tab
	// (CHECKER_BROWSER_START_TIMEOUT, default DefaultStartTimeout). A
	// start cut by it is thrown away and begun again from nothing, so on
	// a node too busy to start Chromium within it the browser never
	// starts.
	StartTimeout time.Duration
	// NoSandbox starts Chromium with --no-sandbox (CHROME_NO_SANDBOX), for
	// root-run local development only: Chromium's sandbox (user and PID
	// namespaces and seccomp-bpf around every renderer) is what stands
	// between a page that exploits the renderer and this process's
	// secrets. Unset, a Manager in a root process refuses to start
	// (ErrRootWithoutNoSandbox).
	NoSandbox bool
	// Flags are extra Chromium command-line flags (name without "--",
	// value true, false or a string), after the defaults.
	Flags map[string]any
	// Spares is how many tabs are kept opened ahead of need (see NewTab),
	// default 1; the Checker keeps one per mission it checks at once, so
	// that a session's first checks all start on a ready tab.
	Spares int
	// NoSpare turns off opening tabs ahead of need.
	NoSpare bool
	// Background opens every tab as a background tab, in a minimized
	// window: its page knows it is hidden (document.visibilityState), gets
	// no animation frames, and Chromium renders it only for a screenshot.
	// That is about a fifth of a check's CPU; a portal whose pages wait for
	// animation frames, or stop working while hidden, needs it off (the
	// profile's background_tabs).
	Background bool
	// Logger gets starts, stops and crashes (default: discard).
	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	if c.ExecPath == "" {
		c.ExecPath = DefaultExecPath
	}
	if c.RecycleAfter <= 0 {
		c.RecycleAfter = 100
	}
	if c.Spares <= 0 {
		c.Spares = 1
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Status is the browser's state for operators (CheckerService.GetStatus).
type Status struct {
	// Running is true while a browser process is up.
	Running bool
	// StartedAt is when the current browser started.
	StartedAt time.Time
	// PID is the current browser's main process.
	PID int
	// ChecksDone counts the tabs the current browser has finished.
	ChecksDone int64
	// ActiveTabs is the number of tabs open now, the spares included.
	ActiveTabs int
	// Restarts counts every browser started after the first, recycled or
	// replacing a dead one.
	Restarts int64
	// Crashes counts the browsers that died without being asked to.
	Crashes int64
	// LastError is the last start failure or crash, empty if none.
	LastError string
}

// Manager owns the shared browser. It is safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	// startSem (a lock: one token) serialises replacing the browser, so
	// that parallel checks arriving at a dead browser start one new
	// browser, not several. It is held while Chromium starts, up to
	// StartTimeout; mu is not, so Status stays responsive. It is a channel,
	// not a mutex, so that a caller waiting for it gives up when its
	// context ends (lockStart): a check cut by the drain does not wait out
	// a spare's start.
	startSem chan struct{}
	// ctx ends when Close begins; it bounds the starts and openings that
	// no caller waits for (the spares'), and every start, so that Close
	// does not wait out a start either.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	cur     *instance
	all     map[*instance]struct{} // current and retiring browsers
	spares  []*spareTab            // opened or opening ahead, at most cfg.Spares
	closed  bool
	started int64 // browsers ever started
	crashes int64
	lastErr string
	// background counts tab teardowns and spare openings, so Close can
	// wait for them.
	background sync.WaitGroup
}

// instance is one Chromium process.
type instance struct {
	ctx         context.Context // the browser's root chromedp context
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	startedAt   time.Time
	pid         int

	// Guarded by Manager.mu.
	opened  int   // tabs opened, the spares included
	handed  int   // tabs handed out to checks, for recycling
	active  int   // tabs not yet torn down
	done    int64 // tabs torn down
	retired bool  // takes no new tabs; stops when active reaches 0
	dead    bool  // the process is gone or unresponsive
	stopped bool  // stop has been called
}

// New returns a Manager; the browser starts on the first NewTab or Start.
func New(cfg Config) *Manager {
	cfg.fillDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, all: map[*instance]struct{}{}, startSem: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

// lockStart takes startSem, or returns ctx's error if ctx ends first.
func (m *Manager) lockStart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case m.startSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) unlockStart() { <-m.startSem }

// Start starts the browser now, so that a server can report itself not
// ready while Chromium cannot start instead of failing its first check.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.lockStart(ctx); err != nil {
		return fmt.Errorf("start browser: %w", err)
	}
	_, err := m.usableLocked(ctx, false, false)
	m.unlockStart()
	if err == nil {
		m.refillSpare()
	}
	return err
}

// Tab is one page in its own fresh browser context. Run chromedp actions on
// Context(); Close it when done.
type Tab struct {
	ctx       context.Context
	cancel    context.CancelFunc
	stopAfter func() bool // unbinds the tab from the caller's context
	inst      *instance
	m         *Manager
	once      sync.Once
}

// Context is the chromedp context of the tab. Derive step timeouts from it;
// it ends when the tab is closed, the caller's context of NewTab ends or
// the browser dies.
func (t *Tab) Context() context.Context { return t.ctx }

// Close closes the tab and disposes of its browser context (cookies,
// storage) in the background, so the caller does not wait for Chromium's
// teardown. checkErr is the error the check ended with, if any: an error
// that might mean the browser hangs makes the manager probe it.
func (t *Tab) Close(checkErr error) { t.CloseAfter(checkErr, nil) }

// CloseAfter is Close, running last on the tab first, in the background:
// the portal driver logs out there, after it has returned its result.
// Close of the Manager waits for it.
func (t *Tab) CloseAfter(checkErr error, last func(ctx context.Context)) {
	t.once.Do(func() {
		t.stopAfter()
		teardown := func() {
			if last != nil && t.ctx.Err() == nil {
				last(t.ctx)
			}
			if checkErr != nil && !errors.Is(checkErr, context.Canceled) {
				t.m.probe(t.inst)
			}
			t.cancel() // closes the target and disposes of the browser context
			t.m.release(t.inst)
			t.m.refillSpare()
		}
		t.m.mu.Lock()
		closed := t.m.closed
		if !closed {
			t.m.background.Add(1)
		}
		t.m.mu.Unlock()
		if closed {
			// The browser is gone or going: nothing to wait for, and
			// Close may have finished waiting already.
			teardown()
			return
		}
		go func() {
			defer t.m.background.Done()
			teardown()
		}()
	})
}

// NewTab opens a tab in a fresh browser context on the shared browser,
// starting or replacing the browser first when needed. The tab ends when
// ctx does.
//
// Opening a browser context and a tab takes Chromium a few hundred
// milliseconds on a busy machine, so the manager keeps Config.Spares
// opened ahead (unless Config.NoSpare): NewTab hands one out, a ready one
// first. The next is opened when a tab has been torn down (and after
// Start), not when a spare is taken: on a small machine, opening it then
// would take the CPU from the check that just began. A spare is as fresh
// as any: no site has been opened in it and its cookies and storage are
// empty; only its renderer has been warmed up (see warmUpJS).
func (m *Manager) NewTab(ctx context.Context) (*Tab, error) {
	if tab := m.takeSpare(ctx); tab != nil {
		return tab, nil
	}
	// A browser that died since the last check may not be noticed yet:
	// then the tab fails to open, and one more try gets a new browser.
	for try := 1; ; try++ {
		inst, err := m.acquire(ctx, true)
		if err != nil {
			return nil, err
		}
		tab, err := m.openTab(ctx, inst)
		if err == nil {
			return tab, nil
		}
		if try == 2 || ctx.Err() != nil || !m.gone(inst) {
			return nil, fmt.Errorf("open tab: %w", err)
		}
		m.log.Warn("browser gone while opening a tab; starting a new one", "pid", inst.pid, "err", err)
	}
}

// spareTab is a tab being opened ahead of need.
type spareTab struct {
	ready chan struct{} // closed when tab or err is set
	tab   *Tab
	err   error
}

// takeSpare returns a spare tab bound to ctx, or nil when there is none
// that is sure to work: its browser is current, alive and answers. A
// ready spare goes first; else it waits for one being opened.
func (m *Manager) takeSpare(ctx context.Context) *Tab {
	// A spare found unusable (its browser was recycled or died) is closed,
	// and the next one tried, a bounded number of times.
	for range m.cfg.Spares {
		sp := m.popSpare()
		if sp == nil {
			return nil
		}
		select {
		case <-sp.ready:
		case <-ctx.Done():
			go func() { <-sp.ready; closeSpare(sp) }()
			return nil
		}
		if tab := m.useSpare(ctx, sp); tab != nil {
			return tab
		}
	}
	return nil
}

// popSpare removes a spare from the pool, a ready one if there is one.
func (m *Manager) popSpare() *spareTab {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.spares) == 0 {
		return nil
	}
	i := slices.IndexFunc(m.spares, func(sp *spareTab) bool {
		select {
		case <-sp.ready:
			return true
		default:
			return false
		}
	})
	i = max(i, 0)
	sp := m.spares[i]
	m.spares = slices.Delete(m.spares, i, i+1)
	return sp
}

// useSpare binds a spare that finished opening to ctx, or closes it and
// returns nil when it is not sure to work.
func (m *Manager) useSpare(ctx context.Context, sp *spareTab) *Tab {
	if sp.err != nil {
		return nil
	}
	tab := sp.tab
	m.mu.Lock()
	inst := tab.inst
	usable := inst == m.cur && !inst.dead && !inst.retired && inst.handed < m.cfg.RecycleAfter
	if usable {
		inst.handed++ // a spare counts toward recycling once handed out
	}
	m.mu.Unlock()
	if usable {
		// One round trip tells a live tab from one whose browser was
		// killed a moment ago and is not noticed yet.
		pctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
		_, err := chromedp.Run(pctx, chromedp.Evaluate[int](`1`))
		cancel()
		if err != nil {
			tab.Close(err)
			return nil
		}
		tab.stopAfter() // opened bound to m.ctx (openSpareLocked)
		tab.stopAfter = context.AfterFunc(ctx, tab.cancel)
		return tab
	}
	tab.Close(nil)
	return nil
}

// refillSpare opens spare tabs in the background until there are
// Config.Spares, opened or opening.
func (m *Manager) refillSpare() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.NoSpare {
		return
	}
	for !m.closed && len(m.spares) < m.cfg.Spares {
		m.openSpareLocked()
	}
}

// openSpareLocked starts opening one spare tab. The caller holds mu.
func (m *Manager) openSpareLocked() {
	sp := &spareTab{ready: make(chan struct{})}
	m.spares = append(m.spares, sp)
	m.background.Add(1)
	go func() {
		defer m.background.Done()
		defer close(sp.ready)
		inst, err := m.acquire(m.ctx, false)
		if err != nil {
			sp.err = err
			return
		}
		sp.tab, sp.err = m.openTab(m.ctx, inst)
		if sp.err == nil {
			sp.tab.warmUp()
		}
	}()
}

// warmUpJS is what a spare tab's blank page runs before the tab is handed
// out. Chromium gives a new tab's renderer process to the first site the
// tab opens, so what the renderer loads now, the portal's pages find
// loaded: the first date or number formatting in a renderer loads ICU's
// locale data, which costs 20-40 ms of CPU on a small machine, and slot
// pages format dates. Paid here, between checks, it is not paid in the
// middle of one. Nothing of the page itself carries over: the portal's
// first page is a new document.
const warmUpJS = `(function () {
  new Intl.DateTimeFormat(undefined, {dateStyle: "full", timeStyle: "long", timeZone: "UTC"}).format(0);
  new Intl.NumberFormat().format(1234.5);
})()`

// warmUp runs warmUpJS in the tab. A failure is not the tab's: it is
// checked for life when it is taken (takeSpare).
func (t *Tab) warmUp() {
	ctx, cancel := context.WithTimeout(t.ctx, t.m.cfg.StartTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](warmUpJS)); err != nil {
		t.m.log.Debug("warming up the spare tab failed", "err", err)
	}
}

func closeSpare(sp *spareTab) {
	if sp.err == nil && sp.tab != nil {
		sp.tab.Close(nil)
	}
}

// openTab creates a browser context that refuses downloads and a tab in it,
// in a window of its own (minimized for Config.Background), and attaches to
// the tab. Closing the
// tab disposes of the context, with its cookies and storage.
func (m *Manager) openTab(ctx context.Context, inst *instance) (*Tab, error) {
	b := chromedp.FromContext(inst.ctx).Browser
	// One start timeout bounds creating and attaching. The creations are
	// bounded by it and the browser, not by ctx: a context that Chromium
	// creates while ctx ends would be created all the same, and nobody
	// would know its ID to dispose of it.
	deadline := time.Now().Add(m.cfg.StartTimeout)
	cctx, ccancel := context.WithDeadline(inst.ctx, deadline)
	defer ccancel()
	// Chromium disposes of the context itself should this process die.
	dispose := true
	bc, err := cdp.Call(cctx, b, target.CreateBrowserContext, target.CreateBrowserContextParams{DisposeOnDetach: &dispose})
	if err != nil {
		m.release(inst) // acquire counted the tab
		return nil, fmt.Errorf("create a browser context: %w", err)
	}
	disposeContext := func() {
		dctx, dcancel := context.WithTimeout(inst.ctx, 5*time.Second)
		defer dcancel()
		_, _ = cdp.Call(dctx, b, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: bc.BrowserContextID})
	}
	// A portal page (or a page that took it over) must not write files
	// into the checker's pod: every download is refused.
	_, err = cdp.Call(cctx, b, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: bc.BrowserContextID,
	})
	if err != nil {
		disposeContext()
		m.release(inst)
		return nil, fmt.Errorf("deny downloads: %w", err)
	}
	// A new browser context has no window; the headless shell has none
	// at all and takes the window state as the page's.
	state, newWindow := target.WindowStateNormal, true
	if m.cfg.Background {
		state = target.WindowStateMinimized
	}
	created, err := cdp.Call(cctx, b, target.CreateTarget, target.CreateTargetParams{
		URL: "about:blank", BrowserContextID: bc.BrowserContextID, NewWindow: &newWindow, WindowState: state,
	})
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // the tab is closed with its context, below
	}
	if err != nil {
		disposeContext()
		m.release(inst)
		return nil, fmt.Errorf("create a tab: %w", err)
	}

	tctx, cancelWait := chromedp.NewContext(inst.ctx, chromedp.WithTargetID(created.TargetID))
	// chromedp's options cannot name both the tab and its browser context;
	// a context derived from the tab's opens its tabs in the same browser
	// context only if the tab's context knows it.
	chromedp.FromContext(tctx).BrowserContextID = bc.BrowserContextID
	// Called by ctx, the timer and Close: closes the tab, then disposes of
	// its context.
	tcancel := sync.OnceFunc(func() {
		cancelWait()
		disposeContext()
	})

	stopAfter := context.AfterFunc(ctx, tcancel)
	// The first Run attaches to the tab and binds it to the context it
	// gets, so it must be tctx itself, bounded by a timer rather than a
	// deadline.
	timer := time.AfterFunc(time.Until(deadline), tcancel)
	err = chromedp.Do(tctx)
	if err == nil {
		err = chromedp.Do(tctx, quietTab)
	}
	timedOut := !timer.Stop()
	tab := &Tab{ctx: tctx, cancel: tcancel, stopAfter: stopAfter, inst: inst, m: m}
	if err != nil {
		if timedOut {
			err = fmt.Errorf("timed out after %v: %w", m.cfg.StartTimeout, err)
		}
		tab.Close(nil) // gone is checked by the caller, not by Close
		return nil, err
	}
	return tab, nil
}

// Reveal shows the page of the tab whose context ctx is, for a screenshot:
// a background tab's window is minimized (see Config.Background), and the
// full chromium renders nothing for it, so a screenshot would wait
// forever. The page is then visible, as a tab the user switched to.
func Reveal(ctx context.Context) error {
	c := chromedp.FromContext(ctx)
	if c == nil || c.Target == nil || c.Browser == nil {
		return errors.New("reveal: not a tab's context")
	}
	w, err := cdp.Call(ctx, c.Browser, cdpbrowser.GetWindowForTarget, cdpbrowser.GetWindowForTargetParams{TargetID: c.Target.TargetID})
	if err != nil {
		return fmt.Errorf("reveal: find the tab's window: %w", err)
	}
	_, err = cdp.Call(ctx, c.Browser, cdpbrowser.SetWindowBounds, cdpbrowser.SetWindowBoundsParams{
		WindowID: w.WindowID, Bounds: &cdpbrowser.Bounds{WindowState: cdpbrowser.WindowStateNormal},
	})
	if err != nil {
		return fmt.Errorf("reveal: restore the tab's window: %w", err)
	}
	return nil
}

// quietTab turns off the DevTools domains chromedp enables on every tab
// that a tab of this package does not need: the portal driver reads pages
// with Runtime.evaluate and follows navigations with Page events. Left on,
// they make Chromium report every request with its headers and cookies,
// every DOM change and every stylesheet to us, for about 5% of a check's
// time. chromedp's node queries (which need DOM) do not work on such a
// tab; Evaluate, Page and Input do.
var quietTab = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, domain := range []string{"Network", "DOM", "CSS", "Log", "Inspector"} {
		if err := t.Call(ctx, domain+".disable", nil, nil); err != nil {
			return fmt.Errorf("disable %s: %w", domain, err)
		}
	}
	return nil
})

// gone reports whether the browser is dead, probing it if nobody knows yet.
func (m *Manager) gone(inst *instance) bool {
	m.probe(inst)
	m.mu.Lock()
	defer m.mu.Unlock()
	return inst.dead || inst.ctx.Err() != nil
}

// acquire returns a browser that takes a new tab, counting the tab; a tab
// handed out to a check (handOut), not a spare, counts toward recycling.
// A spare counts once it is handed out (useSpare): counted when opened,
// spares recycled a browser before any check used it whenever there were
// more of them than RecycleAfter.
func (m *Manager) acquire(ctx context.Context, handOut bool) (*instance, error) {
	if err := m.lockStart(ctx); err != nil {
		return nil, fmt.Errorf("wait for the browser's start: %w", err)
	}
	defer m.unlockStart()
	return m.usableLocked(ctx, true, handOut)
}

// usableLocked returns the current browser, replacing it first if it is
// dead or, for a new tab (takeTab), due for recycling. The caller holds
// startSem.
func (m *Manager) usableLocked(ctx context.Context, takeTab, handOut bool) (*instance, error) {
	count := func(inst *instance) {
		if takeTab {
			inst.opened++
			inst.active++
		}
		if handOut {
			inst.handed++
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if inst := m.cur; inst != nil {
		switch {
		case !inst.dead && (!takeTab || inst.handed < m.cfg.RecycleAfter):
			count(inst)
			m.mu.Unlock()
			return inst, nil
		case !inst.dead:
			m.log.Info("recycling browser", "pid", inst.pid, "tabs", inst.handed)
			m.retireLocked(inst)
		}
		m.cur = nil
	}
	m.mu.Unlock()

	inst, err := m.start(ctx)

	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lastErr = err.Error()
		return nil, err
	}
	if m.closed {
		// Stopped before startSem is given back, so that Close, which
		// waits for startSem, leaves no Chromium behind.
		m.mu.Unlock()
		m.stop(inst)
		m.mu.Lock()
		return nil, ErrClosed
	}
	m.started++
	m.cur = inst
	m.all[inst] = struct{}{}
	count(inst)
	go m.watch(inst)
	return inst, nil
}

func (m *Manager) start(ctx context.Context) (*instance, error) {
	if err := CheckSandbox(m.cfg.NoSandbox); err != nil {
		return nil, fmt.Errorf("start browser: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(m.cfg.ExecPath),
		chromedp.Flag("no-sandbox", m.cfg.NoSandbox),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		// chromedp's own list, plus:
		//  - the omnibox popup that the full chromium builds (as a WebUI
		//    page in a renderer of its own) for every window, hence for
		//    every browser context: it doubled the CPU of opening a tab.
		//    The headless shell has no omnibox.
		//  - RenderDocument, which gives every cross-document navigation
		//    a new frame (in the browser and in the renderer) instead of
		//    reusing the tab's: a check navigates three times.
		// A name a Chromium does not know is ignored.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebUIOmniboxPopup,WebUIOmniboxAimPopup,RenderDocument"),
	)
	for name, v := range m.cfg.Flags {
		opts = append(opts, chromedp.Flag(name, v))
	}
	// The allocator and browser contexts outlive ctx: the browser is
	// shared by later checks. ctx only bounds the start.
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelWait := chromedp.NewContext(actx, chromedp.WithLogf(m.cdpLogf), chromedp.WithErrorf(m.cdpErrorf))
	// chromedp's cancel of a browser context waits for the browser to be
	// allocated or released, and a second call after a failed start
	// waits forever; the timer, ctx and the error path below may each
	// call it, so only the first does.
	bcancel := sync.OnceFunc(cancelWait)
	stopAfter := context.AfterFunc(ctx, bcancel)
	stopAtClose := context.AfterFunc(m.ctx, bcancel)
	timer := time.AfterFunc(m.cfg.StartTimeout, bcancel)
	begin := time.Now()
	err := chromedp.Do(bctx) // starts Chromium and attaches its first tab
	timedOut := !timer.Stop()
	stopAfter()
	stopAtClose()
	if err == nil && bctx.Err() != nil {
		err = bctx.Err()
	}
	if err != nil {
		bcancel()
		acancel()
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("start browser: %w", ctx.Err())
		case m.ctx.Err() != nil:
			return nil, fmt.Errorf("start browser: %w", ErrClosed)
		case timedOut:
			return nil, fmt.Errorf("start browser %s: not ready within %v: %w", m.cfg.ExecPath, m.cfg.StartTimeout, err)
		}
		return nil, fmt.Errorf("start browser %s: %w", m.cfg.ExecPath, err)
	}
	inst := &instance{ctx: bctx, cancel: bcancel, allocCancel: acancel, startedAt: time.Now()}
	if p := chromedp.FromContext(bctx).Browser.Process(); p != nil {
		inst.pid = p.Pid
	}
	m.log.Info("browser started", "pid", inst.pid, "took", time.Since(begin).Round(time.Millisecond), "sandbox", !m.cfg.NoSandbox)
	if m.cfg.NoSandbox {
		m.log.Warn("Chromium runs without its sandbox (CHROME_NO_SANDBOX=true): for root-run local development only")
	}
	return inst, nil
}

// watch notices a browser that dies on its own.
func (m *Manager) watch(inst *instance) {
	<-inst.ctx.Done()
	if m.markDead(inst, "exited unexpectedly") {
		m.log.Warn("browser died; the next check starts a new one", "pid", inst.pid)
	}
	m.stop(inst) // reap the process and remove its profile directory
}

// probe asks the browser for its version; a browser that cannot answer
// within a few seconds is considered dead and is killed, so the next check
// gets a new one instead of timing out too.
func (m *Manager) probe(inst *instance) {
	if inst.ctx.Err() != nil {
		m.markDead(inst, "exited unexpectedly")
		return
	}
	ctx, cancel := context.WithTimeout(inst.ctx, 5*time.Second)
	defer cancel()
	_, err := cdp.Call(ctx, chromedp.FromContext(inst.ctx).Browser, cdpbrowser.GetVersion, cdp.Empty{})
	switch {
	case inst.ctx.Err() != nil:
		m.markDead(inst, "exited unexpectedly")
	case err != nil:
		if m.markDead(inst, fmt.Sprintf("stopped answering: %v", err)) {
			m.log.Warn("browser unresponsive; killing it", "pid", inst.pid, "err", err)
			go m.stop(inst)
		}
	}
}

// markDead records a browser that died or hangs, once; it reports whether
// this call was the one that noticed.
func (m *Manager) markDead(inst *instance, why string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inst.dead || inst.stopped {
		return false
	}
	inst.dead = true
	m.crashes++
	m.lastErr = fmt.Sprintf("browser pid %d %s at %s", inst.pid, why, time.Now().UTC().Format(time.RFC3339))
	return true
}

// release accounts for a torn-down tab and stops a retired browser whose
// last tab it was.
func (m *Manager) release(inst *instance) {
	m.mu.Lock()
	inst.active--
	inst.done++
	last := inst.retired && inst.active == 0
	m.mu.Unlock()
	if last {
		m.stop(inst)
	}
}

func (m *Manager) retireLocked(inst *instance) {
	inst.retired = true
	if inst.active == 0 {
		go m.stop(inst)
	}
}

// stop kills the browser process and waits until it is reaped and its
// profile directory is removed (chromedp also kills leftover children).
func (m *Manager) stop(inst *instance) {
	m.mu.Lock()
	if inst.stopped {
		m.mu.Unlock()
		return
	}
	inst.stopped = true
	m.mu.Unlock()
	inst.cancel()
	inst.allocCancel()
	m.mu.Lock()
	delete(m.all, inst)
	m.mu.Unlock()
	m.log.Info("browser stopped", "pid", inst.pid)
}

// Close stops every browser, ending the tabs still open, and waits until
// no Chromium process of this manager is left.
func (m *Manager) Close() error {
	// No start begins after closed is set (usableLocked), and one under
	// way ends at m.cancel: startSem is then free within moments.
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.startSem <- struct{}{}
	m.mu.Lock()
	m.closed = true
	insts := make([]*instance, 0, len(m.all))
	for inst := range m.all {
		insts = append(insts, inst)
	}
	m.cur = nil
	spares := m.spares
	m.spares = nil
	m.mu.Unlock()
	m.unlockStart()

	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() { m.stop(inst) })
	}
	wg.Wait()
	for _, sp := range spares {
		<-sp.ready
		closeSpare(sp)
	}
	m.background.Wait()
	return nil
}

// Status reports the current browser.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Crashes: m.crashes, LastError: m.lastErr}
	if m.started > 1 {
		st.Restarts = m.started - 1
	}
	for inst := range m.all {
		st.ActiveTabs += inst.active
	}
	if inst := m.cur; inst != nil && !inst.dead {
		st.Running = true
		st.StartedAt = inst.startedAt
		st.PID = inst.pid
		st.ChecksDone = inst.done
	}
	return st
}

func (m *Manager) cdpLogf(format string, args ...any) {
	m.log.Debug(fmt.Sprintf(format, args...), "component", "chromedp")
}

func (m *Manager) cdpErrorf(format string, args ...any) {
	m.log.Debug(fmt.Sprintf(format, args...), "component", "chromedp", "level", "error")
}
