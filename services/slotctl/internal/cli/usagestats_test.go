package cli

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
)

// pagedStats is an AccountPool whose GetUsageStats answers one account a
// page, three in all, and records what it was asked.
type pagedStats struct {
	apv1.UnimplementedAccountPoolServiceServer
	mu   sync.Mutex
	asks []*apv1.GetUsageStatsRequest
}

func (p *pagedStats) GetUsageStats(_ context.Context, req *apv1.GetUsageStatsRequest) (*apv1.GetUsageStatsResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asks = append(p.asks, req)
	n := len(p.asks)
	resp := &apv1.GetUsageStatsResponse{Since: req.GetSince(), Until: req.GetUntil(),
		Stats: []*apv1.AccountUsageStats{{AccountId: int64(n), Email: "acc" + strconv.Itoa(n) + "@example.com", Uses: int32(n)}}}
	if n < 3 {
		resp.NextPageToken = "page-" + strconv.Itoa(n+1)
	}
	return resp, nil
}

// usage stats reads every page of one window: a pool with more accounts
// used in it than one page holds was shown its first page only.
func TestUsageStatsReadsEveryPage(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &pagedStats{}
	srv := grpc.NewServer()
	apv1.RegisterAccountPoolServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	token := authtest.WriteFile(t, "admin.token", "admin "+newToken(t)+"\n")

	r := runSlotctl(context.Background(), strings.NewReader(""), nil,
		"--accountpool", lis.Addr().String(), "--token-file", token, "usage", "stats", "--since", "24h").must(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	// The pages go by account id; the table is most used first.
	if len(lines) != 4 || !strings.Contains(lines[1], "acc3@") || !strings.Contains(lines[3], "acc1@") {
		t.Fatalf("usage stats printed:\n%s\nwant the three pages' accounts, most used first", r.stdout)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for i, ask := range fake.asks {
		if want := map[int]string{0: "", 1: "page-2", 2: "page-3"}[i]; ask.GetPageToken() != want {
			t.Errorf("ask %d: page token %q, want %q", i, ask.GetPageToken(), want)
		}
		if !ask.GetSince().AsTime().Equal(fake.asks[0].GetSince().AsTime()) || !ask.GetUntil().AsTime().Equal(fake.asks[0].GetUntil().AsTime()) {
			t.Errorf("ask %d: window [%v, %v), the first [%v, %v)", i, ask.GetSince().AsTime(), ask.GetUntil().AsTime(),
				fake.asks[0].GetSince().AsTime(), fake.asks[0].GetUntil().AsTime())
		}
	}
}
