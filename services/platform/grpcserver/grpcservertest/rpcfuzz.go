package grpcservertest

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// RPCFuzz sends fuzzed requests to every RPC of one service through a
// real server and checks what a caller's mistake must never cause: an
// INTERNAL (or UNKNOWN, DATA_LOSS) answer, a panic (the recovery
// interceptor answers INTERNAL), or a write left behind by a refused
// request. A fuzz input is (method, data): method picks an RPC by its
// index among the service's methods sorted by name, data is that RPC's
// request message in the protobuf wire format.
type RPCFuzz struct {
	// Conn calls the server (with a token allowed to call every RPC).
	Conn *grpc.ClientConn
	// Service is the service's descriptor, e.g.
	// apv1.File_slotwatch_accountpool_v1_accountpool_proto.Services().Get(0).
	Service protoreflect.ServiceDescriptor
	// DB and Schema are the service's database: every table of Schema is
	// compared before and after a refused request.
	DB     *pgxpool.Pool
	Schema string
	// Names are placeholders for ids the server made in this process
	// (each fuzz worker sets up its own server): a string field of a
	// request equal to a key is sent as its value, so that corpus entries
	// reach rows that exist.
	Names map[string]string
	// Timeout bounds one call. A server stream, or a request that asks to
	// wait (a field named wait), gets blockingTimeout instead and may run
	// into it.
	Timeout time.Duration
}

// Methods are the service's RPCs in the order a fuzz input's method index
// picks them.
func (r RPCFuzz) Methods() []protoreflect.MethodDescriptor {
	ms := r.Service.Methods()
	out := make([]protoreflect.MethodDescriptor, ms.Len())
	for i := range ms.Len() {
		out[i] = ms.Get(i)
	}
	slices.SortFunc(out, func(a, b protoreflect.MethodDescriptor) int { return cmp.Compare(a.Name(), b.Name()) })
	return out
}

// Seed adds one corpus entry per message: the RPC whose request type it
// is, and the message's bytes. Every RPC also gets an empty request.
func (r RPCFuzz) Seed(f *testing.F, msgs ...proto.Message) {
	f.Helper()
	ms := r.Methods()
	for i := range ms {
		f.Add(uint8(i), []byte{})
	}
	for _, m := range msgs {
		i := slices.IndexFunc(ms, func(md protoreflect.MethodDescriptor) bool {
			return md.Input().FullName() == m.ProtoReflect().Descriptor().FullName()
		})
		if i < 0 {
			f.Fatalf("no RPC of %s takes %s", r.Service.FullName(), m.ProtoReflect().Descriptor().FullName())
		}
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
}

// Check runs one fuzz input and fails t if the server broke a rule.
// Inputs that are not a valid message of the RPC's request type are
// skipped: gRPC refuses them before any handler runs.
func (r RPCFuzz) Check(t *testing.T, method uint8, data []byte) {
	t.Helper()
	ms := r.Methods()
	md := ms[int(method)%len(ms)]
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatalf("%s: request type not registered: %v", md.FullName(), err)
	}
	req := mt.New().Interface()
	if err := proto.Unmarshal(data, req); err != nil {
		t.Skip("not a request message")
	}
	r.rename(req.ProtoReflect())
	before := TableDigests(t, r.DB, r.Schema)
	blocks := md.IsStreamingServer() || asksToWait(req)
	err = r.call(md, req, blocks)
	code := status.Code(err)
	switch {
	case serverFault(code) || code == codes.Unimplemented:
		t.Fatalf("%s(%v) answered %s: %v", md.Name(), req, code, err)
	case code == codes.DeadlineExceeded:
		if !blocks {
			t.Fatalf("%s(%v) did not answer within %s", md.Name(), req, r.Timeout)
		}
	}
	if err == nil || code == codes.DeadlineExceeded && md.IsStreamingServer() {
		return
	}
	if after := TableDigests(t, r.DB, r.Schema); !maps.Equal(before, after) {
		t.Fatalf("%s(%v) was refused (%v) but changed the tables:\nbefore %v\nafter  %v", md.Name(), req, err, before, after)
	}
}

// rename replaces placeholders with Names' values in m's string fields,
// nested messages included.
func (r RPCFuzz) rename(m protoreflect.Message) {
	if len(r.Names) == 0 {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := v.List()
			for i := range l.Len() {
				if n, ok := r.Names[l.Get(i).String()]; ok {
					l.Set(i, protoreflect.ValueOfString(n))
				}
			}
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				r.rename(l.Get(i).Message())
			}
		case fd.IsMap():
		case fd.Kind() == protoreflect.StringKind:
			if n, ok := r.Names[v.String()]; ok {
				m.Set(fd, protoreflect.ValueOfString(n))
			}
		case fd.Message() != nil:
			r.rename(v.Message())
		}
		return true
	})
}

// asksToWait says whether req has a field wait set: such a request may
// block until the call's deadline by design.
func asksToWait(req proto.Message) bool {
	m := req.ProtoReflect()
	f := m.Descriptor().Fields().ByName("wait")
	return f != nil && m.Has(f)
}

// blockingTimeout is how long a call that may block by design runs: long
// enough to see the answers a server stream has at once, short enough for
// fuzzing (and the fuzzer's minimising, which reruns inputs) to go on.
const blockingTimeout = 250 * time.Millisecond

func (r RPCFuzz) call(md protoreflect.MethodDescriptor, req proto.Message, blocks bool) error {
	timeout := r.Timeout
	if blocks {
		timeout = min(timeout, blockingTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	name := fmt.Sprintf("/%s/%s", r.Service.FullName(), md.Name())
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return status.Errorf(codes.Unimplemented, "response type: %v", err)
	}
	resp := mt.New().Interface()
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return r.Conn.Invoke(ctx, name, req, resp)
	}
	desc := &grpc.StreamDesc{StreamName: string(md.Name()), ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}
	s, err := r.Conn.NewStream(ctx, desc, name)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		if err := s.RecvMsg(resp); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !md.IsStreamingServer() {
			return nil
		}
	}
}

// WantNotInternal fails t if err is a status no caller's input may cause:
// INTERNAL, UNKNOWN or DATA_LOSS (a recovered panic is INTERNAL).
func WantNotInternal(t testing.TB, err error) {
	t.Helper()
	if serverFault(status.Code(err)) {
		t.Fatalf("answered %s: %v", status.Code(err), err)
	}
}

func serverFault(c codes.Code) bool {
	return c == codes.Internal || c == codes.Unknown || c == codes.DataLoss
}

// TableDigests returns, for every table of schema, its row count and a
// digest of its rows, to tell whether a call wrote anything.
func TableDigests(t testing.TB, db *pgxpool.Pool, schema string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, schema)
	if err != nil {
		t.Fatalf("list tables of %s: %v", schema, err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables of %s: %v", schema, err)
	}
	out := make(map[string]string, len(tables))
	for _, tbl := range tables {
		ident := pgx.Identifier{schema, tbl}.Sanitize()
		var (
			n    int64
			text string
		)
		if err := db.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '') FROM `+ident+` t`).Scan(&n, &text); err != nil {
			t.Fatalf("read %s: %v", ident, err)
		}
		sum := md5.Sum([]byte(text))
		out[tbl] = fmt.Sprintf("%d rows %s", n, hex.EncodeToString(sum[:4]))
	}
	return out
}
