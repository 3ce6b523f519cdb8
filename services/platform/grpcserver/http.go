package grpcserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// MaxRequestBodyBytes is the largest request body any HTTP server of the
// platform reads; a bigger one is answered 413 without being read further.
const MaxRequestBodyBytes = 1 << 20

// Timeouts and header limit of every HTTP server Serve starts. A request
// has 10s for its headers and 30s to arrive whole, its handler 60s after
// the headers to answer, and a kept-alive connection may idle 2 minutes. No handler here streams
// (the JSON gateway has no route for WatchEvents); one that does would
// lift its own write deadline with http.NewResponseController(w).
// SetWriteDeadline(time.Time{}), which the wrapped writer passes through.
var defaultHTTPTimeouts = httpTimeouts{
	readHeader: 10 * time.Second,
	read:       30 * time.Second,
	write:      60 * time.Second,
	idle:       2 * time.Minute,
}

const httpMaxHeaderBytes = 64 << 10

type httpTimeouts struct{ readHeader, read, write, idle time.Duration }

// httpServer is the one way Serve makes an HTTP server: timeouts, a header
// limit and a body limit for every handler, and for an API handler (a JSON
// gateway) with auth on, a 401 before the body is read when the request
// carries no Authorization header at all.
func (s *Server) httpServer(h http.Handler, api bool) *http.Server {
	h = limitBody(h)
	if api && s.cfg.Security.Tokens != nil {
		h = requireAuthorization(h)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.httpTimeouts.readHeader,
		ReadTimeout:       s.httpTimeouts.read,
		WriteTimeout:      s.httpTimeouts.write,
		IdleTimeout:       s.httpTimeouts.idle,
		MaxHeaderBytes:    httpMaxHeaderBytes,
	}
}

// OpenAPIPath is where an API handler serves its OpenAPI document, the
// one route anyone may read without a token (it calls no RPC).
const OpenAPIPath = "/openapi.json"

// requireAuthorization answers 401 to a request without an Authorization
// header, before anything reads its body: an anonymous caller costs the
// server its headers only. A header that is there is judged by the gRPC
// auth interceptor, as for any other caller.
func requireAuthorization(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		public := r.Method == http.MethodGet && r.URL.Path == OpenAPIPath
		if r.Header.Get("Authorization") == "" && !public {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeHTTPError(w, http.StatusUnauthorized, codes.Unauthenticated, "missing token: send the header Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

// challengeWriter adds the WWW-Authenticate challenge every 401 must
// carry to the ones the handler writes (a token the gRPC chain refused).
type challengeWriter struct{ http.ResponseWriter }

func (w *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *challengeWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var tooLargeMessage = fmt.Sprintf("request body larger than %d bytes", MaxRequestBodyBytes)

// limitBody answers 413 to a body over MaxRequestBodyBytes: at once when
// Content-Length says so, and otherwise in place of whatever the handler
// answers after its read stopped at the limit (the gateway would say 400).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxRequestBodyBytes {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, tooLargeMessage)
			return
		}
		body := &cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, MaxRequestBodyBytes)}
		r.Body = body
		next.ServeHTTP(&cappedWriter{ResponseWriter: w, body: body}, r)
	})
}

// cappedBody remembers that a read hit the limit.
type cappedBody struct {
	io.ReadCloser
	overLimit atomic.Bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.overLimit.Store(true)
	}
	return n, err
}

// cappedWriter turns the handler's answer into a 413 once its body read
// hit the limit, and drops what the handler writes after that.
type cappedWriter struct {
	http.ResponseWriter
	body     *cappedBody
	wrote    bool
	replaced bool
}

func (w *cappedWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && !w.replaced { // informational: the real answer follows
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.wrote {
		return
	}
	w.wrote = true
	if w.body.overLimit.Load() {
		w.replaced = true
		writeHTTPError(w.ResponseWriter, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, tooLargeMessage)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *cappedWriter) Flush() {
	if !w.replaced {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *cappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeHTTPError answers in the JSON shape the gateway gives its own
// errors (a google.rpc.Status): {"code", "message", "details"}.
func writeHTTPError(w http.ResponseWriter, httpCode int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(httpCode)
	_ = json.NewEncoder(w).Encode(struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
		Details []any  `json:"details"`
	}{uint32(code), msg, []any{}})
}
