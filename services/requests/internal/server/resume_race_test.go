package server_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestAResumeThatWaitedBehindAnotherReplicasResumeIsANoOp: two operators
// (or a client that retries before the first answer) resume vfs through
// two replicas at about the same time. B's ResumePortal reads its now
// (app.ResumePortal: a.Now() before the transaction), then waits for the
// portal's row: behind a claim transaction (lockPortalsForClaim locks every
// portal row), for a pool connection, or behind A's own resume. A resumes
// meanwhile (Until = A's now, pause_open false, one PORTAL_RESUMED). B's
// resume then finds the pause closed and changes nothing: no second
// PORTAL_RESUMED, paused_until stays A's. (A rule that read a closed pause
// ending more than the clocks' skew after now as still running, tried for
// the case of TestLiftingAPauseAnOlderRequestsLengthenedWritesNoUnpairedResumed,
// failed this: the wait before the row lock adds to the skew.)
func TestAResumeThatWaitedBehindAnotherReplicasResumeIsANoOp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		skew, wait time.Duration
	}{
		{"A2sAheadBWaits1ms", 2 * time.Second, time.Millisecond},
		{"ClocksTogetherBWaits2500ms", 0, 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewURL(t, migrations.Set)
			clock := testkit.NewClock(start)
			var hold atomic.Bool
			captured, release := make(chan struct{}), make(chan struct{})
			newPool := func() *pgxpool.Pool {
				pool, err := pgxpool.New(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pool.Close)
				return pool
			}
			// B's clock; once armed, its next read stands for a ResumePortal
			// that has read now and not yet locked the portal's row.
			b := startServer(t, newPool(), serverOpts{now: func() time.Time {
				n := clock.Now()
				if hold.CompareAndSwap(true, false) {
					close(captured)
					<-release
				}
				return n
			}})
			a := startServer(t, newPool(), serverOpts{now: func() time.Time { return clock.Now().Add(tc.skew) }})
			cB, cA := b.client, a.client

			portalMissions(t, cB, "vfs", 3)
			for range 3 {
				reportWall(t, cB, wallCaptcha, 0)
			}
			clock.Advance(time.Minute)

			hold.Store(true)
			done := make(chan error, 1)
			var second *requestsv1.ResumePortalResponse
			go func() {
				var err error
				second, err = cB.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"})
				done <- err
			}()
			<-captured
			clock.Advance(tc.wait)
			first, err := cA.ResumePortal(testkit.Context(t), &requestsv1.ResumePortalRequest{Name: "vfs"})
			if err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("B's ResumePortal: %v", err)
			}
			until := first.GetStatus().GetPausedUntil().AsTime()
			if got := second.GetStatus().GetPausedUntil().AsTime(); !got.Equal(until) {
				t.Errorf("B's ResumePortal moved paused_until back from A's resume %v to %v", until, got)
			}

			createRequest(t, cB, createApplicant(t, cB).GetId(), reqArgs{mission: "endmark"})
			var types []string
			for _, ev := range portalEvents(t, cB) {
				types = append(types, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
			}
			if want := []string{"PORTAL_PAUSED", "PORTAL_RESUMED"}; !slices.Equal(types, want) {
				t.Errorf("portal events %v, want %v: one pause, resumed once", types, want)
			}
		})
	}
}
