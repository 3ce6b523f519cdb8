// Package telegram is the Notifier's Telegram channel: the Bot API's
// sendMessage, paced to Telegram's limits for bots (per chat and in all) so
// that a burst of slots does not earn the bot a flood wait.
package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/secretfile"
)

// Sender sends messages with a bot. It is safe for concurrent use; its
// rate limits hold across all its callers.
type Sender struct {
	endpoint string // {base}/bot<token>/sendMessage: never in an error
	http     *http.Client
	timeout  time.Duration

	global   *rate.Limiter
	chatRate rate.Limit

	mu    sync.Mutex
	chats map[string]*chatState
}

var _ channel.Sender = (*Sender)(nil)

// maxIdleChats is how many per-chat limiters are kept before those whose
// chat could send again at once (nothing to remember) are dropped.
const maxIdleChats = 1024

var tokenRE = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)

// New checks cfg and reads the token file.
func New(cfg Config) (*Sender, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.ChatRate == 0 {
		cfg.ChatRate = DefaultChatRate
	}
	if cfg.GlobalRate == 0 {
		cfg.GlobalRate = DefaultGlobalRate
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	var errs []error
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		errs = append(errs, fmt.Errorf("NOTIFIER_TELEGRAM_API_URL=%q: want an https URL such as %s", cfg.BaseURL, DefaultBaseURL))
	case base.Scheme == "http" && !auth.IsLoopback(base.Host):
		errs = append(errs, fmt.Errorf("NOTIFIER_TELEGRAM_API_URL=%q: http only to a loopback address; the bot token travels in the path", cfg.BaseURL))
	}
	if !(cfg.ChatRate > 0) || !(cfg.GlobalRate > 0) { // NaN too
		errs = append(errs, errors.New("NOTIFIER_TELEGRAM_CHAT_RATE and NOTIFIER_TELEGRAM_RATE: want messages per second, above 0"))
	}
	var token string
	if cfg.TokenFile == "" {
		errs = append(errs, errors.New("NOTIFIER_TELEGRAM_TOKEN_FILE is not set: point it at a file (mode 600) holding the bot token from @BotFather"))
	} else if token, err = secretfile.ReadLine(cfg.TokenFile, "NOTIFIER_TELEGRAM_TOKEN_FILE"); err != nil {
		errs = append(errs, err)
	} else if !tokenRE.MatchString(token) {
		// Not the token in the message: a near miss is still a secret.
		errs = append(errs, fmt.Errorf("NOTIFIER_TELEGRAM_TOKEN_FILE %s: the first line is not a bot token (digits, ':', then letters, digits, '_' or '-')", cfg.TokenFile))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("telegram channel: %w", errors.Join(errs...))
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Sender{
		endpoint: base.String() + "/bot" + token + "/sendMessage",
		http:     &c,
		timeout:  cfg.Timeout,
		global:   rate.NewLimiter(rate.Limit(cfg.GlobalRate), 1),
		chatRate: rate.Limit(cfg.ChatRate),
		chats:    map[string]*chatState{},
	}, nil
}

// Kind implements channel.Sender.
func (s *Sender) Kind() channel.Kind { return channel.Telegram }

// Timeout implements channel.Timed: one sendMessage call, after the
// chat's turn.
func (s *Sender) Timeout() time.Duration { return s.timeout }

// sendMessage is the body of the Bot API call. It has no parse_mode: the
// text goes as it is, so that nothing in it (a "<" in a centre's name) can
// make Telegram refuse the message.
type sendMessage struct {
	ChatID any    `json:"chat_id"` // an integer id, or "@channelname"
	Text   string `json:"text"`
}

// apiResponse is every Bot API answer.
type apiResponse struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Send sends msg to the chat msg.To (a chat id, or "@channelname"): the
// subject, a blank line, then the text, as plain text. msg.HTML is
// ignored: it is an email's HTML, and Telegram's parse_mode HTML refuses
// most of its tags (p, ul, table...).
//
// Send first waits its turn under the per-chat and global limits, and to
// the end of a flood wait (429) Telegram set on the chat, within ctx: when
// the turn leaves less than callRoom before ctx's deadline, it sends
// nothing and returns a channel.Deferred error with the wait (no attempt
// of the delivery is counted for it; a 429 of Telegram's is a RetryAfter,
// and counts).
func (s *Sender) Send(ctx context.Context, msg channel.Message) error {
	body, err := s.body(msg)
	if err != nil {
		return channel.Permanent(err)
	}
	if err := s.wait(ctx, msg.To); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram: sendMessage request: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("telegram: sendMessage to chat %s: %w", msg.To, redact(err))
	}
	defer resp.Body.Close()
	err = classify(msg.To, resp)
	var ra *channel.RetryAfterError
	if errors.As(err, &ra) {
		s.pause(msg.To, ra.After)
	}
	return err
}

