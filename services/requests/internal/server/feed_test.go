package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/app"
	"github.com/slotwatch/slotwatch/services/requests/internal/store"
)

// waitMetric waits until a counter reaches at least want; it is a wait for
// something to happen, not a timing assertion.
func waitMetric(t *testing.T, srv *testServer, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for grpcservertest.Metric(t, srv.registry, name, labels...) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v stayed below %v", name, labels, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventReads(t *testing.T, srv *testServer, reader string) float64 {
	t.Helper()
	return grpcservertest.Metric(t, srv.registry, "slotwatch_requests_event_reads_total", "reader", reader)
}

// after keeps the events with a cursor above c.
func after(events []seenEvent, c int64) []seenEvent {
	var out []seenEvent
	for _, e := range events {
		if e.cursor > c {
			out = append(out, e)
		}
	}
	return out
}

func TestWatchEventsFeed(t *testing.T) {
	t.Parallel()

	t.Run("OneNotificationIsOneQueryForEveryStream", func(t *testing.T) {
		t.Parallel()
		const streams = 20
		c, b := setupWith(t, serverOpts{watch: app.WatchConfig{PerCaller: streams, Total: streams}})
		srv := b.server
		// The hub is listening once the feed has read on its first wake.
		waitMetric(t, srv, 1, "slotwatch_requests_event_reads_total", "reader", "feed")
		a := createApplicant(t, c)
		createRequest(t, c, a.GetId(), reqArgs{})
		var open []requestsv1.RequestsService_WatchEventsClient
		for range streams {
			s, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			receive(t, s, 1)
			open = append(open, s)
		}
		feed, replay := eventReads(t, srv, "feed"), eventReads(t, srv, "replay")

		r := createRequest(t, c, a.GetId(), reqArgs{mission: "deu"})
		for i, s := range open {
			if got := receive(t, s, 1)[0]; got.requestID != r.GetId() {
				t.Fatalf("stream %d got %v", i, got)
			}
		}
		if got := eventReads(t, srv, "feed") - feed; got != 1 {
			t.Errorf("%d streams took %v feed reads for one event, want 1", streams, got)
		}
		if got := eventReads(t, srv, "replay") - replay; got != 0 {
			t.Errorf("live streams read the table themselves %v times", got)
		}
	})

	t.Run("ResumeAcrossReplayAndLiveUnderConcurrentInsertsMissesAndRepeatsNothing", func(t *testing.T) {
		t.Parallel()
		// A one-batch buffer: streams also fall behind and replay again
		// while the writers run.
		c, b := setupWith(t, serverOpts{watch: app.WatchConfig{Buffer: 1}})
		a := createApplicant(t, c)
		const writers, perWriter = 4, 25
		const total = writers * perWriter
		var wg sync.WaitGroup
		start := make(chan struct{})
		writeRequests(t, c, &wg, start, a.GetId(), writers, perWriter, nil)
		first, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		close(start)
		// More streams join while the writers write, each from a cursor
		// the first one has seen: they replay up to the feed and switch to
		// live while events keep coming.
		type joined struct {
			from   int64
			stream requestsv1.RequestsService_WatchEventsClient
		}
		var (
			seen   []seenEvent
			others []joined
		)
		for len(seen) < total {
			seen = append(seen, receive(t, first, 1)...)
			if n := len(seen); n%20 == 0 && n < total {
				s, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{AfterCursor: seen[n-1].cursor})
				if err != nil {
					t.Fatal(err)
				}
				others = append(others, joined{seen[n-1].cursor, s})
			}
		}
		wg.Wait()
		table := eventsTable(t, b)
		if fmt.Sprint(seen) != fmt.Sprint(table) {
			t.Fatalf("first stream delivered\n%v\nevents table holds\n%v", seen, table)
		}
		for _, j := range others {
			want := after(table, j.from)
			if got := receive(t, j.stream, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("stream from %d delivered\n%v\nwant\n%v", j.from, got, want)
			}
		}
	})

	t.Run("StreamsPastTheCapsAreRefusedWithRetryInfo", func(t *testing.T) {
		t.Parallel()
		c, b := setupWith(t, serverOpts{watch: app.WatchConfig{PerCaller: 2, Total: 3}})
		srv := b.server
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		reader := requestsv1.NewRequestsServiceClient(srv.dial(t, readerToken))
		// open starts a stream; an admitted one proves it by replaying the
		// one event, a refused one fails on its first Recv.
		open := func(c requestsv1.RequestsServiceClient) (context.CancelFunc, error) {
			ctx, cancel := context.WithCancel(testkit.Context(t))
			s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			if err != nil {
				cancel()
			}
			return cancel, err
		}
		wantRefused := func(err error, limit string) {
			t.Helper()
			testkit.WantCode(t, err, codes.ResourceExhausted)
			if d, ok := apierr.RetryDelay(err); !ok || d != app.WatchRetryDelay {
				t.Errorf("RetryInfo %v (%v), want %v", d, ok, app.WatchRetryDelay)
			}
			if !strings.Contains(err.Error(), limit) {
				t.Errorf("refusal %q does not name %s", err, limit)
			}
		}

		closeFirst, err := open(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open(c); err != nil {
			t.Fatal(err)
		}
		_, err = open(c)
		wantRefused(err, "REQUESTS_WATCH_PER_CALLER")
		// Another caller has its own allowance, up to the total.
		if _, err := open(reader); err != nil {
			t.Fatal(err)
		}
		_, err = open(reader)
		wantRefused(err, "REQUESTS_WATCH_MAX")
		grpcservertest.WantMetric(t, srv.registry, 1, "slotwatch_requests_watch_refused_total", "limit", "per_caller")
		grpcservertest.WantMetric(t, srv.registry, 1, "slotwatch_requests_watch_refused_total", "limit", "total")

		// A stream that ends gives its place back.
		closeFirst()
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, err := open(c)
			if err == nil {
				break
			}
			testkit.WantCode(t, err, codes.ResourceExhausted)
			if time.Now().After(deadline) {
				t.Fatal("a closed stream's place was never given back")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("SlowStreamFallsBackToReplayWithoutHoldingOthers", func(t *testing.T) {
		t.Parallel()
		c, b := setupWith(t, serverOpts{watch: app.WatchConfig{Buffer: 2}})
		srv := b.server
		createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		// The slow client's windows are fixed at gRPC's minimum (no
		// growth), so the server's sends to it block once it stops reading.
		conn, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return srv.lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(authtest.Bearer(adminToken)),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		slow, err := requestsv1.NewRequestsServiceClient(conn).WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		fast, err := c.WatchEvents(testkit.Context(t), &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		receive(t, slow, 1)
		receive(t, fast, 1)
		// The fast client reads while the events are written.
		const txs, perTx = 20, 250
		fastDone := make(chan error, 1)
		go func() {
			for n := 0; n < txs*perTx; n++ {
				if _, err := fast.Recv(); err != nil {
					fastDone <- fmt.Errorf("fast stream: Recv after %d of %d events: %w", n, txs*perTx, err)
					return
				}
			}
			fastDone <- nil
		}()

		// Many events in a few transactions (copies of the first one's
		// snapshot: this test is the only writer, so ids commit in order).
		for range txs {
			err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(context.Background(), `INSERT INTO requests.events (type, request_id, request, occurred_at)
					SELECT e.type, e.request_id, e.request, e.occurred_at FROM requests.events e, generate_series(1, $1)
					WHERE e.id = (SELECT min(id) FROM requests.events)`, perTx); err != nil {
					return err
				}
				_, err := tx.Exec(context.Background(), `SELECT pg_notify($1, '')`, store.EventChannel)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// The fast stream gets everything while the slow one reads nothing,
		// and the feed has let go of the slow one.
		if err := <-fastDone; err != nil {
			t.Fatal(err)
		}
		// At least the slow one fell behind (on a loaded machine the fast
		// one may too, for a moment: it replays, and still gets everything).
		if n := grpcservertest.Metric(t, srv.registry, "slotwatch_requests_watch_fell_behind_total"); n < 1 {
			t.Errorf("slotwatch_requests_watch_fell_behind_total = %v, want the slow stream counted", n)
		}
		// The slow one, reading at last, misses and repeats nothing.
		got := receive(t, slow, txs*perTx)
		if want := after(eventsTable(t, b), 1); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("slow stream delivered %d events, not the %d of the table in order", len(got), len(want))
		}
	})
}
