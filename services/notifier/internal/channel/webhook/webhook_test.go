package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/webhook"
	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
)

var (
	oldSecret = []byte("old-secret-0123456789abcdef0123456789")
	newSecret = []byte("new-secret-0123456789abcdef0123456789")
)

// receiver answers with status (and Retry-After when set) and keeps what it
// got.
type receiver struct {
	status     int
	retryAfter string
	got        chan *http.Request
	bodies     chan []byte
}

func newReceiver(t *testing.T, status int, retryAfter string) (*receiver, string) {
	r := &receiver{status: status, retryAfter: retryAfter, got: make(chan *http.Request, 1), bodies: make(chan []byte, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.got <- req
		r.bodies <- b
		if r.retryAfter != "" {
			w.Header().Set("Retry-After", r.retryAfter)
		}
		if r.status == http.StatusFound {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, "answer")
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hook"
}

func TestSend(t *testing.T) {
	t.Parallel()
	msg := func(url string) channel.Message {
		return channel.Message{IdempotencyKey: "slotwatch-7-abc", To: url, JSON: []byte(`{"a":1}`), SigningSecrets: [][]byte{newSecret, oldSecret}}
	}
	t.Run("SignedPostWithIdempotencyKey", func(t *testing.T) {
		t.Parallel()
		r, url := newReceiver(t, http.StatusNoContent, "")
		if err := webhook.New(webhook.Config{}).Send(context.Background(), msg(url)); err != nil {
			t.Fatal(err)
		}
		req, body := <-r.got, <-r.bodies
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || req.Header.Get(webhook.IdempotencyHeader) != "slotwatch-7-abc" {
			t.Errorf("request: %s %v", req.Method, req.Header)
		}
		sig := req.Header.Get(webhook.SignatureHeader)
		if strings.Count(sig, "v1=") != 2 {
			t.Errorf("want a signature per secret during a rotation: %s", sig)
		}
		if err := webhooksig.Verify(sig, body, time.Now(), oldSecret); err != nil {
			t.Errorf("verify with the old secret: %v", err)
		}
		if strings.Contains(sig, string(newSecret)) {
			t.Error("the secret itself is in the header")
		}
	})
	t.Run("ServerErrorIsTemporary", func(t *testing.T) {
		t.Parallel()
		_, url := newReceiver(t, http.StatusInternalServerError, "")
		err := webhook.New(webhook.Config{}).Send(context.Background(), msg(url))
		var ra *channel.RetryAfterError
		if err == nil || channel.IsPermanent(err) || errors.As(err, &ra) {
			t.Fatalf("err = %v, want a temporary error", err)
		}
	})
	t.Run("TooManyRequestsCarriesRetryAfter", func(t *testing.T) {
		t.Parallel()
		_, url := newReceiver(t, http.StatusTooManyRequests, "7")
		err := webhook.New(webhook.Config{}).Send(context.Background(), msg(url))
		var ra *channel.RetryAfterError
		if !errors.As(err, &ra) || ra.After != 7*time.Second {
			t.Fatalf("err = %v, want RetryAfter 7s", err)
		}
	})
	t.Run("RetryAfterAsHTTPDate", func(t *testing.T) {
		t.Parallel()
		now := time.Now().Truncate(time.Second)
		_, url := newReceiver(t, http.StatusServiceUnavailable, now.Add(90*time.Second).UTC().Format(http.TimeFormat))
		err := webhook.New(webhook.Config{Now: func() time.Time { return now }}).Send(context.Background(), msg(url))
		var ra *channel.RetryAfterError
		if !errors.As(err, &ra) || ra.After != 90*time.Second {
			t.Fatalf("err = %v, want RetryAfter 90s", err)
		}
	})
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusGone, http.StatusFound} {
		t.Run("PermanentOn"+strings.ReplaceAll(http.StatusText(code), " ", ""), func(t *testing.T) {
			t.Parallel()
			_, url := newReceiver(t, code, "")
			if err := webhook.New(webhook.Config{}).Send(context.Background(), msg(url)); !channel.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
		})
	}
	t.Run("UnreachableIsTemporaryAndHidesTheURL", func(t *testing.T) {
		t.Parallel()
		err := webhook.New(webhook.Config{Timeout: time.Second}).Send(context.Background(), msg("http://127.0.0.1:1/hook?token=receiver-secret"))
		if err == nil || channel.IsPermanent(err) || strings.Contains(err.Error(), "receiver-secret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NoSecretIsPermanent", func(t *testing.T) {
		t.Parallel()
		m := msg("http://127.0.0.1:1/")
		m.SigningSecrets = nil
		if err := webhook.New(webhook.Config{}).Send(context.Background(), m); !channel.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	})
}