func (s *Sender) body(msg channel.Message) ([]byte, error) {
	chat, ok := domain.TelegramChat(msg.To)
	if !ok {
		return nil, fmt.Errorf("telegram: chat %q: want a chat id (a non-zero 64-bit integer) or @channelname", msg.To)
	}
	m := sendMessage{ChatID: chat, Text: msg.Text}
	if msg.Subject != "" {
		m.Text = msg.Subject + "\n\n" + msg.Text
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, errors.New("telegram: the message is empty")
	}
	return json.Marshal(m)
}

// classify reads Telegram's answer: 429 waits retry_after; 400 (chat not
// found, a bad message) and 403 (bot blocked, kicked) are permanent, like
// any other 4xx but 401/404, which say the token is wrong (every message
// alike, and fixed by an operator: temporary); 5xx is temporary.
func classify(chat string, resp *http.Response) error {
	var r apiResponse
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	jsonErr := json.Unmarshal(raw, &r)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && r.OK {
		return nil
	}
	desc := r.Description
	if jsonErr != nil || desc == "" {
		desc = http.StatusText(resp.StatusCode)
	}
	err := fmt.Errorf("telegram: sendMessage to chat %s: %d %s", chat, resp.StatusCode, desc)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		after := time.Duration(r.Parameters.RetryAfter) * time.Second
		if after <= 0 {
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
				after = time.Duration(s) * time.Second
			}
		}
		if after <= 0 {
			return err
		}
		return channel.RetryAfter(after, err)
	case code == http.StatusUnauthorized || code == http.StatusNotFound:
		return fmt.Errorf("%w (Telegram refused the bot token: check NOTIFIER_TELEGRAM_TOKEN_FILE and NOTIFIER_TELEGRAM_API_URL)", err)
	case code >= 400 && code < 500:
		if id := r.Parameters.MigrateToChatID; id != 0 {
			err = fmt.Errorf("%w (the group is now the supergroup %d: update the contact)", err, id)
		}
		return channel.Permanent(err)
	}
	return err
}

// redact drops the request URL, which holds the token, from an error of
// net/http: *url.Error prints "Post \"https://.../bot<token>/...\": ...".
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, "the Bot API", ue.Err)
	}
	return err
}

// callRoom is what a turn must leave of the send's deadline for the
// sendMessage call (or NOTIFIER_TELEGRAM_TIMEOUT, if shorter): a call cut
// by the deadline would count as an attempt, and may have reached Telegram.
const callRoom = time.Second

// wait honours a flood wait Telegram set on the chat, then takes a turn
// under the chat's limit, then under the global one. A wait that ends
// within callRoom of ctx's deadline, or after it, is not waited: it comes
// back as channel.Deferred.
func (s *Sender) wait(ctx context.Context, chat string) error {
	latest, bounded := ctx.Deadline()
	latest = latest.Add(-min(s.timeout, callRoom))
	st := s.chat(chat)
	s.mu.Lock()
	until := st.until
	s.mu.Unlock()
	if d := time.Until(until); d > 0 {
		if bounded && time.Now().Add(d).After(latest) {
			return channel.Deferred(d, fmt.Errorf("telegram: chat %s: Telegram asked for a pause until %s", chat, until.UTC().Format(time.RFC3339)))
		}
		if err := sleep(ctx, d); err != nil {
			return fmt.Errorf("telegram: waiting for the pause Telegram asked of chat %s: %w", chat, err)
		}
	}
	if err := waitTurn(ctx, st.lim, bounded, latest, "chat "+chat); err != nil {
		return err
	}
	return waitTurn(ctx, s.global, bounded, latest, "all chats")
}

// waitTurn takes a turn under lim, waiting for it unless it comes after
// latest (when bounded).
func waitTurn(ctx context.Context, lim *rate.Limiter, bounded bool, latest time.Time, what string) error {
	now := time.Now()
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	if bounded && now.Add(d).After(latest) {
		r.CancelAt(now)
		return channel.Deferred(d, fmt.Errorf("telegram: rate limit for %s: the next turn is in %s, too close to the deadline", what, d.Round(time.Millisecond)))
	}
	if err := sleep(ctx, d); err != nil {
		r.Cancel()
		return fmt.Errorf("telegram: waiting for the rate limit of %s: %w", what, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// chatState is what the sender remembers of one chat.
type chatState struct {
	lim *rate.Limiter
	// until is the end of the last flood wait (429) Telegram set on it.
	until time.Time
}

// chat is the state of one chat.
func (s *Sender) chat(id string) *chatState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.chats[id]; ok {
		return st
	}
	if len(s.chats) >= maxIdleChats {
		now := time.Now()
		for k, st := range s.chats {
			if st.lim.TokensAt(now) >= float64(st.lim.Burst()) && !st.until.After(now) {
				delete(s.chats, k)
			}
		}
	}
	st := &chatState{lim: rate.NewLimiter(s.chatRate, 1)}
	s.chats[id] = st
	return st
}

// pause records Telegram's flood wait on a chat: the chat's next messages
// wait for it here instead of earning another 429.
func (s *Sender) pause(chat string, d time.Duration) {
	st := s.chat(chat)
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(st.until) {
		st.until = until
	}
}
