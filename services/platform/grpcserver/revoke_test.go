package grpcserver_test

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// The follow service: Follow is a long-lived server stream (like Requests'
// WatchEvents) that sends one message when it starts and one on every
// pulse, until its context ends.
const followSvc = "slotwatch.test.v1.FollowService"

var followPolicy = auth.Policy{"/" + followSvc + "/Follow": {auth.RoleReader}}

// A second reader token, that stays valid while the other is revoked.
const otherReaderTok = "other-reader-token-0123456789abcdef"

type follower struct {
	mu   sync.Mutex
	beat chan struct{}
}

func (f *follower) next() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.beat
}

// pulse makes every open Follow stream send one message.
func (f *follower) pulse() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.beat)
	f.beat = make(chan struct{})
}

var followDesc = grpc.ServiceDesc{
	ServiceName: followSvc,
	HandlerType: (*testService)(nil),
	Streams: []grpc.StreamDesc{{StreamName: "Follow", ServerStreams: true, Handler: func(srv any, ss grpc.ServerStream) error {
		f := srv.(*follower)
		if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		beat := f.next()
		if err := ss.SendMsg(&emptypb.Empty{}); err != nil { // ready: the next pulse reaches this stream
			return err
		}
		for {
			select {
			case <-ss.Context().Done():
				return status.FromContextError(ss.Context().Err()).Err()
			case <-beat:
				beat = f.next()
				if err := ss.SendMsg(&emptypb.Empty{}); err != nil {
					return err
				}
			}
		}
	}}},
}

// startFollow serves the follow service with the real chain over bufconn,
// with the tokens file at path re-read every few milliseconds.
func startFollow(t *testing.T, path string) (*grpc.ClientConn, *follower) {
	t.Helper()
	tokens := openTokens(t, path, auth.ReloadEvery(10*time.Millisecond))
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t),
		Security: grpcserver.Security{Tokens: tokens}, Policy: followPolicy})
	f := &follower{beat: make(chan struct{})}
	srv.GRPC.RegisterService(&followDesc, f)
	lis := bufconn.Listen(1 << 20)
	serveUntilCleanup(t, srv, lis)
	return authtest.DialBufconn(t, lis, ""), f
}

// follow opens a Follow stream with tok and waits for its first message.
func follow(t *testing.T, ctx context.Context, conn *grpc.ClientConn, tok string) grpc.ClientStream {
	t.Helper()
	s, err := tryFollow(t, ctx, conn, tok)
	if err != nil {
		t.Fatalf("the stream did not start: %v", err)
	}
	return s
}

func tryFollow(t *testing.T, ctx context.Context, conn *grpc.ClientConn, tok string) (grpc.ClientStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return openStream(withTokenCtx(ctx, tok), conn, &followDesc.Streams[0], "/"+followSvc+"/Follow")
}

// ended waits (generously: this is not a timing test) for s to end and
// returns its error; messages still in flight are skipped.
func ended(t *testing.T, s grpc.ClientStream) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for {
			if err := s.RecvMsg(new(emptypb.Empty)); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end after its authorization changed")
		return nil
	}
}

func wantEnded(t *testing.T, s grpc.ClientStream, want codes.Code) {
	t.Helper()
	err := ended(t, s)
	testkit.WantCode(t, err, want)
	for _, tok := range []string{adminTok, readerTok, otherReaderTok} {
		if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), tok[:12]) {
			t.Fatalf("the status holds a token: %v", err)
		}
	}
	t.Logf("ended with %v", err)
}

// stillFollows pulses and wants s to receive that message.
func stillFollows(t *testing.T, f *follower, s grpc.ClientStream) {
	t.Helper()
	f.pulse()
	if err := s.RecvMsg(new(emptypb.Empty)); err != nil {
		t.Fatalf("a stream whose token is still valid: %v", err)
	}
}

