package auth

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// replica is a gRPC server on loopback that counts the calls it answers.
func replica(t *testing.T) (addr string, calls *atomic.Int64) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	calls = new(atomic.Int64)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), calls
}

// callTwoReplicas dials one name that resolves to two replicas (as a
// headless Service's DNS name does, here through gRPC's manual resolver)
// and calls it until both replicas have answered or n calls were made; it
// returns how many each replica answered. (A balancer sends calls only to
// the replicas it is connected to yet, so the first calls may all go to the
// first one up.)
func callTwoReplicas(t *testing.T, n int, opts []grpc.DialOption) (int64, int64) {
	t.Helper()
	a, ca := replica(t)
	b, cb := replica(t)
	r := manual.NewBuilderWithScheme("replicas")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: a}, {Addr: b}}})
	conn, err := grpc.NewClient("replicas:///accountpool", append(opts, grpc.WithResolvers(r))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for range n {
		if ca.Load() > 0 && cb.Load() > 0 {
			break
		}
		if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	return ca.Load(), cb.Load()
}

// TestClientsSpreadCallsOverReplicas: DialOptions balances a client's calls
// over every address its target resolves to, where gRPC's default
// (pick_first) would send them all to one.
func TestClientsSpreadCallsOverReplicas(t *testing.T) {
	t.Parallel()
	opts, err := DialOptions("replicas:///accountpool", ClientConfig{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	a, b := callTwoReplicas(t, 2000, opts)
	if a == 0 || b == 0 {
		t.Errorf("with DialOptions: replicas answered %d and %d calls, want both some", a, b)
	}
	// The premise: without the service config, one replica gets them all.
	a, b = callTwoReplicas(t, 200, []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	if a != 0 && b != 0 {
		t.Errorf("gRPC's default: replicas answered %d and %d calls; this test no longer shows what round_robin changes", a, b)
	}
}
