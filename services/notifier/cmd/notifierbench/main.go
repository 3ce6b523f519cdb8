// Command notifierbench is `make bench-notifier` (issue 14, "Measured"):
// how many events a second the Notifier turns into delivered webhooks
// against a local receiver, against the same receiver fed directly by a
// loop over WatchEvents (no outbox, no delivery log); and the latency from
// a SLOT_FOUND's commit in Requests to its webhook's arrival, at a steady
// rate of slots found. Requests and the Notifier run as built in bin/
// (make build), auth off on loopback, over a database it makes afresh,
// slotwatch_notifier_bench, on the server of DATABASE_URL
// (deploy/local/with-postgres.sh sets it; make bench-notifier does).
//
// The two throughput runs alternate -runs times (a machine shared with
// other work drifts in load between runs); the ratio reported is the
// median of the pairs'.
//
//	notifierbench [-root DIR] [-events 2000] [-runs 3] [-rate 100] [-for 10s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	ntv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/webhook"
	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
	"github.com/slotwatch/slotwatch/services/platform/freeport"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func main() {
	grpcserver.Main(func(ctx context.Context, args []string, _ io.Writer) error { return run(ctx, args) })
}

const (
	database = "slotwatch_notifier_bench"
	secret   = "notifierbench-webhook-secret-0123456789"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("notifierbench", flag.ContinueOnError)
	root := fs.String("root", ".", "the checkout: binaries in ROOT/bin")
	events := fs.Int("events", 2000, "SLOT_FOUND events of each throughput run")
	runs := fs.Int("runs", 3, "pairs of throughput runs (direct, then Notifier)")
	rate := fs.Int("rate", 100, "slots found a second in the latency run")
	dur := fs.Duration("for", 10*time.Second, "length of the latency run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *events < 1 {
		return errors.New("-runs and -events: want at least 1")
	}
	bin, err := filepath.Abs(filepath.Join(*root, "bin"))
	if err != nil {
		return err
	}
	dbURL, err := freshDatabase(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "notifierbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	recv := newReceiver()
	hookSrv := &http.Server{Handler: recv, ReadHeaderTimeout: 5 * time.Second}
	hookLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go hookSrv.Serve(hookLis) //nolint:errcheck // closed at the end
	defer hookSrv.Close()
	hookURL := "http://" + hookLis.Addr().String()

	common := []string{"DATABASE_URL=" + dbURL, "LOG_LEVEL=warn", "METRICS_ADDR=127.0.0.1:0", "AUTH_TOKENS_FILE=", "TLS_CERT_FILE=", "TLS_KEY_FILE=", "RATE_LIMIT_RPS=0"}
	rqAddr, err := freeAddr()
	if err != nil {
		return err
	}
	rqKeys, err := keysetFile(work, "requests")
	if err != nil {
		return err
	}
	stopRQ, err := start(ctx, filepath.Join(bin, "requests"), work, rqAddr, append(common, "LISTEN_ADDR="+rqAddr,
		"ENCRYPTION_KEYSET_FILE="+rqKeys, "HTTP_ADDR=127.0.0.1:0", "REQUESTS_CHECK_INTERVAL=0s"))
	if err != nil {
		return err
	}
	defer stopRQ()
	ntAddr, err := freeAddr()
	if err != nil {
		return err
	}
	ntKeys, err := keysetFile(work, "notifier")
	if err != nil {
		return err
	}
	stopNT, err := start(ctx, filepath.Join(bin, "notifier"), work, ntAddr, append(common, "LISTEN_ADDR="+ntAddr,
		"ENCRYPTION_KEYSET_FILE="+ntKeys, "REQUESTS_ADDR="+rqAddr, "AUTH_TOKEN_FILE="))
	if err != nil {
		return err
	}
	defer stopNT()

	rqConn, err := grpc.NewClient(rqAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer rqConn.Close()
	ntConn, err := grpc.NewClient(ntAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer ntConn.Close()
	b := &bench{rq: rqv1.NewRequestsServiceClient(rqConn), nt: ntv1.NewNotifierServiceClient(ntConn), recv: recv, hookURL: hookURL}

	fmt.Printf("notifierbench: %d events per throughput run, %d pairs, then %d/s for %s; Requests and Notifier from %s\n\n",
		*events, *runs, *rate, *dur, bin)
	fmt.Printf("%-5s %-44s %10s %10s %7s\n", "pair", "throughput run", "events/s", "elapsed", "ratio")
	ratios := make([]float64, 0, *runs)
	for i := range *runs {
		direct, err := b.direct(ctx, i, *events)
		if err != nil {
			return fmt.Errorf("direct loop: %w", err)
		}
		viaNotifier, err := b.throughput(ctx, i, *events)
		if err != nil {
			return fmt.Errorf("notifier throughput: %w", err)
		}
		ratio := viaNotifier.rate() / direct.rate()
		ratios = append(ratios, ratio)
		fmt.Printf("%-5d %-44s %10.0f %10s\n", i+1, "WatchEvents loop posting webhooks (no outbox)", direct.rate(), direct.elapsed.Round(time.Millisecond))
		fmt.Printf("%-5d %-44s %10.0f %10s %7.2f\n", i+1, "Notifier (outbox, delivery log, 1 replica)", viaNotifier.rate(),
			viaNotifier.elapsed.Round(time.Millisecond), ratio)
	}
	slices.Sort(ratios)
	fmt.Printf("ratio Notifier / direct, median of %d: %.2f (goal >= 0.7)\n\n", len(ratios), ratios[len(ratios)/2])

	lat, sent, err := b.latency(ctx, *rate, *dur)
	if err != nil {
		return fmt.Errorf("latency run: %w", err)
	}
	fmt.Printf("latency, SLOT_FOUND commit to webhook arrival, %d slots found at %.0f/s:\n", len(lat), sent)
	fmt.Printf("  p50 %s  p90 %s  p99 %s  max %s (goal p50 < 200ms at 100/s)\n",
		pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), pct(lat, 1))
	return nil
}

type bench struct {
	rq      rqv1.RequestsServiceClient
	nt      ntv1.NotifierServiceClient
	recv    *receiver
	hookURL string
	// cursor is the last SLOT_FOUND's that arrived (by either way): a
	// direct run streams from it, as the first streams from the start.
	cursor int64
}

type runResult struct {
	events  int
	elapsed time.Duration
}

func (r runResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// applicant creates an applicant with n pending requests on mission.
func (b *bench) applicant(ctx context.Context, name, mission string, n int) (string, error) {
	a, err := b.rq.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{FullName: name, Email: "bench@example.com"})
	if err != nil {
		return "", err
	}
	id := a.GetApplicant().GetId()
	for range n {
		if err := b.request(ctx, id, mission); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (b *bench) request(ctx context.Context, applicant, mission string) error {
	_, err := b.rq.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
		ApplicantId: applicant, MissionCode: mission, Centre: "paris", VisaCategory: "tourism",
		EarliestDate: "2027-03-01", LatestDate: "2027-03-31",
	})
	return err
}

// findSlots reports slots until n requests became SLOT_FOUND (a claim
// carries at most 1000 requests).
func (b *bench) findSlots(ctx context.Context, n int) error {
	for found := 0; found < n; {
		m, err := b.findSlot(ctx)
		if err != nil {
			return fmt.Errorf("after %d of %d slots found: %w", found, n, err)
		}
		found += m
	}
	return nil
}

// findSlot claims one due mission and reports a slot all its requests
// match; it returns how many became SLOT_FOUND.
func (b *bench) findSlot(ctx context.Context) (int, error) {
	cl, err := b.rq.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: "notifierbench", MaxMissions: 1})
	if err != nil {
		return 0, err
	}
	if len(cl.GetClaims()) == 0 {
		return 0, errors.New("no mission due")
	}
	r, err := b.rq.ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{
		ClaimId: cl.GetClaims()[0].GetClaimId(), Outcome: rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, AccountId: 1,
		Slots: []*rqv1.Slot{{Centre: "paris", VisaCategory: "tourism", Date: "2027-03-03", Time: "09:30"}},
	})
	return len(r.GetMatched()), err
}

