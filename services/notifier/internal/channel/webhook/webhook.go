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
// verifies either way. Verify is the receiver's side (docs/NOTIFIER.md).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
)

// Header names.
const (
	SignatureHeader   = "Slotwatch-Signature"
	IdempotencyHeader = "Idempotency-Key"
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

// Sign is the Slotwatch-Signature header value of body at t, one v1 per
// secret.
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, sec := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(sec, ts, body)))
	}
	return b.String()
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

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
	req.Header.Set(SignatureHeader, Sign(s.now(), msg.JSON, msg.SigningSecrets...))
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

// Verification errors.
var (
	ErrNoSignature = errors.New("no valid Slotwatch-Signature header")
	ErrTimestamp   = errors.New("signature timestamp outside the replay window")
	ErrMismatch    = errors.New("no signature matches a known secret")
)

// ReplayWindow is how far a signature's timestamp may lie from the
// receiver's clock.
const ReplayWindow = 5 * time.Minute

// Verify checks a Slotwatch-Signature header against the raw body: its
// timestamp within ReplayWindow of now, and one of its v1 signatures made
// with one of secrets (pass the old and the new secret during a rotation).
// Duplicates within the window are the receiver's to drop, by the
// Idempotency-Key header.
func Verify(header string, body []byte, now time.Time, secrets ...[]byte) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > ReplayWindow || d < -ReplayWindow {
		return ErrTimestamp
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, got := range sigs {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrMismatch
}
