package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/notifier/internal/server"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/notifier/migrations"
	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestDatabaseOutageIsUnavailable: while the database cannot be reached
// (a restart, a partition: the chaos suite's partition-notifier-1) the
// Notifier's RPCs answer UNAVAILABLE, which clients retry on another
// replica, not INTERNAL; once it is back they work again.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.NewURL(t, migrations.Set))
	if err != nil {
		t.Fatal(err)
	}
	srv := faultproxy.NewServer()
	t.Cleanup(srv.Close)
	proxy, err := srv.Start("postgres", net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DialFunc = proxy.DialContext
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := server.New(app.New(store.New(pool), nil, nil, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := s.ListDeliveries(testkit.Context(t), &notifierv1.ListDeliveriesRequest{}); err != nil {
		t.Fatalf("before the outage: %v", err)
	}

	proxy.Cut()
	_, err = s.ListDeliveries(testkit.Context(t), &notifierv1.ListDeliveriesRequest{})
	testkit.WantCode(t, err, codes.Unavailable)
	_, err = s.ListSubscriptions(testkit.Context(t), &notifierv1.ListSubscriptionsRequest{})
	testkit.WantCode(t, err, codes.Unavailable)

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListDeliveries(testkit.Context(t), &notifierv1.ListDeliveriesRequest{}); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}