// direct is the baseline: one loop reads WatchEvents and posts each
// SLOT_FOUND to the receiver, signed like the Notifier's, nothing stored.
// Each run has its own mission.
func (b *bench) direct(ctx context.Context, run, n int) (runResult, error) {
	if _, err := b.applicant(ctx, "Direct Loop", fmt.Sprintf("dir%d", run), n); err != nil {
		return runResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := b.rq.WatchEvents(ctx, &rqv1.WatchEventsRequest{AfterCursor: b.cursor})
	if err != nil {
		return runResult{}, err
	}
	sender := webhook.New(webhook.Config{})
	done := make(chan error, 1)
	var last time.Time
	go func() {
		posted := 0
		for posted < n {
			ev, err := stream.Recv()
			if err != nil {
				done <- err
				return
			}
			if ev.GetType() != rqv1.EventType_EVENT_TYPE_SLOT_FOUND {
				continue
			}
			body, err := protojson.Marshal(ev)
			if err != nil {
				done <- err
				return
			}
			if err := sender.Send(ctx, channel.Message{IdempotencyKey: fmt.Sprint(ev.GetCursor()), To: b.hookURL + "/direct",
				JSON: body, SigningSecrets: [][]byte{[]byte(secret)}}); err != nil {
				done <- err
				return
			}
			posted++
			b.cursor = ev.GetCursor()
		}
		last = time.Now()
		done <- nil
	}()
	began := time.Now()
	if err := b.findSlots(ctx, n); err != nil {
		return runResult{}, err
	}
	if err := <-done; err != nil {
		return runResult{}, err
	}
	return runResult{events: n, elapsed: last.Sub(began)}, nil
}

// throughput: n SLOT_FOUND events at once, one webhook contact: from the
// report to the n-th delivery's arrival. Each run has its own mission and
// applicant (so its own contact).
func (b *bench) throughput(ctx context.Context, run, n int) (runResult, error) {
	id, err := b.applicant(ctx, "Ada Lovelace", fmt.Sprintf("ntf%d", run), n)
	if err != nil {
		return runResult{}, err
	}
	if _, err := b.nt.CreateContact(ctx, &ntv1.CreateContactRequest{ApplicantId: id, Kind: ntv1.ContactKind_CONTACT_KIND_WEBHOOK,
		Address: b.hookURL + "/notifier", WebhookSecret: secret}); err != nil {
		return runResult{}, err
	}
	b.recv.reset()
	began := time.Now()
	if err := b.findSlots(ctx, n); err != nil {
		return runResult{}, err
	}
	last, err := b.recv.waitFor(ctx, "/notifier", n, 5*time.Minute)
	if err != nil {
		return runResult{}, err
	}
	b.cursor = b.recv.lastCursor()
	return runResult{events: n, elapsed: last.Sub(began)}, nil
}

// latency finds a slot for one request at a time, rate a second, each on
// its own mission, and reads each webhook's latency from the event's
// occurred_at (Requests' commit) to its arrival.
func (b *bench) latency(ctx context.Context, rate int, d time.Duration) ([]time.Duration, float64, error) {
	n := int(float64(rate) * d.Seconds())
	a, err := b.rq.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{FullName: "Grace Hopper", Email: "bench@example.com"})
	if err != nil {
		return nil, 0, err
	}
	id := a.GetApplicant().GetId()
	if _, err := b.nt.CreateContact(ctx, &ntv1.CreateContactRequest{ApplicantId: id, Kind: ntv1.ContactKind_CONTACT_KIND_WEBHOOK,
		Address: b.hookURL + "/latency", WebhookSecret: secret}); err != nil {
		return nil, 0, err
	}
	for i := range n {
		if err := b.request(ctx, id, fmt.Sprintf("lat%05d", i)); err != nil {
			return nil, 0, err
		}
	}
	b.recv.reset()
	// Slots are found on a ticker; a few reporters take the ticks, so one
	// slow claim does not hold the pace back.
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	ticks := make(chan struct{})
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ticks {
				// A claim that matched nothing (a mission whose request
				// another reporter's slot just took) is claimed again.
				for {
					m, err := b.findSlot(ctx)
					if err != nil || m > 1 {
						errc <- fmt.Errorf("slot found for %d requests, want 1: %v", m, err)
						return
					}
					if m == 1 {
						break
					}
				}
			}
		}()
	}
	began := time.Now()
	for range n {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		select {
		case ticks <- struct{}{}:
		case err := <-errc:
			close(ticks)
			wg.Wait()
			return nil, 0, err
		}
	}
	close(ticks)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, 0, err
	default:
	}
	sent := float64(n) / time.Since(began).Seconds()
	if _, err := b.recv.waitFor(ctx, "/latency", n, 2*time.Minute); err != nil {
		return nil, 0, err
	}
	return b.recv.latencies("/latency"), sent, nil
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)].Round(time.Millisecond)
}

