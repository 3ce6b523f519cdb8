package server_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestDatabaseOutageIsUnavailable: while the database cannot be reached
// (a restart, a partition) RPCs answer UNAVAILABLE, which clients retry,
// not INTERNAL; once it is back they work again.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewURL(t, migrations.Set)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	srv := faultproxy.NewServer()
	t.Cleanup(srv.Close)
	proxy, err := srv.Start("postgres", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := setupOn(t, dbURL, withDatabaseVia(proxy))
	addAccounts(t, c, 1)
	release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT)

	proxy.Cut()
	_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-test"})
	testkit.WantCode(t, err, codes.Unavailable)
	_, err = c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	testkit.WantCode(t, err, codes.Unavailable)

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{}); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}
