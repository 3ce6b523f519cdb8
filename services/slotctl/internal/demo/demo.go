// Package demo is `make run`: it starts portalsim, AccountPool, Requests,
// the Notifier and the Checker on this machine (Postgres is already up:
// with-postgres.sh), loads demo data, subscribes the applicants (email, to
// the demo's mail sink) and the operator (a webhook, to the demo's
// receiver), adds a free slot to the portal a minute in, and shows the
// Checker's sessions as they happen until the email announcing that slot
// arrives. Then it
// keeps everything up for poking with grpcurl and slotctl until interrupted,
// and stops what it started.
//
// The session view is read from the Checker's JSON log lines (its stderr,
// piped through the demo into .data/logs/checker.log), AccountPool's
// GetPoolStatus after each session, Requests' WatchEvents (when the
// SLOT_FOUND event happened), and what the mail sink and the webhook
// receiver get.
package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// Addrs are where the services listen.
type Addrs struct {
	Portal                                  string // portalsim
	Pool, PoolMetrics                       string // AccountPool
	Requests, RequestsMetrics, RequestsHTTP string // Requests, its JSON gateway
	Checker, CheckerMetrics                 string
	Notifier, NotifierMetrics               string
	// Mail is the demo's SMTP sink, Webhook its webhook receiver.
	Mail, Webhook string
}

// DefaultAddrs are the services' default ports, on loopback.
func DefaultAddrs() Addrs {
	return Addrs{
		Portal:          "127.0.0.1:8090",
		Pool:            "127.0.0.1:50051",
		PoolMetrics:     "127.0.0.1:9091",
		Requests:        "127.0.0.1:50052",
		RequestsMetrics: "127.0.0.1:9092",
		RequestsHTTP:    "127.0.0.1:8082",
		Checker:         "127.0.0.1:50053",
		CheckerMetrics:  "127.0.0.1:9093",
		Notifier:        "127.0.0.1:50054",
		NotifierMetrics: "127.0.0.1:9094",
		Mail:            "127.0.0.1:2525",
		Webhook:         "127.0.0.1:8094",
	}
}

func (a Addrs) all() []string {
	return []string{a.Portal, a.Pool, a.PoolMetrics, a.Requests, a.RequestsMetrics, a.RequestsHTTP, a.Checker, a.CheckerMetrics,
		a.Notifier, a.NotifierMetrics, a.Mail, a.Webhook}
}

// Config is how the demo runs.
type Config struct {
	// Root is the checkout: binaries in Root/bin, the demo's files in
	// Root/.data.
	Root string
	// DatabaseURL is a Postgres server on which the demo may create (and
	// drop) its own database, Database.
	DatabaseURL string
	// Database is the demo's database, made afresh on each run (default
	// slotwatch_demo).
	Database string
	// Addrs are the services' addresses (default DefaultAddrs).
	Addrs Addrs
	// SlotAfter is when the demo's slot appears, after the Checker starts.
	SlotAfter time.Duration
	// Getenv reads overrides of the demo's timings (POOL_COOLDOWN...) and
	// CHROME_PATH.
	Getenv func(string) string
	// Out is the terminal.
	Out io.Writer
	// Force, once closed, makes stopping skip the grace periods (a second
	// Ctrl-C).
	Force <-chan struct{}
}

// timing is a setting the demo shortens so that something happens within
// a minute; the demo announces each.
type timing struct{ env, demo, prod string }

var timings = []timing{
	{"POOL_COOLDOWN", "20s", "10m"},
	{"REQUESTS_CHECK_INTERVAL", "0s", "2m"},
	{"CHECKER_SESSION_INTERVAL", "3s", "10s"},
}

// checkerDrain is the demo Checkers' CHECKER_DRAIN_TIMEOUT: at a stop,
// their checks may run that long before they are cut and their accounts
// released. The default (60s) is longer than the demo waits.
const checkerDrain = 20 * time.Second

