package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// The demo's Notifier side: the Notifier sends email to a MailSink of the
// demo's and posts the operator's webhooks to a HookReceiver of the demo's;
// the demo shows what arrives there.

// demoFrom is the Notifier's NOTIFIER_SMTP_FROM in the demo.
const demoFrom = "slotwatch demo <alerts@demo.test>"

// Hook is one webhook the receiver accepted (its signature verified).
type Hook struct {
	Received time.Time
	// Key is the Idempotency-Key header.
	Key string
	// Type, Cursor, OccurredAt and RequestID are from the JSON body.
	Type       string
	Cursor     int64
	OccurredAt time.Time
	RequestID  string
}

// HookReceiver is an HTTP server on loopback that takes the Notifier's
// webhooks, as an operator's system would: it verifies each signature with
// webhooksig.Verify (401 when it does not hold) and hands accepted ones to
// Arrivals. It counts the accepted ones per Idempotency-Key (the chaos
// suite's record), and answers 500 to every webhook while SetFailing is
// on (a receiver having a bad time).
type HookReceiver struct {
	// Arrivals has each accepted webhook; one that finds it full is dropped
	// (the demo shows, it does not keep).
	Arrivals chan Hook
	// Refused has the reason of each refused request, as Arrivals.
	Refused chan error

	srv    *http.Server
	lis    net.Listener
	secret []byte

	mu       sync.Mutex
	failing  bool
	accepted map[string]int
	failed   int
}

// SetFailing makes the receiver answer 500 to every webhook (on), or
// accept them again (off).
func (h *HookReceiver) SetFailing(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = on
}

// Accepted is how many times each Idempotency-Key was accepted, and how
// many webhooks were answered 500 while failing.
func (h *HookReceiver) Accepted() (keys map[string]int, failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.accepted), h.failed
}

// StartHookReceiver listens on addr ("" picks a free port on 127.0.0.1)
// and accepts webhooks signed with secret until Close.
func StartHookReceiver(addr string, secret []byte) (*HookReceiver, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	h := &HookReceiver{Arrivals: make(chan Hook, 64), Refused: make(chan error, 16), lis: lis, secret: secret, accepted: map[string]int{}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go h.srv.Serve(lis)
	return h, nil
}

// URL is where the Notifier posts.
func (h *HookReceiver) URL() string { return "http://" + h.lis.Addr().String() + "/slotwatch" }

// Close stops the server.
func (h *HookReceiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return h.srv.Shutdown(ctx)
}

func (h *HookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read the body", http.StatusBadRequest)
		return
	}
	now := time.Now()
	if err := webhooksig.Verify(req.Header.Get(webhooksig.SignatureHeader), body, now, h.secret); err != nil {
		select {
		case h.Refused <- err:
		default:
		}
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	key := req.Header.Get(webhooksig.IdempotencyHeader)
	h.mu.Lock()
	failing := h.failing
	if failing {
		h.failed++
	} else {
		h.accepted[key]++
	}
	h.mu.Unlock()
	if failing {
		http.Error(w, "the receiver is failing (chaos)", http.StatusInternalServerError)
		return
	}
	var b struct {
		Type       string    `json:"type"`
		Cursor     int64     `json:"event_cursor"`
		OccurredAt time.Time `json:"occurred_at"`
		Request    struct {
			ID string `json:"id"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &b) // a body it cannot read is still accepted: the signature holds
	select {
	case h.Arrivals <- Hook{Received: now, Key: key, Type: b.Type, Cursor: b.Cursor, OccurredAt: b.OccurredAt, RequestID: b.Request.ID}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// NotifierClient is the part of the Notifier the demo calls.
type NotifierClient interface {
	CreateContact(ctx context.Context, in *notifierv1.CreateContactRequest, opts ...grpc.CallOption) (*notifierv1.CreateContactResponse, error)
	CreateSubscription(ctx context.Context, in *notifierv1.CreateSubscriptionRequest, opts ...grpc.CallOption) (*notifierv1.CreateSubscriptionResponse, error)
}

// Subscribe gives every applicant of ds an email contact (their address,
// in English) and the operator a webhook subscription to hookURL for
// every mission of ds.
func Subscribe(ctx context.Context, nt NotifierClient, ds seed.Dataset, loaded seed.Loaded, hookURL, secret string) error {
	for i, a := range ds.Applicants {
		if i >= len(loaded.ApplicantIDs) {
			break
		}
		req := &notifierv1.CreateContactRequest{
			ApplicantId: loaded.ApplicantIDs[i], Kind: notifierv1.ContactKind_CONTACT_KIND_EMAIL, Address: a.Email, Language: "en",
		}
		// The Notifier asks Requests whether the applicant exists; right
		// after the start it may not have reached it yet (UNAVAILABLE,
		// "retry later").
		err := retryUnavailable(ctx, func() error {
			_, err := nt.CreateContact(ctx, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("email contact of %s: %w", a.FullName, err)
		}
	}
	var missions []string
	for _, m := range ds.Missions {
		missions = append(missions, m.Code)
	}
	if _, err := nt.CreateSubscription(ctx, &notifierv1.CreateSubscriptionRequest{
		MissionCodes: missions, Kind: notifierv1.ContactKind_CONTACT_KIND_WEBHOOK, Address: hookURL, Language: "en", WebhookSecret: secret,
	}); err != nil {
		return fmt.Errorf("operator webhook subscription: %w", err)
	}
	return nil
}

// eventCursor is the event cursor in an idempotency key
// ("slotwatch-<cursor>-<recipient>", the Message-ID's left-hand side).
func eventCursor(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, "slotwatch-")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, "-")
	c, err := strconv.ParseInt(n, 10, 64)
	return c, err == nil
}

// receiveMails hands every message of sink to mails, after writing it to
// dir/NNN.eml (mode 600), until ctx ends.
func receiveMails(ctx context.Context, sink *MailSink, dir string, mails chan<- savedMail) {
	for n := 1; ; n++ {
		m, err := sink.Next(ctx, nil)
		if err != nil {
			return
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d.eml", n))
		if err := writeSecret(path, m.Data); err != nil {
			path = ""
		}
		select {
		case mails <- savedMail{Mail: m, Path: path}:
		case <-ctx.Done():
			return
		}
	}
}

// savedMail is a received message and the file it was saved in.
type savedMail struct {
	Mail
	Path string
}

// clearDir removes the files of an earlier run from dir.
func clearDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// retryUnavailable calls f again, every 200ms, while it fails with
// UNAVAILABLE, until ctx ends.
func retryUnavailable(ctx context.Context, f func() error) error {
	for {
		err := f()
		if status.Code(err) != codes.Unavailable {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
