package grpcserver_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
)

// rawH2 is a client that speaks HTTP/2 frames itself, so it can do what a
// polite gRPC client never does: open more streams than the server allows,
// or ping as fast as it likes. It is what an attacker would use.
type rawH2 struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

func dialRawH2(t *testing.T, addr string) *rawH2 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &rawH2{t: t, c: c, fr: fr}
}

// openWatch opens a health Watch stream (no token needed) with its request.
func (h *rawH2) openWatch(id uint32, host string) {
	h.t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Watch"}, {":authority", host},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	// An empty HealthCheckRequest: not compressed, length 0.
	if err := h.fr.WriteData(id, true, []byte{0, 0, 0, 0, 0}); err != nil {
		h.t.Fatal(err)
	}
}

// next reads the next frame, answering the server's settings and pings as
// a client must.
func (h *rawH2) next() http2.Frame {
	h.t.Helper()
	f, err := h.fr.ReadFrame()
	if err != nil {
		h.t.Fatalf("read frame: %v", err)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			_ = h.fr.WriteSettingsAck()
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			_ = h.fr.WritePing(true, f.Data)
		}
	}
	return f
}

func TestLimitsHoldAgainstAClientThatIgnoresThem(t *testing.T) {
	t.Parallel()
	serve := func(t *testing.T, count *inFlight) string {
		t.Helper()
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Policy: policy,
			Security: grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))},
			Stream:   []grpc.StreamServerInterceptor{count.interceptor}})
		srv.GRPC.RegisterService(&desc, struct{}{})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveUntilCleanup(t, srv, lis)
		return lis.Addr().String()
	}

	t.Run("StreamsPastTheCapAreRefused", func(t *testing.T) {
		t.Parallel()
		count := &inFlight{}
		addr := serve(t, count)
		h := dialRawH2(t, addr)
		const extra = 200
		const n = grpcserver.DefaultMaxConcurrentStreams + extra
		for i := range n {
			h.openWatch(uint32(2*i+1), addr) //nolint:gosec // small
		}
		answered, refused := 0, 0
		for answered+refused < n {
			switch f := h.next().(type) {
			case *http2.MetaHeadersFrame:
				if f.PseudoValue("status") != "" { // response headers, not trailers
					answered++
				}
			case *http2.RSTStreamFrame:
				if f.ErrCode != http2.ErrCodeRefusedStream {
					t.Fatalf("stream %d reset with %v", f.StreamID, f.ErrCode)
				}
				refused++
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v %q", f.ErrCode, f.DebugData())
			}
		}
		if answered != grpcserver.DefaultMaxConcurrentStreams || refused != extra {
			t.Fatalf("%d streams answered, %d refused; want %d and %d", answered, refused, grpcserver.DefaultMaxConcurrentStreams, extra)
		}
		if peak := count.peak.Load(); peak > grpcserver.DefaultMaxConcurrentStreams {
			t.Fatalf("the server ran %d streams of one connection at once", peak)
		}
	})

	t.Run("APingFloodIsSentAway", func(t *testing.T) {
		t.Parallel()
		h := dialRawH2(t, serve(t, &inFlight{}))
		for i := range 10 {
			if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
				break // the server may hang up before the last ones
			}
		}
		for {
			if f, ok := h.next().(*http2.GoAwayFrame); ok {
				if f.ErrCode != http2.ErrCodeEnhanceYourCalm || string(f.DebugData()) != "too_many_pings" {
					t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", f.ErrCode, f.DebugData())
				}
				return
			}
		}
	})
}
