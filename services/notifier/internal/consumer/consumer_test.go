package consumer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/consumer"
	"github.com/slotwatch/slotwatch/services/notifier/internal/content"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/reconnect"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// requests is the part of Requests the consumer calls: WatchEvents sends
// its events after the cursor asked for, then stays open; ListApplicants
// answers UNAVAILABLE (a Requests not ready yet) to its first notReady
// calls.
type requests struct {
	requestsv1.UnimplementedRequestsServiceServer
	events    []*requestsv1.WatchEventsResponse
	applicant *requestsv1.Applicant
	notReady  int
	// hang: the first hang ListApplicants calls never answer.
	hang int
	// gap is a pause after each event sent, so that the consumer takes
	// each in a batch of its own.
	gap time.Duration
	// prunedThrough is the last cursor retention pruned: a stream after
	// an older cursor (not 0) is refused as Requests refuses it.
	prunedThrough int64
	// withoutInfo refuses it without the ErrorInfo (as a Requests
	// older than the detail did).
	withoutInfo bool

	mu      sync.Mutex
	watches int
	lookups int
}

func (r *requests) WatchEvents(in *requestsv1.WatchEventsRequest, stream grpc.ServerStreamingServer[requestsv1.WatchEventsResponse]) error {
	r.mu.Lock()
	r.watches++
	r.mu.Unlock()
	if after := in.GetAfterCursor(); after != 0 && after < r.prunedThrough {
		// Requests' error (services/requests, errorStatus).
		msg := fmt.Sprintf("cursor %d is older than the oldest event kept: events through cursor %d were pruned by retention (REQUESTS_RETENTION); the oldest cursor available is %d: resume with after_cursor %d to get every event still kept, after re-reading the state you need (ListAppointmentRequests)",
			after, r.prunedThrough, r.prunedThrough, r.prunedThrough)
		if r.withoutInfo {
			return status.Error(codes.OutOfRange, msg)
		}
		return apierr.Info(codes.OutOfRange, msg, apirule.ReasonEventsPruned, map[string]string{apirule.MetaOldestCursor: strconv.FormatInt(r.prunedThrough, 10)})
	}
	for _, ev := range r.events {
		if ev.GetCursor() <= in.GetAfterCursor() {
			continue
		}
		if err := stream.Send(ev); err != nil {
			return err
		}
		time.Sleep(r.gap)
	}
	<-stream.Context().Done()
	return nil
}

func (r *requests) ListApplicants(ctx context.Context, in *requestsv1.ListApplicantsRequest) (*requestsv1.ListApplicantsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if r.lookups <= r.hang {
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		return nil, ctx.Err()
	}
	if r.lookups <= r.notReady {
		return nil, status.Error(codes.Unavailable, "requests is starting")
	}
	var out []*requestsv1.Applicant
	for _, id := range in.GetIds() {
		if id == r.applicant.GetId() {
			out = append(out, r.applicant)
		}
	}
	return &requestsv1.ListApplicantsResponse{Applicants: out}, nil
}

func (r *requests) GetMission(_ context.Context, in *requestsv1.GetMissionRequest) (*requestsv1.GetMissionResponse, error) {
	return &requestsv1.GetMissionResponse{Mission: &requestsv1.Mission{MissionCode: in.GetMissionCode(), Timezone: "Europe/Paris"}}, nil
}

func (r *requests) calls() (watches, lookups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watches, r.lookups
}

// loop takes nothing handed over: every delivery is recorded unleased.
type loop struct{}

func (loop) Offer(time.Time) (time.Time, int) { return time.Time{}, 0 }
func (loop) Sends(channel.Kind) bool          { return false }
func (loop) Hand([]domain.Delivery)           {}
func (loop) Wake()                            {}

