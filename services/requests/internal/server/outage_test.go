package server_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestDatabaseOutageIsUnavailable: while the database cannot be reached
// (a restart, a partition) RPCs answer UNAVAILABLE, which clients retry,
// not INTERNAL; once it is back they work again.
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
	c := startServer(t, pool, serverOpts{}).client
	createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})

	proxy.Cut()
	_, err = c.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: 1})
	testkit.WantCode(t, err, codes.Unavailable)
	_, err = c.ListAppointmentRequests(testkit.Context(t), &requestsv1.ListAppointmentRequestsRequest{})
	testkit.WantCode(t, err, codes.Unavailable)

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	claims, err := c.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: 1})
	if err != nil || len(claims.GetClaims()) != 1 {
		t.Fatalf("after the outage: %v, %v", claims, err)
	}
}
