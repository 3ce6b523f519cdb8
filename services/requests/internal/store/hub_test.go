package store

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// blackhole is a TCP proxy whose connections can be made to swallow
// everything in both directions without closing, as a dead network path
// does.
type blackhole struct {
	lis    net.Listener
	target string

	mu     sync.Mutex
	frozen []*atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{lis: lis, target: target}
	t.Cleanup(func() { lis.Close() })
	go b.serve()
	return b
}

func (b *blackhole) serve() {
	for {
		client, err := b.lis.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", b.target)
		if err != nil {
			client.Close()
			continue
		}
		frozen := &atomic.Bool{}
		b.mu.Lock()
		b.frozen = append(b.frozen, frozen)
		b.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer dst.Close()
			defer src.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !frozen.Load() {
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
		go pipe(server, client)
		go pipe(client, server)
	}
}

// freeze silences the connections open now; later ones work.
func (b *blackhole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.frozen {
		f.Store(true)
	}
}

// TestHubReconnectsFromASilentlyDeadConnection: when the LISTEN connection
// stops carrying anything without closing, the hub notices by pinging after
// a quiet spell, reconnects, and wakes its subscribers.
func TestHubReconnectsFromASilentlyDeadConnection(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t, migrations.Set)
	direct, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newBlackhole(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(proxy.lis.Addr().(*net.TCPAddr).Port)
	viaProxy, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viaProxy.Close)

	hub := NewHub(New(viaProxy), slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub.idle, hub.pingTimeout = 200*time.Millisecond, 300*time.Millisecond
	wake, unsubscribe := hub.Subscribe()
	defer unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake: %s", what)
		}
	}
	notify := func() {
		t.Helper()
		if _, err := direct.Exec(context.Background(), `SELECT pg_notify($1, '')`, EventChannel); err != nil {
			t.Fatal(err)
		}
	}
	waitWake("on connecting")
	notify()
	waitWake("on a notification")
	// Quiet spells on a live connection pass without a reconnect (which
	// would wake everyone).
	time.Sleep(3 * hub.idle)
	select {
	case <-wake:
		t.Fatal("woken without a notification while the connection was fine")
	default:
	}

	proxy.freeze()
	notify() // lost on the dead path
	waitWake("after the connection died silently")
	notify()
	waitWake("on a notification after reconnecting")
}