// logLines are the JSON lines a slog.JSONHandler wrote to buf with msg.
func logLines(buf *testkit.SyncBuffer, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

const dropped = "Requests event stream dropped; resuming from the stored cursor"

// TestRequestsNotServingYet: the Notifier starts before Requests listens,
// and once Requests listens it answers the applicant lookups UNAVAILABLE a
// few times (not ready yet). The consumer waits with a growing backoff the
// whole time, never FirstWait again before a batch got through (events
// received whose lookup failed are no progress), and then records the
// event's delivery once, with the applicant's name, its cursor moved:
// nothing lost, nothing failed.
func TestRequestsNotServingYet(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	now := time.Now()
	applicant, request := uuid.New(), uuid.New()
	if _, err := st.CreateContact(ctx, domain.Contact{ID: uuid.New(), ApplicantID: applicant,
		Target: domain.Target{Kind: channel.Telegram, Address: "424242", Language: "en"}, CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	fake := &requests{
		applicant: &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"},
		notReady:  3,
		gap:       30 * time.Millisecond,
		events: []*requestsv1.WatchEventsResponse{{
			// An event that reaches no one (its applicant has no contact):
			// it needs no lookup, and is not recorded on its own.
			Cursor: 6, Type: requestsv1.EventType_EVENT_TYPE_SLOT_FOUND, OccurredAt: timestamppb.New(now),
			Request: &requestsv1.AppointmentRequest{Id: uuid.NewString(), ApplicantId: uuid.NewString(), MissionCode: "fra",
				Centre: "paris", VisaCategory: "tourism", EarliestDate: "2027-03-01", LatestDate: "2027-03-31"},
		}, {
			Cursor: 7, Type: requestsv1.EventType_EVENT_TYPE_SLOT_FOUND, OccurredAt: timestamppb.New(now),
			Request: &requestsv1.AppointmentRequest{Id: request.String(), ApplicantId: applicant.String(), MissionCode: "fra",
				Centre: "paris", VisaCategory: "tourism", EarliestDate: "2027-03-01", LatestDate: "2027-03-31",
				MatchedSlots: []*requestsv1.Slot{{Centre: "paris", VisaCategory: "tourism", Date: "2027-03-03", Time: "09:30"}}},
		}},
	}
	addr := grpcservertest.FreeAddr(t) // nothing listens there yet
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := requestsv1.NewRequestsServiceClient(conn)
	templates, err := content.Load()
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	c := consumer.New(st, client, consumer.NewLookup(client), templates, time.Now, consumer.Config{}, loop{}, nil,
		slog.New(slog.NewJSONHandler(&logs, nil)))
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	eventually(t, "three tries while Requests is not listening", func() bool { return len(logLines(&logs, dropped)) >= 3 })
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	requestsv1.RegisterRequestsServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	var ds []domain.Delivery
	eventually(t, "the event's delivery recorded", func() bool {
		ds, _, err = st.ListDeliveries(ctx, store.DeliveryFilter{}, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) > 0
	})
	if len(ds) != 1 || ds[0].EventCursor != 7 || ds[0].State != domain.Pending || ds[0].Attempts != 0 {
		t.Fatalf("deliveries %+v; want one, of cursor 7, pending, no attempt", ds)
	}
	var text string
	var cursor int64
	if err := pool.QueryRow(ctx, `SELECT d.body_text, c.cursor FROM notifier.deliveries d, notifier.cursors c WHERE c.stream = $1`,
		consumer.Stream).Scan(&text, &cursor); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Ada Lovelace") || cursor != 7 {
		t.Errorf("cursor %d, message:\n%s\nwant cursor 7, a message naming the applicant (the lookup's answer)", cursor, text)
	}
	watches, lookups := fake.calls()
	if lookups != fake.notReady+1 {
		t.Errorf("%d lookups, want %d (each refused one, then the one answered)", lookups, fake.notReady+1)
	}
	if watches != fake.notReady+1 {
		t.Errorf("%d streams opened, want %d", watches, fake.notReady+1)
	}

	// The waits doubled until the batch got through: no try came
	// FirstWait after one that had failed already, not even after the
	// event that reached no one had gone through without a lookup.
	var waits []time.Duration
	for _, l := range logLines(&logs, dropped) {
		d, err := time.ParseDuration(l["retry_in"].(string))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, d)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] != min(2*waits[i-1], reconnect.MaxWait) {
			t.Fatalf("waits %v: wait %d did not double, with nothing recorded between", waits, i)
		}
	}
}