// How long each service may take to stop after SIGTERM before it is
// killed: the Checker finishes its checks (checkerDrain), then reports
// and releases them; killed before that, its leases would expire and
// count as failures of their accounts.
func grace(name string) time.Duration {
	if name == "checker" {
		return checkerDrain + 10*time.Second
	}
	return 10 * time.Second
}

// Run runs the demo until ctx ends (Ctrl-C), then stops what it started.
// It returns an error when something fails to start or a service dies.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Database == "" {
		cfg.Database = "slotwatch_demo"
	}
	if cfg.Addrs == (Addrs{}) {
		cfg.Addrs = DefaultAddrs()
	}
	a := cfg.Addrs
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the event watcher
	out := cfg.Out
	bin := filepath.Join(cfg.Root, "bin")
	if err := binaries(bin, "portalsim", "accountpool", "requests", "notifier", "checker"); err != nil {
		return err
	}
	f, err := prepareFiles(cfg.Root)
	if err != nil {
		return err
	}
	if err := portsFree(a.all()...); err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, cfg.DatabaseURL, cfg.Database)
	if err != nil {
		return err
	}
	rel := func(p string) string {
		if r, err := filepath.Rel(cfg.Root, p); err == nil {
			return r
		}
		return p
	}
	env := map[string]string{}
	for _, t := range timings {
		env[t.env] = t.demo
		if v := cfg.Getenv(t.env); v != "" {
			env[t.env] = v
		}
	}

	fmt.Fprintf(out, "slotwatch demo: portalsim, AccountPool, Requests, the Notifier and the Checker on this machine\n")
	fmt.Fprintf(out, "  database     %s, made afresh on the DATABASE_URL server\n", cfg.Database)
	fmt.Fprintf(out, "  auth         token digests in %s; the admin token in %s\n", rel(f.tokens), rel(f.admin))
	var ts []string
	for _, t := range timings {
		s := t.env + "=" + env[t.env]
		if t.prod != "" {
			s += " [" + t.prod + "]"
		}
		ts = append(ts, s)
	}
	fmt.Fprintf(out, "Demo timings, short on purpose (production defaults in brackets):\n  %s\n", strings.Join(ts, "  "))

	// The Notifier's receivers: the mail sink (as the applicants'
	// mailboxes) and the operator's webhook receiver. They close after the
	// services have stopped.
	if err := clearDir(f.mail); err != nil {
		return err
	}
	sink, err := StartMailSink(a.Mail)
	if err != nil {
		return err
	}
	defer sink.Close()
	hookSecret, err := randomSecret()
	if err != nil {
		return err
	}
	hooks, err := StartHookReceiver(a.Webhook, []byte(hookSecret))
	if err != nil {
		return err
	}
	defer hooks.Close()
	fmt.Fprintf(out, "  email        to the demo's SMTP sink on %s; each message saved in %s\n", a.Mail, rel(f.mail))
	fmt.Fprintf(out, "  webhook      the operator's, to %s (signature checked)\n", hooks.URL())

	sup := newSupervisor(f.logs)
	// quit tells the Checker's log reader that nobody renders any more:
	// it must keep draining the pipe, or the Checker blocks on its
	// stderr while it is being stopped.
	quit := make(chan struct{})
	defer func() {
		close(quit)
		fmt.Fprintln(out)
		sup.stopAll(out, grace, cfg.Force)
	}()

	common := []string{
		"DATABASE_URL=" + dbURL,
		"AUTH_TOKENS_FILE=" + f.tokens,
		"ENCRYPTION_KEYSET_FILE=" + f.keyset,
		"LOG_LEVEL=info",
		// Plaintext on loopback: a TLS setting from the shell would make
		// the servers speak TLS to clients that do not.
		"TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=",
		// grpcurl without proto files, as the README shows.
		"GRPC_REFLECTION=true",
	}
	type service struct {
		name, addr, show string
		env              []string
	}
	services := []service{
		{"portalsim", "", "http://" + a.Portal, []string{"PORTALSIM_ADDR=" + a.Portal, "PORTALSIM_CONFIG="}},
		{"accountpool", a.Pool, a.Pool, append(slices.Clone(common),
			"LISTEN_ADDR="+a.Pool, "METRICS_ADDR="+a.PoolMetrics, "POOL_COOLDOWN="+env["POOL_COOLDOWN"])},
		{"requests", a.Requests, a.Requests + ", JSON on http://" + a.RequestsHTTP, append(slices.Clone(common),
			"LISTEN_ADDR="+a.Requests, "METRICS_ADDR="+a.RequestsMetrics, "HTTP_ADDR="+a.RequestsHTTP,
			"REQUESTS_CHECK_INTERVAL="+env["REQUESTS_CHECK_INTERVAL"])},
		{"notifier", a.Notifier, a.Notifier, notifierEnv(common, a.Notifier, a.NotifierMetrics, a.Requests, f.notifier, a.Mail)},
	}
	fmt.Fprintf(out, "Starting the services:\n")
	portal := &seed.Portal{BaseURL: "http://" + a.Portal, HTTP: &http.Client{Timeout: 10 * time.Second}}
	children := map[string]*child{}
	for _, s := range services {
		c, err := sup.start(s.name, filepath.Join(bin, s.name), s.env, nil)
		if err != nil {
			return err
		}
		children[s.name] = c
	}
	for _, s := range services {
		c := children[s.name]
		if s.addr == "" {
			err = waitReady(ctx, c, 30*time.Second, portal.Ready)
		} else {
			err = waitGRPC(ctx, c, s.addr, 90*time.Second)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-12s %-48s log %s\n", s.name, s.show, rel(c.logPath))
	}

	poolConn, err := dialAdmin(a.Pool, f.admin)
	if err != nil {
		return err
	}
	defer poolConn.Close()
	reqConn, err := dialAdmin(a.Requests, f.admin)
	if err != nil {
		return err
	}
	defer reqConn.Close()
	ntConn, err := dialAdmin(a.Notifier, f.admin)
	if err != nil {
		return err
	}
	defer ntConn.Close()
	pool := apv1.NewAccountPoolServiceClient(poolConn)
	rq := rqv1.NewRequestsServiceClient(reqConn)
	nt := notifierv1.NewNotifierServiceClient(ntConn)

	ds := seed.DemoDataset(time.Now())
	loadCtx, loadDone := context.WithTimeout(ctx, 30*time.Second)
	loaded, err := seed.Load(loadCtx, ds, portal, pool, rq)
	if err == nil {
		err = Subscribe(loadCtx, nt, ds, loaded, hooks.URL(), hookSecret)
	}
	loadDone()
	if err != nil {
		return fmt.Errorf("load the demo data: %w", err)
	}
	printDataset(out, ds, cfg.SlotAfter)

	found := make(chan foundEvent, 16)
	go watchSlotFound(ctx, rq, found)
	mails := make(chan savedMail, 16)
	go receiveMails(ctx, sink, f.mail, mails)

	fmt.Fprintf(out, "Starting the Checker (ready when its Chromium is):\n")
	events := make(chan Event, 1024)
	checker, err := sup.start("checker", filepath.Join(bin, "checker"), append(slices.Clone(common),
		"LISTEN_ADDR="+a.Checker, "METRICS_ADDR="+a.CheckerMetrics,
		"ACCOUNTPOOL_ADDR="+a.Pool, "REQUESTS_ADDR="+a.Requests,
		"AUTH_TOKEN_FILE="+f.checker,
		"PORTAL_BASE_URL=http://"+a.Portal,
		"CHECKER_ARTIFACTS_DIR="+f.artifacts,
		"CHECKER_ID=demo",
		"CHECKER_SESSION_INTERVAL="+env["CHECKER_SESSION_INTERVAL"],
		"CHECKER_DRAIN_TIMEOUT="+checkerDrain.String(),
		"CHROME_PATH="+demoChrome(cfg.Getenv),
		// Chromium cannot be sandboxed as root, and the Checker refuses
		// root without this opt-in; as any other user it is sandboxed.
		"CHROME_NO_SANDBOX="+strconv.FormatBool(os.Geteuid() == 0),
	), func(line []byte) {
		if e, ok := ParseCheckerLine(line); ok {
			select {
			case events <- e:
			case <-quit:
			}
		}
	})
	if err != nil {
		return err
	}
	// Health is NOT_SERVING until the Checker's browser is up.
	if err := waitGRPC(ctx, checker, a.Checker, 90*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %-12s %-48s log %s\n", "checker", a.Checker, rel(checker.logPath))

	l := &loop{
		view:   NewView(out, time.Now(), time.Now, ds.MissionNames()),
		out:    out,
		ds:     ds,
		loaded: loaded,
		pool:   pool,
		portal: portal,
		files:  f,
		rel:    rel,
		addrs:  a,
	}
	fmt.Fprintf(out, "\nThe Checker's sessions, as they happen (mm:ss since the Checker started; Ctrl-C stops everything):\n")
	return l.run(ctx, cfg.SlotAfter, events, found, mails, hooks, sup.exited)
}

// notifierEnv is the Notifier's environment in make run (and the soak):
// common's settings, its addresses, Requests' with the reader token in
// tokenFile, and email in plaintext to the SMTP sink at mail.
func notifierEnv(common []string, listen, metrics, requests, tokenFile, mail string) []string {
	return append(slices.Clone(common),
		"LISTEN_ADDR="+listen, "METRICS_ADDR="+metrics,
		"REQUESTS_ADDR="+requests, "AUTH_TOKEN_FILE="+tokenFile,
		"NOTIFIER_SMTP_HOST="+host(mail), "NOTIFIER_SMTP_PORT="+port(mail),
		"NOTIFIER_SMTP_TLS=none", "NOTIFIER_SMTP_FROM="+demoFrom,
		// No AUTH and no Telegram, whatever the shell has.
		"NOTIFIER_SMTP_USERNAME=", "NOTIFIER_SMTP_PASSWORD_FILE=", "NOTIFIER_SMTP_CA_FILE=",
		"NOTIFIER_TELEGRAM_TOKEN_FILE=")
}

func waitGRPC(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	ready, closeFn, err := grpcServing(addr)
	if err != nil {
		return err
	}
	defer closeFn()
	return waitReady(ctx, c, timeout, ready)
}

func printDataset(out io.Writer, ds seed.Dataset, slotAfter time.Duration) {
	v := NewView(io.Discard, time.Time{}, time.Now, ds.MissionNames())
	fmt.Fprintf(out, "Demo data:\n")
	fmt.Fprintf(out, "  %d portal accounts, in AccountPool and portalsim: %s ... %s\n",
		len(ds.Accounts), ds.Accounts[0].Email, ds.Accounts[len(ds.Accounts)-1].Email)
	var ms []string
	for _, m := range ds.Missions {
		ms = append(ms, fmt.Sprintf("%s at %s", v.Mission(m.Code), strings.Join(m.Centres, ", ")))
	}
	fmt.Fprintf(out, "  portalsim missions: %s\n", strings.Join(ms, "; "))
	fmt.Fprintf(out, "  appointment requests:\n")
	for _, a := range ds.Applicants {
		for _, r := range a.Requests {
			fmt.Fprintf(out, "    %-16s %-14s %-11s %-9s %s .. %s\n", a.FullName, v.Mission(r.Mission), r.Centre, r.VisaCategory, r.Earliest, r.Latest)
		}
	}
	fmt.Fprintf(out, "  the Notifier: each applicant has an email contact; the operator a webhook subscription for every mission\n")
	s := ds.Slot
	fmt.Fprintf(out, "  %s after the Checker starts, portalsim gets one free slot: %s, %s, %s, %s %s\n",
		slotAfter, v.Mission(s.Mission), s.Centre, s.VisaCategory, s.Date, s.Time)
}

// foundEvent is a SLOT_FOUND event of Requests.
type foundEvent struct {
	Cursor     int64
	OccurredAt time.Time
	Request    *rqv1.AppointmentRequest
}

// RequestsClient is the part of Requests the demo calls: the loader's calls
// and the event stream.
type RequestsClient interface {
	seed.RequestsClient
	WatchEvents(ctx context.Context, in *rqv1.WatchEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[rqv1.WatchEventsResponse], error)
}

// watchSlotFound sends every slot_found event of Requests to found, from
// the first event on, resuming after the last one when the stream breaks.
func watchSlotFound(ctx context.Context, rq RequestsClient, found chan<- foundEvent) {
	var cursor int64
	for ctx.Err() == nil {
		stream, err := rq.WatchEvents(ctx, &rqv1.WatchEventsRequest{AfterCursor: cursor})
		for err == nil {
			var ev *rqv1.WatchEventsResponse
			if ev, err = stream.Recv(); err != nil {
				break
			}
			cursor = ev.GetCursor()
			if ev.GetType() == rqv1.EventType_EVENT_TYPE_SLOT_FOUND {
				select {
				case found <- foundEvent{Cursor: ev.GetCursor(), OccurredAt: ev.GetOccurredAt().AsTime(), Request: ev.GetRequest()}:
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// loop renders the session view until the demo's slot is found, then
// prints where to poke and stays quiet until ctx ends.
type loop struct {
	view   *View
	out    io.Writer
	ds     seed.Dataset
	loaded seed.Loaded
	pool   seed.PoolClient
	portal *seed.Portal
	files  files
	rel    func(string) string
	addrs  Addrs

	slotAddedAt time.Time
	// events are the SLOT_FOUND events seen, by cursor, and mails the
	// messages that arrived before their event did.
	events map[int64]foundEvent
	mails  map[int64][]savedMail
	// pending are found requests, with the email that announced them, not
	// printed yet: they are printed when the session that found them
	// ends, after its check lines.
	pending []announced
	done    bool
}

// announced is a SLOT_FOUND event and an email the Notifier sent for it.
type announced struct {
	event foundEvent
	mail  savedMail
}

// summaryWait is how long a found slot waits for its session's end before
// it is printed anyway.
const summaryWait = 5 * time.Second

// slowFind is when the demo says that the slot it added was not found yet.
const slowFind = 3 * time.Minute

// slowMail is when the demo says that the email announcing its slot has
// not arrived, after Requests recorded the find.
const slowMail = 30 * time.Second

func (l *loop) run(ctx context.Context, slotAfter time.Duration, events <-chan Event, found <-chan foundEvent, mails <-chan savedMail, hooks *HookReceiver, exited <-chan *child) error {
	l.events, l.mails = map[int64]foundEvent{}, map[int64][]savedMail{}
	slotTimer := time.NewTimer(slotAfter)
	defer slotTimer.Stop()
	var (
		summary <-chan time.Time // pending's deadline
		slow    <-chan time.Time
		late    <-chan time.Time    // the target's email's deadline
		waited  = map[string]bool{} // sessions in which the Checker waited
		// inSession: the Checker has started a session it has not
		// finished, so a slot found now is printed after its lines.
		inSession bool
	)
	for {
		// Announced finds are printed now, or when the session that
		// found them ends (summaryWait at most).
		if len(l.pending) > 0 {
			if !inSession {
				summary = nil
				l.flushFound()
			} else if summary == nil {
				summary = time.After(summaryWait)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case c := <-exited:
			return c.exitedEarly()
		case <-slotTimer.C:
			if err := l.portal.AddSlot(ctx, l.ds.Slot); err != nil {
				return fmt.Errorf("add the demo's slot: %w", err)
			}
			l.slotAddedAt = time.Now()
			s := l.ds.Slot
			l.view.Note("portalsim: a slot is free now: %s, %s, %s, %s %s", l.view.Mission(s.Mission), s.Centre, s.VisaCategory, s.Date, s.Time)
			slow = time.After(slowFind)
		case <-slow:
			if !l.done {
				l.view.Note("the slot has not been found %s after it appeared; see %s", slowFind, l.rel(filepath.Join(l.files.logs, "checker.log")))
			}
		case <-late:
			if !l.done {
				l.view.Note("Requests recorded the slot %s ago, but no email has arrived; see %s and `bin/slotctl deliveries list`",
					slowMail, l.rel(filepath.Join(l.files.logs, "notifier.log")))
			}
		case ev := <-found:
			l.events[ev.Cursor] = ev
			if ev.Request.GetId() == l.loaded.Target && late == nil {
				late = time.After(slowMail)
			}
			for _, m := range l.mails[ev.Cursor] {
				l.pending = append(l.pending, announced{ev, m})
			}
			delete(l.mails, ev.Cursor)
		case m := <-mails:
			c, ok := eventCursor(m.MessageID)
			if !ok {
				l.view.Note("email to %s that the demo cannot place: %q (%s)", strings.Join(m.To, ", "), m.Subject, l.rel(m.Path))
				continue
			}
			if ev, ok := l.events[c]; ok {
				l.pending = append(l.pending, announced{ev, m})
			} else {
				l.mails[c] = append(l.mails[c], m)
			}
		case h := <-hooks.Arrivals:
			l.view.Hook(h)
		case err := <-hooks.Refused:
			l.view.Note("webhook refused by the demo's receiver: %v", err)
		case <-summary:
			summary = nil
			l.flushFound()
		case e := <-events:
			if l.done {
				continue // quiet now; the log has it all
			}
			switch e.Kind {
			case SessionStarted:
				inSession = true
			case CheckFinished:
				inSession = true
				l.view.Check(e)
			case NoAccountFree:
				inSession = true
				waited[e.Session] = true
				l.view.Waiting(e, l.nextFreeing(ctx))
			case MissionNotChecked:
				inSession = true
				waited[e.Session] = true
				l.view.NotChecked(e)
			case SessionFinished:
				inSession = false
				if e.Checks > 0 || waited[e.Session] {
					l.poolLine(ctx)
				}
				delete(waited, e.Session)
				if len(l.pending) > 0 {
					summary = nil
					l.flushFound()
				}
			case CheckerProblem:
				l.view.Problem(e)
			}
		}
	}
}

// flushFound prints the found requests, as the emails that announced them
// say; the demo's own slot ends the session view.
func (l *loop) flushFound() {
	target := false
	for _, a := range l.pending {
		r := a.event.Request
		lr, ok := l.loaded.Requests[r.GetId()]
		who := lr.Applicant
		if !ok {
			who = "applicant " + r.GetApplicantId()
		}
		f := Found{Applicant: who, Mission: r.GetMissionCode(), Centre: r.GetCentre(), VisaCategory: r.GetVisaCategory(),
			To: strings.Join(a.mail.To, ", "), Subject: a.mail.Subject, Latency: a.mail.Received.Sub(a.event.OccurredAt), File: l.rel(a.mail.Path)}
		if ms := r.GetMatchedSlots(); len(ms) > 0 {
			f.Date, f.Time = ms[0].GetDate(), ms[0].GetTime()
		}
		l.view.Found(f)
		target = target || r.GetId() == l.loaded.Target
	}
	l.pending = nil
	if target && !l.done {
		l.done = true
		l.printPoke()
	}
}

func (l *loop) poolLine(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := l.pool.GetPoolStatus(ctx, &apv1.GetPoolStatusRequest{})
	if err != nil {
		l.view.Note("pool status: %v", err)
		return
	}
	p := PoolCounts{
		Available: int(st.GetAvailable()), Leased: int(st.GetLeased()), Cooldown: int(st.GetInCooldown()),
		Quarantined: int(st.GetQuarantined()), Disabled: int(st.GetDisabled()),
	}
	if st.GetNextAvailableAt() != nil {
		p.NextFree = time.Until(st.GetNextAvailableAt().AsTime())
	}
	l.view.Pool(p)
}

// nextFreeing names the account whose cooldown or quarantine ends first.
func (l *loop) nextFreeing(ctx context.Context) Freeing {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := l.pool.ListAccounts(ctx, &apv1.ListAccountsRequest{PageSize: 1000})
	if err != nil {
		return Freeing{}
	}
	return NextFreeing(resp.GetAccounts(), time.Now())
}

// NextFreeing is the account among accounts whose rest (cooldown or
// quarantine) ends first after now; zero when none rests.
func NextFreeing(accounts []*apv1.Account, now time.Time) Freeing {
	var (
		best Freeing
		at   time.Time
	)
	for _, a := range accounts {
		var until time.Time
		rest := ""
		switch a.GetState() {
		case apv1.AccountState_ACCOUNT_STATE_COOLDOWN:
			until, rest = a.GetCooldownUntil().AsTime(), "cooldown"
		case apv1.AccountState_ACCOUNT_STATE_QUARANTINED:
			until, rest = a.GetQuarantineUntil().AsTime(), "quarantine"
		default:
			continue
		}
		if until.After(now) && (at.IsZero() || until.Before(at)) {
			best, at = Freeing{Email: a.GetEmail(), Rest: rest}, until
		}
	}
	return best
}

// printPoke ends the session view: what was found, and what to try while
// everything stays up.
func (l *loop) printPoke() {
	if !l.slotAddedAt.IsZero() {
		fmt.Fprintf(l.out, "\nThe email announcing the demo's slot arrived %s after the slot appeared on the portal.\n", seconds(time.Since(l.slotAddedAt)))
	}
	admin := l.rel(l.files.admin)
	h := fmt.Sprintf(`-H "authorization: Bearer $(cat %s)"`, admin)
	fmt.Fprintf(l.out, `Everything stays up until Ctrl-C; the Checker goes on with the requests still pending
(quietly: %s). Try, from another terminal:

  bin/tools/grpcurl -plaintext %s %s slotwatch.accountpool.v1.AccountPoolService/GetPoolStatus
  bin/tools/grpcurl -plaintext %s -d '{"status":"REQUEST_STATUS_SLOT_FOUND"}' %s slotwatch.requests.v1.RequestsService/ListAppointmentRequests
  bin/tools/grpcurl -plaintext %s %s slotwatch.checker.v1.CheckerService/GetStatus
  AUTH_TOKEN_FILE=%s bin/slotctl pool status --watch
  AUTH_TOKEN_FILE=%s bin/slotctl usage stats
  AUTH_TOKEN_FILE=%s bin/slotctl requests list
  AUTH_TOKEN_FILE=%s bin/slotctl events follow
  AUTH_TOKEN_FILE=%s bin/slotctl deliveries list      # the Notifier's log: each email and webhook
  ls %s    # the emails the Notifier sent, as received
  curl -s %s http://%s/v1/requests   # Requests' JSON gateway
  curl -s http://%s/admin/logins          # portalsim's record of every login
  http://%s/ in a browser: the portal (acc1@demo.test / demo-password-1)
`,
		l.rel(filepath.Join(l.files.logs, "checker.log")),
		h, l.addrs.Pool, h, l.addrs.Requests, h, l.addrs.Checker,
		admin, admin, admin, admin, admin, l.rel(l.files.mail), strings.Replace(h, "authorization", "Authorization", 1), l.addrs.RequestsHTTP,
		l.addrs.Portal, l.addrs.Portal)
}

// headlessShell is Debian's chromium-headless-shell binary (not the
// /usr/bin wrapper script, which does not exec it).
const headlessShell = "/usr/lib/chromium/chromium-headless-shell"

// demoChrome is the browser the demo's Checker drives: CHROME_PATH when
// set, else the headless shell when installed (a third of full Chromium's
// CPU per check, see docs/BENCHMARKS.md), else the Checker's default.
func demoChrome(getenv func(string) string) string {
	if p := getenv("CHROME_PATH"); p != "" {
		return p
	}
	if _, err := os.Stat(headlessShell); err == nil {
		return headlessShell
	}
	return "/usr/bin/chromium"
}

// dialAdmin connects to the demo's service at target (on loopback) with the
// admin token in tokenFile.
func dialAdmin(target, tokenFile string) (*grpc.ClientConn, error) {
	return auth.Dial(target, auth.ClientConfig{TokenFile: tokenFile})
}
