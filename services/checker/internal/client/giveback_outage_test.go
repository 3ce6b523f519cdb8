package client

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// syncBuffer is a bytes.Buffer safe for the give-back's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// AccountPool is down (its address refuses connections): no Acquire was
// ever sent, nothing was leased. OPERATIONS.md says that after an outage
// "each mission that gave up sends one give-back, answered NOT_FOUND when
// nothing was leased" (silent). But an Acquire refused before it was sent
// is now ErrNoAnswer, so every mission that gives up during the outage
// sends a give-back into the same outage, and logs at WARN that "giving
// back the lease of an Acquire whose answer was lost failed; the pool
// takes it back when the lease expires": one WARN per mission, about a
// lease that does not exist.
func TestAPoolOutageLogsNoFailedGiveBackOfALeaseThatNeverWas(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the pool is down: connection refused
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	logs := &syncBuffer{}
	c := session.New(session.Config{CheckerID: "checker-1", LeaseTTL: 10 * time.Minute, ClaimTTL: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))},
		NewPool(conn), &oneClaim{}, noSlotPortal{})
	sum, err := c.RunSession(testkit.Context(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != session.NoAccount {
		t.Fatalf("results %+v; want mission fra unchecked, no account", sum.Results)
	}
	c.Drain(time.Minute)
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "giving back the lease") {
			t.Errorf("a pool outage in which nothing was leased logged: %s", line)
		}
	}
}