// eventually polls cond until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start runs a consumer on st against fake, served on a fresh address,
// until the test ends; it returns the consumer's log.
func start(t *testing.T, st *store.Store, fake *requests, lookupTimeout ...time.Duration) *testkit.SyncBuffer {
	t.Helper()
	_, logs := newConsumer(t, st, fake, true, lookupTimeout...)
	return logs
}

// newConsumer makes a consumer over st and fake, running when run says so.
func newConsumer(t *testing.T, st *store.Store, fake *requests, run bool, lookupTimeout ...time.Duration) (*consumer.Consumer, *testkit.SyncBuffer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	requestsv1.RegisterRequestsServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := requestsv1.NewRequestsServiceClient(conn)
	templates, err := content.Load()
	if err != nil {
		t.Fatal(err)
	}
	lookup := consumer.NewLookup(client)
	for _, d := range lookupTimeout {
		consumer.SetLookupTimeout(lookup, d)
	}
	logs := &testkit.SyncBuffer{}
	c := consumer.New(st, client, lookup, templates, time.Now, consumer.Config{}, loop{}, nil,
		slog.New(slog.NewJSONHandler(logs, nil)))
	if !run {
		t.Cleanup(func() { conn.Close(); srv.Stop() })
		return c, logs
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; conn.Close(); srv.Stop() })
	return c, logs
}

