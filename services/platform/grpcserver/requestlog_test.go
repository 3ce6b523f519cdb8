package grpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// logLines runs logUnary once per handler error at the given log level and
// returns the lines written, parsed.
func logLines(t *testing.T, level string, ctx context.Context, errs ...error) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l, err := NewLogger(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	intercept := logUnary(l)
	info := &grpc.UnaryServerInfo{FullMethod: "/slotwatch.accountpool.v1.AccountPoolService/Acquire"}
	for _, e := range errs {
		_, got := intercept(ctx, "the request", info, func(ctx context.Context, _ any) (any, error) {
			setCaller(ctx, "checker", "checker-prod")
			return "the response", e
		})
		if got != e {
			t.Fatalf("the interceptor returned %v, the handler %v", got, e)
		}
	}
	var lines []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRequestLogLine(t *testing.T) {
	t.Parallel()
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4567}})
	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Hour))
	defer cancel()
	lines := logLines(t, "info", ctx, nil, status.Error(codes.ResourceExhausted, "every account is resting"))
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %v", lines)
	}
	ok, refused := lines[0], lines[1]
	for k, want := range map[string]any{
		"msg": "finished call", "level": "INFO", "caller.role": "checker", "caller.name": "checker-prod",
		"protocol": "grpc", "grpc.component": "server", "grpc.service": "slotwatch.accountpool.v1.AccountPoolService",
		"grpc.method": "Acquire", "grpc.method_type": "unary", "peer.address": "10.1.2.3:4567", "grpc.code": "OK",
	} {
		if ok[k] != want {
			t.Errorf("%s = %v, want %v (line %v)", k, ok[k], want, ok)
		}
	}
	for _, k := range []string{"grpc.start_time", "grpc.request.deadline"} {
		if _, has := ok[k]; !has {
			t.Errorf("no %s in %v", k, ok)
		}
	}
	if ms, isString := ok["grpc.time_ms"].(string); !isString || ms == "" {
		t.Errorf("grpc.time_ms = %#v, want milliseconds as a string, as before", ok["grpc.time_ms"])
	}
	if _, has := ok["grpc.error"]; has {
		t.Errorf("an OK call has grpc.error: %v", ok)
	}
	for _, payload := range []string{"the request", "the response"} {
		for k, v := range ok {
			if v == payload {
				t.Errorf("the payload is in the line as %s", k)
			}
		}
	}
	if refused["level"] != "WARN" || refused["grpc.code"] != "ResourceExhausted" ||
		refused["grpc.error"] != "rpc error: code = ResourceExhausted desc = every account is resting" {
		t.Errorf("refused call's line: %v", refused)
	}
}

func TestRequestLogLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code codes.Code
		want string
	}{
		{codes.OK, "INFO"}, {codes.InvalidArgument, "INFO"}, {codes.NotFound, "INFO"}, {codes.Unauthenticated, "INFO"},
		{codes.PermissionDenied, "WARN"}, {codes.FailedPrecondition, "WARN"}, {codes.Unavailable, "WARN"},
		{codes.Internal, "ERROR"}, {codes.Unknown, "ERROR"}, {codes.DataLoss, "ERROR"},
	} {
		var err error
		if tc.code != codes.OK {
			err = status.Error(tc.code, "x")
		}
		lines := logLines(t, "debug", context.Background(), err)
		if len(lines) != 1 || lines[0]["level"] != tc.want {
			t.Errorf("%v: want one %s line, got %v", tc.code, tc.want, lines)
		}
	}
	// Above a line's level, nothing is written; the handler still runs.
	lines := logLines(t, "warn", context.Background(), nil, status.Error(codes.NotFound, "x"),
		status.Error(codes.Unavailable, "x"), status.Error(codes.Internal, "x"))
	if len(lines) != 2 || lines[0]["grpc.code"] != "Unavailable" || lines[1]["grpc.code"] != "Internal" {
		t.Errorf("at warn: want the Unavailable and Internal lines only, got %v", lines)
	}
}

func TestRequestLogStreamEndingInEOF(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "info")
	if err != nil {
		t.Fatal(err)
	}
	info := &grpc.StreamServerInfo{FullMethod: "/slotwatch.requests.v1.RequestsService/WatchEvents", IsServerStream: true}
	err = logStream(l)(nil, &fakeStream{ctx: context.Background()}, info, func(_ any, ss grpc.ServerStream) error {
		setCaller(ss.Context(), "reader", "")
		return io.EOF
	})
	if err != io.EOF {
		t.Fatalf("the interceptor changed the handler's error: %v", err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["grpc.code"] != "OK" || line["grpc.method_type"] != "server_stream" || line["caller.role"] != "reader" || line["caller.name"] != nil {
		t.Errorf("stream line: %v", line)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }

// BenchmarkRequestLog is the request log of one unary call, this package's
// against go-grpc-middleware's logging interceptor (configured as the
// chain had it before), with the logger discarding every line and with it
// writing JSON at info (the services' default) to io.Discard.
func BenchmarkRequestLog(b *testing.B) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4567}})
	info := &grpc.UnaryServerInfo{FullMethod: "/slotwatch.accountpool.v1.AccountPoolService/Acquire"}
	handler := func(ctx context.Context, _ any) (any, error) {
		setCaller(ctx, "checker", "checker-prod")
		return nil, nil
	}
	jsonInfo, err := NewLogger(io.Discard, "info")
	if err != nil {
		b.Fatal(err)
	}
	for _, lg := range []struct {
		name string
		l    *slog.Logger
	}{{"discard", slog.New(slog.DiscardHandler)}, {"json-info", jsonInfo}} {
		for _, ic := range []struct {
			name string
			i    grpc.UnaryServerInterceptor
		}{{"slotwatch", logUnary(lg.l)}, {"go-grpc-middleware", middlewareLog(lg.l)}} {
			b.Run(lg.name+"/"+ic.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ic.i(ctx, nil, info, handler); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// middlewareLog is the baseline: go-grpc-middleware's logging interceptor
// with the options and caller slot the chain used before requestlog.go.
func middlewareLog(l *slog.Logger) grpc.UnaryServerInterceptor {
	inner := logging.UnaryServerInterceptor(logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	}), logging.WithLogOnEvents(logging.FinishCall), logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
		slot, _ := ctx.Value(callerSlotKey{}).(*callerSlot)
		role, name := slot.get()
		return logging.Fields{"caller.role", role, "caller.name", name}
	}))
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return inner(context.WithValue(ctx, callerSlotKey{}, &callerSlot{}), req, info, handler)
	}
}