// rewrite replaces the file whole, as the kubelet does a Secret's (a
// write to a new file, then a rename): a reload never sees it half-written.
// (An edit in place is covered by auth's TestReloadLooksTwiceBeforeFailingClosed.)
func rewrite(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestStreamEndsWhenItsAuthorizationChanges(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := writeTokens(t, "admin "+adminTok+"\nreader "+readerTok+"\nreader "+otherReaderTok+"\n")
	conn, f := startFollow(t, path)

	revoked := follow(t, ctx, conn, readerTok)
	demoted := follow(t, ctx, conn, otherReaderTok)
	admin := follow(t, ctx, conn, adminTok)
	stillFollows(t, f, revoked)
	stillFollows(t, f, demoted)
	stillFollows(t, f, admin)

	t.Run("RevokedTokenIsUnauthenticated", func(t *testing.T) {
		rewrite(t, path, "admin "+adminTok+"\nreader "+otherReaderTok+"\n")
		wantEnded(t, revoked, codes.Unauthenticated)
		// The reload that ended it left the others alone.
		stillFollows(t, f, demoted)
		stillFollows(t, f, admin)
	})

	t.Run("RoleNoLongerAllowedIsPermissionDenied", func(t *testing.T) {
		rewrite(t, path, "admin "+adminTok+"\nchecker "+otherReaderTok+"\n")
		wantEnded(t, demoted, codes.PermissionDenied)
		stillFollows(t, f, admin)
	})

	t.Run("ReloadThatKeepsTheRoleAllowedChangesNothing", func(t *testing.T) {
		// admin keeps its token; a reader is added; the file changes.
		rewrite(t, path, "admin "+adminTok+"\nreader "+readerTok+"\n")
		deadline := time.Now().Add(30 * time.Second)
		reader, err := tryFollow(t, ctx, conn, readerTok)
		for ; err != nil; reader, err = tryFollow(t, ctx, conn, readerTok) { // until the new file is in force
			testkit.WantCode(t, err, codes.Unauthenticated)
			if time.Now().After(deadline) {
				t.Fatal("the re-added token never worked")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stillFollows(t, f, admin)
		stillFollows(t, f, reader)
	})

	t.Run("DeletedFileEndsEveryStreamAndAGoodOneRestores", func(t *testing.T) {
		// Fail closed: no file, no valid token, not the last set kept.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		wantEnded(t, admin, codes.Unauthenticated)
		_, err := tryFollow(t, ctx, conn, adminTok)
		testkit.WantCode(t, err, codes.Unauthenticated)

		rewrite(t, path, auth.DigestLine(auth.RoleAdmin, "ops", adminTok)+"\n")
		deadline := time.Now().Add(30 * time.Second)
		again, err := tryFollow(t, ctx, conn, adminTok)
		for ; err != nil; again, err = tryFollow(t, ctx, conn, adminTok) {
			testkit.WantCode(t, err, codes.Unauthenticated)
			if time.Now().After(deadline) {
				t.Fatal("a good file did not restore service")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stillFollows(t, f, again)
	})
}

// TestNoGoroutineLeftPerStream opens and closes many streams and wants the
// goroutine count back where it was: each stream's watcher returns when the
// stream ends, and the one shared re-reading goroutine when the last stream
// does. Not parallel, so that other tests do not move the count.
func TestNoGoroutineLeftPerStream(t *testing.T) {
	path := writeTokens(t, allTokens)
	conn, f := startFollow(t, path)
	warmCtx, warmCancel := context.WithCancel(context.Background())
	warm := follow(t, warmCtx, conn, readerTok) // the connection and the re-reader are up
	stillFollows(t, f, warm)
	base := runtime.NumGoroutine()

	const n = 50
	ctx, cancel := context.WithCancel(context.Background())
	for range n {
		follow(t, ctx, conn, readerTok)
	}
	during := runtime.NumGoroutine()
	if during < base+2*n { // a handler and a watcher each, at least
		t.Fatalf("%d goroutines before, %d with %d streams open: is each stream watched?", base, during, n)
	}
	cancel()
	waitGoroutines(t, "after the streams closed", func(now int) bool { return now <= base+5 })
	// The last stream gone, its handler, its watcher and the re-reader end.
	warmCancel()
	waitGoroutines(t, "after the last stream closed", func(now int) bool { return now <= base-3 })
}

// waitGoroutines waits (generously) until ok holds for the goroutine count.
func waitGoroutines(t *testing.T, when string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := runtime.NumGoroutine()
		if ok(now) {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines %s:\n%s", now, when, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