// telegramApplicant is a new applicant id with a Telegram contact in st.
func telegramApplicant(t *testing.T, st *store.Store) uuid.UUID {
	t.Helper()
	applicant := uuid.New()
	if _, err := st.CreateContact(testkit.Context(t), domain.Contact{ID: uuid.New(), ApplicantID: applicant,
		Target: domain.Target{Kind: channel.Telegram, Address: "424242", Language: "en"}, CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	return applicant
}

// slotFound is a SLOT_FOUND event of cursor on a request of applicant,
// at centre.
func slotFound(cursor int64, applicant uuid.UUID, centre string) *requestsv1.WatchEventsResponse {
	return &requestsv1.WatchEventsResponse{
		Cursor: cursor, Type: requestsv1.EventType_EVENT_TYPE_SLOT_FOUND, OccurredAt: timestamppb.Now(),
		Request: &requestsv1.AppointmentRequest{Id: uuid.NewString(), ApplicantId: applicant.String(), MissionCode: "fra",
			Centre: centre, VisaCategory: "tourism", EarliestDate: "2027-03-01", LatestDate: "2027-03-31",
			MatchedSlots: []*requestsv1.Slot{{Centre: centre, VisaCategory: "tourism", Date: "2027-03-03", Time: "09:30"}}},
	}
}

// storedCursor is the consumer's cursor in the database.
func storedCursor(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var cur int64
	if err := pool.QueryRow(testkit.Context(t), `SELECT COALESCE((SELECT cursor FROM notifier.cursors WHERE stream = $1), 0)`,
		consumer.Stream).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// TestLineBreakInCentreDoesNotStopTheStream: a centre with a line break
// (Requests keeps what it was given) makes a one-line subject, and a
// message that cannot be rendered at all (a contact whose language has no
// templates any more) costs that recipient the event, logged, not the
// stream: the event after it is recorded and the cursor moves past both.
func TestLineBreakInCentreDoesNotStopTheStream(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	applicant := uuid.New()
	good, lost := uuid.New(), uuid.New()
	for id, lang := range map[uuid.UUID]string{good: "en", lost: "xx"} {
		if _, err := st.CreateContact(ctx, domain.Contact{ID: id, ApplicantID: applicant,
			Target: domain.Target{Kind: channel.Telegram, Address: "424242", Language: lang}, CreatedAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	logs := start(t, st, &requests{
		applicant: &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"},
		gap:       30 * time.Millisecond,
		events:    []*requestsv1.WatchEventsResponse{slotFound(1, applicant, "paris\nnord"), slotFound(2, applicant, "lyon")},
	})
	eventually(t, "the cursor past both events", func() bool { return storedCursor(t, pool) == 2 })
	ds, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[int64]string{}
	for _, d := range ds {
		if d.ContactID != good {
			t.Errorf("delivery %d to contact %s: its language has no templates", d.ID, d.ContactID)
		}
		subjects[d.EventCursor] = d.Subject
	}
	if len(ds) != 2 || subjects[1] != "Slot found: fra paris nord, 2027-03-03 09:30" || !strings.Contains(subjects[2], "lyon") {
		t.Errorf("subjects %v; want one per event for the English contact, the first on one line", subjects)
	}
	failed := logLines(logs, "cannot render a message: this recipient is not notified of the event")
	if len(failed) != 2 || failed[0]["level"] != "ERROR" || failed[0]["recipient_id"] != lost.String() {
		t.Errorf("render failures logged: %v; want one per event, at ERROR, naming the contact", failed)
	}
}

// TestMessageCountsTheSlotsRequestsDidNotKeep: Requests keeps a request's
// earliest 20 matched slots and counts them all (matched_slot_count); the
// message lists those 20 and says how many more matched.
func TestMessageCountsTheSlotsRequestsDidNotKeep(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	applicant := telegramApplicant(t, st)
	ev := slotFound(1, applicant, "lyon")
	ev.Request.MatchedSlots = nil
	for day := 1; day <= 20; day++ {
		ev.Request.MatchedSlots = append(ev.Request.MatchedSlots, &requestsv1.Slot{Centre: "lyon", VisaCategory: "tourism", Date: fmt.Sprintf("2027-03-%02d", day), Time: "09:30"})
	}
	ev.Request.MatchedSlotCount = 45
	start(t, st, &requests{applicant: &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"},
		events: []*requestsv1.WatchEventsResponse{ev}})
	eventually(t, "the event recorded", func() bool { return storedCursor(t, pool) == 1 })
	var text string
	if err := pool.QueryRow(ctx, `SELECT body_text FROM notifier.deliveries`).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "2027-03-20 09:30") || !strings.Contains(text, "and 25 more") {
		t.Fatalf("message:\n%s\nwant the 20 slots kept listed and \"and 25 more\"", text)
	}
}

// TestPrunedEventsAreSkipped: the stored cursor is older than the oldest
// event Requests keeps (its retention pruned events the consumer had not
// recorded). Requests refuses it with OUT_OF_RANGE; the consumer says at
// error that events were lost, resumes from the oldest kept instead of
// retrying the refused cursor forever, and records the event after it.
// The cursor to resume after comes from the error's ErrorInfo; without it
// (an older Requests), the next stream starts from the oldest event kept.
func TestPrunedEventsAreSkipped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		withoutInfo bool
		// through: the last cursor pruned as the consumer logs it.
		through float64
	}{
		{name: "FromTheErrorInfo", through: 10},
		{name: "WithoutTheErrorInfo", withoutInfo: true, through: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testkit.Context(t)
			pool := pgtest.NewPool(t, migrations.Set)
			st := store.New(pool)
			applicant := telegramApplicant(t, st)
			if _, err := pool.Exec(ctx, `INSERT INTO notifier.cursors (stream, cursor, updated_at) VALUES ($1, 3, now())`, consumer.Stream); err != nil {
				t.Fatal(err)
			}
			fake := &requests{
				applicant:     &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"},
				prunedThrough: 10,
				withoutInfo:   tc.withoutInfo,
				events:        []*requestsv1.WatchEventsResponse{slotFound(11, applicant, "lyon")},
			}
			logs := start(t, st, fake)
			eventually(t, "the event after the pruned ones recorded", func() bool { return storedCursor(t, pool) == 11 })
			ds, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{}, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].EventCursor != 11 {
				t.Errorf("deliveries %+v; want the one of cursor 11", ds)
			}
			lost := logLines(logs, "events were lost: Requests' retention pruned them before they were recorded (its REQUESTS_RETENTION is shorter than this consumer was away); resuming from the oldest event kept")
			if len(lost) != 1 || lost[0]["level"] != "ERROR" || lost[0]["stored_cursor"] != 3.0 || lost[0]["pruned_through"] != tc.through {
				t.Errorf("logged %v; want one error naming the stored cursor (3) and the last one pruned (%v)", lost, tc.through)
			}
			if watches, _ := fake.calls(); watches != 2 {
				t.Errorf("%d streams opened; want 2 (refused, then after the pruned ones)", watches)
			}
		})
	}
}

// TestEventsReceivedBeforeTheStreamEndedAreRecorded: when the stream ends
// (an OUT_OF_RANGE after a replay the pruner overtook, say), the events
// already received go to record before the error is handled; after an
// OUT_OF_RANGE the cursor moves past the pruned ones, and would skip them.
// Both are ready at once, so the test takes several turns (select picks
// at random between ready cases).
func TestEventsReceivedBeforeTheStreamEndedAreRecorded(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	st := store.New(pgtest.NewPool(t, migrations.Set))
	applicant := telegramApplicant(t, st)
	c, _ := newConsumer(t, st, &requests{applicant: &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"}}, false)
	end := status.Error(codes.OutOfRange, "the oldest cursor available is 2")
	for turn := range 20 {
		lasts, err := consumer.Prepare(ctx, c, []*requestsv1.WatchEventsResponse{
			slotFound(1, applicant, "lyon"), slotFound(2, applicant, "lyon"), slotFound(3, applicant, "lyon")}, end)
		if status.Code(errors.Unwrap(err)) != codes.OutOfRange {
			t.Fatalf("turn %d: prepare ended with %v; want the stream's OUT_OF_RANGE", turn, err)
		}
		if len(lasts) == 0 || lasts[len(lasts)-1] != 3 {
			t.Fatalf("turn %d: batches up to cursors %v handed to record; want every event received (through 3) before the error", turn, lasts)
		}
	}
}

// TestQuietStreamStoresTheCursorOfEventsThatReachedNoOne: events that
// cause no delivery move the stored cursor only every few hundred, or when
// the stream goes quiet after them; otherwise a quiet stream would leave
// it behind, to be replayed, or pruned by Requests' retention meanwhile.
func TestQuietStreamStoresTheCursorOfEventsThatReachedNoOne(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	nobody := uuid.New() // no contact, no subscription
	start(t, st, &requests{events: []*requestsv1.WatchEventsResponse{slotFound(4, nobody, "lyon"), slotFound(5, nobody, "lyon")}})
	eventually(t, "the cursor of the events that reached no one stored", func() bool { return storedCursor(t, pool) == 5 })
}

// TestLookupThatNeverAnswersIsRetried: a Requests that takes an applicant
// lookup and never answers costs the consumer a retry after the lookup's
// timeout, not the stream: the event is recorded at the next try.
func TestLookupThatNeverAnswersIsRetried(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, migrations.Set)
	st := store.New(pool)
	applicant := telegramApplicant(t, st)
	fake := &requests{
		applicant: &requestsv1.Applicant{Id: applicant.String(), FullName: "Ada Lovelace"},
		hang:      1,
		events:    []*requestsv1.WatchEventsResponse{slotFound(1, applicant, "lyon")},
	}
	logs := start(t, st, fake, 200*time.Millisecond)
	eventually(t, "the event recorded after the lookup that hung", func() bool { return storedCursor(t, pool) == 1 })
	if _, lookups := fake.calls(); lookups != 2 {
		t.Errorf("%d lookups; want 2 (the one that hung, then the one answered)", lookups)
	}
	if n := len(logLines(logs, dropped)); n != 1 {
		t.Errorf("%d retries logged; want 1", n)
	}
}
