package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestAStreamTheStopEndsIsUnavailable: the graceful stop ends the streams
// still open (their context is cancelled), and a handler then fails as
// its work does on a cancelled context: with CANCELLED, as AccountPool's
// ImportAccounts does when its next insert fails. The client did not
// cancel anything; it must be told UNAVAILABLE, the code for "this server
// is going away, try again" (slotctl's import printed "request cancelled").
func TestAStreamTheStopEndsIsUnavailable(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]func(ctx context.Context) error{
		"StatusCanceled": func(context.Context) error { return status.Error(codes.Canceled, "request cancelled") },
		"ContextError":   func(ctx context.Context) error { return ctx.Err() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := make(chan struct{})
			const svc = "slotwatch.test.v1.ImportService"
			desc := grpc.ServiceDesc{ServiceName: svc, HandlerType: (*testService)(nil),
				Streams: []grpc.StreamDesc{{StreamName: "Import", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
					if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
						return err
					}
					close(got)
					<-ss.Context().Done() // the next account's insert, on a cancelled context
					return fail(ss.Context())
				}}}}
			srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t)})
			srv.GRPC.RegisterService(&desc, struct{}{})
			lis := bufconn.Listen(1 << 20)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, lis, nil) }()
			conn := authtest.DialBufconn(t, lis, "")

			stream, err := conn.NewStream(testkit.Context(t), &grpc.StreamDesc{ClientStreams: true}, "/"+svc+"/Import")
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				t.Fatal("the handler never got the first message")
			}
			stop() // the graceful stop begins
			_ = stream.CloseSend()
			err = stream.RecvMsg(new(emptypb.Empty))
			if status.Code(err) != codes.Unavailable {
				t.Errorf("a stream the stop ended answered %v, want UNAVAILABLE", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
}
