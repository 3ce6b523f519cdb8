// Package webhook is the Notifier's webhook channel: an HTTP POST of the
// message's JSON, signed so the receiver knows it came from slotwatch and
// was not replayed, with the delivery's idempotency key.
//
// Headers:
//
//	Content-Type: application/json
//	Idempotency-Key: <key, the same on every retry of one delivery>
//	Slotwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]
//
// There is one v1 per active secret: two during a rotation, so a receiver
// that still holds only the old secret, or already only the new one,
// verifies either way. Signing and verifying are package webhooksig's
// (public: a receiver in Go verifies with webhooksig.Verify, docs/NOTIFIER.md).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
)

// Header names (package webhooksig's, the receiver's side).
const (
	SignatureHeader   = webhooksig.SignatureHeader
	IdempotencyHeader = webhooksig.IdempotencyHeader
)

// DefaultTimeout bounds one POST when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Config configures the sender.
type Config struct {
	// Timeout bounds one POST, answer included (NOTIFIER_WEBHOOK_TIMEOUT).
	Timeout time.Duration
	// Transport carries the requests; http.DefaultTransport's clone when
	// nil.
	Transport http.RoundTripper
	// Now stamps signatures; time.Now when nil.
	Now func() time.Time
}

// Sender posts webhooks. It implements channel.Sender.
type Sender struct {
	client *http.Client
	now    func() time.Time
}

// New returns a sender.
func New(cfg Config) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The delivery loop's workers often post to one receiver at once:
		// keep a connection for each rather than net/http's default two.
		t.MaxIdleConnsPerHost = 32
		cfg.Transport = t
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{
		client: &http.Client{
			Transport: cfg.Transport,
			Timeout:   cfg.Timeout,
			// A redirect is answered as it is: following it would post the
			// signed body to an address nobody registered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: cfg.Now,
	}
}

// Kind implements channel.Sender.
func (s *Sender) Kind() channel.Kind { return channel.Webhook }

// Timeout implements channel.Timed: one POST, answer included.
func (s *Sender) Timeout() time.Duration { return s.client.Timeout }

// Send posts msg.JSON to msg.To. A 2xx is delivered; 429 (or 503) with
// Retry-After is a RetryAfterError; 408, 429 and 5xx are temporary; any
// other answer (4xx, a redirect) is permanent.
func (s *Sender) Send(ctx context.Context, msg channel.Message) error {
	if len(msg.SigningSecrets) == 0 {
		return channel.Permanent(errors.New("webhook has no signing secret"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, msg.To, bytes.NewReader(msg.JSON))
	if err != nil {
		return channel.Permanent(fmt.Errorf("webhook request: %w", unwrapURL(err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slotwatch-notifier")
	req.Header.Set(IdempotencyHeader, msg.IdempotencyKey)
	req.Header.Set(SignatureHeader, webhooksig.Sign(s.now(), msg.JSON, msg.SigningSecrets...))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	answer := fmt.Errorf("webhook answered %s: %q", resp.Status, strings.TrimSpace(string(snippet)))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
			return channel.RetryAfter(d, answer)
		}
		return answer
	case code == http.StatusRequestTimeout || code >= 500:
		return answer
	default:
		return channel.Permanent(answer)
	}
}

// unwrapURL drops net/http's "Post \"URL\":" prefix: a webhook URL may carry
// a token of its receiver in its query.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(1<<62)/int64(time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