// receiver records each path's distinct deliveries (by Idempotency-Key),
// when the last arrived, and each one's latency from its event.
type receiver struct {
	mu      sync.Mutex
	keys    map[string]map[string]bool
	last    map[string]time.Time
	latency map[string][]time.Duration
	// cursor is the highest event_cursor of a body received.
	cursor int64
}

func newReceiver() *receiver {
	r := &receiver{}
	r.reset()
	return r
}

func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys, r.last, r.latency = map[string]map[string]bool{}, map[string]time.Time{}, map[string][]time.Duration{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	if webhooksig.Verify(req.Header.Get(webhook.SignatureHeader), body, now, []byte(secret)) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		OccurredAt time.Time `json:"occurred_at"`
		Cursor     int64     `json:"event_cursor"`
	}
	_ = json.Unmarshal(body, &ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cursor = max(r.cursor, ev.Cursor)
	p, key := req.URL.Path, req.Header.Get(webhook.IdempotencyHeader)
	if r.keys[p] == nil {
		r.keys[p] = map[string]bool{}
	}
	if !r.keys[p][key] {
		r.keys[p][key] = true
		r.last[p] = now
		if !ev.OccurredAt.IsZero() {
			r.latency[p] = append(r.latency[p], now.Sub(ev.OccurredAt))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) waitFor(ctx context.Context, path string, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		got, last := len(r.keys[path]), r.last[path]
		r.mu.Unlock()
		if got >= n {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d deliveries arrived at %s within %s", got, n, path, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (r *receiver) lastCursor() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

func (r *receiver) latencies(path string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.latency[path])
}

// freshDatabase drops and creates the bench's database on the server of
// serverURL and returns its URL.
func freshDatabase(ctx context.Context, serverURL string) (string, error) {
	if serverURL == "" {
		return "", errors.New("DATABASE_URL is not set: run me through deploy/local/with-postgres.sh (make bench-notifier does)")
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{database}.Sanitize()
	for _, q := range []string{"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)", "CREATE DATABASE " + ident} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + database
	return u.String(), nil
}

func keysetFile(dir, name string) (string, error) {
	ks, err := secrets.Generate()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+"-keyset.json")
	return path, os.WriteFile(path, ks, 0o600)
}

func freeAddr() (string, error) {
	addrs, err := freeport.Loopback(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// start runs a service binary with its log in dir, waits for its gRPC
// health to say SERVING, and returns how to stop it.
func start(ctx context.Context, path, dir, addr string, env []string) (func(), error) {
	logf, err := os.Create(filepath.Join(dir, filepath.Base(path)+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (make build first): %w", path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		stop()
		return nil, err
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return stop, nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("%s exited at start:\n%s", filepath.Base(path), log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s not serving within a minute", filepath.Base(path))
		}
	}
}
