package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/telegram"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

const testToken = "123456789:AAHtestTOKENfor-the_bot0123456789abcdef"

// botAPI speaks the part of the Bot API the sender uses, as Telegram
// does: POST /bot<token>/sendMessage with a JSON body, answered with
// {"ok":..., "result"|"error_code","description","parameters"}. A chat's
// entry in answers makes it answer that (status, JSON) instead of
// accepting.
type botAPI struct {
	*httptest.Server
	mu      sync.Mutex
	got     []gotMessage
	ncalls  int
	answers map[string]answer
}

type gotMessage struct {
	ChatID    json.RawMessage `json:"chat_id"`
	Text      string          `json:"text"`
	ParseMode string          `json:"parse_mode"`
}

type answer struct {
	status int
	body   string
}

func startBotAPI(t *testing.T) *botAPI {
	t.Helper()
	b := &botAPI{answers: map[string]answer{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func apiError(code int, desc string) string {
	return fmt.Sprintf(`{"ok":false,"error_code":%d,"description":%q}`, code, desc)
}

func (b *botAPI) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.ncalls++
	b.mu.Unlock()
	token, method, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	switch {
	case !strings.HasPrefix(r.URL.Path, "/bot") || !ok || method != "sendMessage" || r.Method != http.MethodPost:
		reply(w, http.StatusNotFound, apiError(404, "Not Found"))
		return
	case token != testToken:
		reply(w, http.StatusUnauthorized, apiError(401, "Unauthorized"))
		return
	case r.Header.Get("Content-Type") != "application/json":
		reply(w, http.StatusBadRequest, apiError(400, "Bad Request: message text is empty"))
		return
	}
	var m gotMessage
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || len(m.ChatID) == 0 || m.Text == "" {
		reply(w, http.StatusBadRequest, apiError(400, "Bad Request: message text is empty"))
		return
	}
	b.mu.Lock()
	a, scripted := b.answers[string(m.ChatID)]
	if !scripted {
		b.got = append(b.got, m)
	}
	n := len(b.got)
	b.mu.Unlock()
	if scripted {
		reply(w, a.status, a.body)
		return
	}
	reply(w, http.StatusOK, fmt.Sprintf(`{"ok":true,"result":{"message_id":%d,"chat":{"id":%s},"date":%d,"text":%q}}`,
		n, m.ChatID, time.Now().Unix(), m.Text))
}

func (b *botAPI) answer(chat string, status int, body string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answers[chat] = answer{status, body}
}

func (b *botAPI) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ncalls
}

func (b *botAPI) received() []gotMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]gotMessage(nil), b.got...)
}

func (b *botAPI) countFor(chat string) int {
	n := 0
	for _, m := range b.received() {
		if string(m.ChatID) == chat {
			n++
		}
	}
	return n
}

func config(t *testing.T, api *botAPI) telegram.Config {
	t.Helper()
	return telegram.Config{
		TokenFile:  authtest.WriteFile(t, "telegram-token", testToken+"\n"),
		BaseURL:    api.URL,
		ChatRate:   1000, // the limiter's own tests set it
		GlobalRate: 1000,
	}
}

func newSender(t *testing.T, cfg telegram.Config) *telegram.Sender {
	t.Helper()
	s, err := telegram.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testMessage = channel.Message{
	IdempotencyKey: "d6f1c0de-0001",
	To:             "424242",
	Subject:        "Slot found: Lisbon <Consulate>, 12 January 2027",
	Text:           "A slot is free on 12 January 2027 at 09:30.",
}

func noToken(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), strings.SplitN(testToken, ":", 2)[1]) {
		t.Fatalf("error %q holds the bot token", err)
	}
}

func TestSend(t *testing.T) {
	t.Parallel()

	t.Run("SendsSubjectAndTextAsPlainText", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		if err := newSender(t, config(t, api)).Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		got := api.received()
		if len(got) != 1 {
			t.Fatalf("API received %d messages", len(got))
		}
		want := testMessage.Subject + "\n\n" + testMessage.Text
		if string(got[0].ChatID) != "424242" || got[0].Text != want || got[0].ParseMode != "" {
			t.Fatalf("got chat_id %s text %q parse_mode %q; want the integer 424242, %q, none", got[0].ChatID, got[0].Text, got[0].ParseMode, want)
		}
	})

	t.Run("SendsPlainTextToAChannelEvenWithEmailHTML", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		m := testMessage
		m.HTML = "<html><body><p>A slot is free on <b>12 January 2027</b>.</p></body></html>"
		m.To = "@slotwatch_alerts"
		if err := newSender(t, config(t, api)).Send(testkit.Context(t), m); err != nil {
			t.Fatal(err)
		}
		got := api.received()[0]
		want := testMessage.Subject + "\n\n" + testMessage.Text
		if string(got.ChatID) != `"@slotwatch_alerts"` || got.Text != want || got.ParseMode != "" {
			t.Fatalf("got chat_id %s text %q parse_mode %q; want the channel's name, %q, none", got.ChatID, got.Text, got.ParseMode, want)
		}
	})

	t.Run("BadChatIsPermanentWithoutACall", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		s := newSender(t, config(t, api))
		for _, to := range []string{"", "abc", "12ab", "@x", "0"} {
			m := testMessage
			m.To = to
			if err := s.Send(testkit.Context(t), m); !channel.IsPermanent(err) {
				t.Errorf("chat %q: error %v, want permanent", to, err)
			}
		}
		empty := testMessage
		empty.Subject, empty.Text = "", " "
		if err := s.Send(testkit.Context(t), empty); !channel.IsPermanent(err) {
			t.Errorf("empty message: error %v, want permanent", err)
		}
		if api.calls() != 0 {
			t.Errorf("the API was called %d times", api.calls())
		}
	})

	t.Run("TooManyRequestsWaitsRetryAfter", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		api.answer("424242", http.StatusTooManyRequests,
			`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`)
		err := newSender(t, config(t, api)).Send(testkit.Context(t), testMessage)
		var ra *channel.RetryAfterError
		if !errors.As(err, &ra) || ra.After != 7*time.Second || ra.NotSent || channel.IsPermanent(err) {
			t.Fatalf("error %v, want RetryAfter 7s, sent (an attempt that counts)", err)
		}
	})

	t.Run("FloodWaitHoldsTheChatWithoutCalls", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		api.answer("5", http.StatusTooManyRequests,
			`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3600","parameters":{"retry_after":3600}}`)
		s := newSender(t, config(t, api))
		m := testMessage
		m.To = "5"
		if err := s.Send(testkit.Context(t), m); err == nil {
			t.Fatal("429 taken for success")
		} else if _, deferred := channel.IsDeferred(err); deferred {
			t.Fatalf("Telegram's 429 %v taken for a send held back", err)
		}
		api.answer("5", http.StatusOK, "") // would accept now: the sender must not ask
		calls := api.calls()
		err := s.Send(testkit.Context(t), m)
		var ra *channel.RetryAfterError
		if !errors.As(err, &ra) || !ra.NotSent || ra.After <= time.Minute || ra.After > time.Hour {
			t.Fatalf("error %v: want Deferred (not sent) for the rest of the hour", err)
		}
		if api.calls() != calls {
			t.Fatal("the sender called the API during the chat's flood wait")
		}
		if err := s.Send(testkit.Context(t), testMessage); err != nil {
			t.Fatalf("another chat: %v", err)
		}
	})

	t.Run("RefusalsOfTheChatArePermanent", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		api.answer("1", http.StatusBadRequest, apiError(400, "Bad Request: chat not found"))
		api.answer("2", http.StatusForbidden, apiError(403, "Forbidden: bot was blocked by the user"))
		api.answer("3", http.StatusBadRequest,
			`{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}`)
		s := newSender(t, config(t, api))
		for chat, want := range map[string]string{"1": "chat not found", "2": "blocked", "3": "-1001234567890"} {
			m := testMessage
			m.To = chat
			err := s.Send(testkit.Context(t), m)
			if !channel.IsPermanent(err) || !strings.Contains(err.Error(), want) {
				t.Errorf("chat %s: error %v, want permanent naming %q", chat, err, want)
			}
		}
	})

	t.Run("ServerErrorsAreTemporary", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		api.answer("1", http.StatusInternalServerError, apiError(500, "Internal Server Error"))
		api.answer("2", http.StatusBadGateway, "<html>502 Bad Gateway</html>")
		s := newSender(t, config(t, api))
		for _, chat := range []string{"1", "2"} {
			m := testMessage
			m.To = chat
			err := s.Send(testkit.Context(t), m)
			var ra *channel.RetryAfterError
			if err == nil || channel.IsPermanent(err) || errors.As(err, &ra) {
				t.Errorf("chat %s: error %v, want a plain temporary one", chat, err)
			}
		}
	})

	t.Run("RefusedTokenIsTemporaryAndNotShown", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.TokenFile = authtest.WriteFile(t, "other-token", "987654321:AAHanother-token-entirely_0123456789")
		err := newSender(t, cfg).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) || !strings.Contains(err.Error(), "NOTIFIER_TELEGRAM_TOKEN_FILE") ||
			strings.Contains(err.Error(), "AAHanother-token-entirely") {
			t.Fatalf("error %v: want a temporary one pointing at the token file, without the token", err)
		}
	})

	t.Run("TokenNeverInTransportErrors", func(t *testing.T) {
		t.Parallel()
		// The API is gone: net/http's error would print the URL, token and all.
		api := startBotAPI(t)
		s := newSender(t, config(t, api))
		api.Close()
		err := s.Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) {
			t.Fatalf("error %v, want a temporary one", err)
		}
		noToken(t, err)

		// A cancelled call says so, still without the token.
		api2 := startBotAPI(t)
		ctx, cancel := context.WithCancel(testkit.Context(t))
		cancel()
		err = newSender(t, config(t, api2)).Send(ctx, testMessage)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		noToken(t, err)
	})

	t.Run("RedirectNotFollowed", func(t *testing.T) {
		t.Parallel()
		elsewhere := startBotAPI(t)
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(api.Close)
		cfg := config(t, elsewhere)
		cfg.BaseURL = api.URL
		err := newSender(t, cfg).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) {
			t.Fatalf("error %v, want a temporary one", err)
		}
		noToken(t, err)
		if elsewhere.calls() != 0 {
			t.Fatal("the token followed a redirect")
		}
	})
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	const perHour = 1.0 / 3600

	t.Run("BurstToOneChatGoesOneAtATime", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.ChatRate = perHour // the next turn of a chat is beyond the test's deadline
		s := newSender(t, cfg)
		ctx := testkit.Context(t) // deadline: a minute
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = s.Send(ctx, testMessage) })
		}
		wg.Wait()
		other := testMessage
		other.To = "777"
		if err := s.Send(ctx, other); err != nil {
			t.Fatalf("another chat waits for the busy one: %v", err)
		}
		sent, later := 0, 0
		for _, err := range errs {
			var ra *channel.RetryAfterError
			switch {
			case err == nil:
				sent++
			case errors.As(err, &ra) && ra.NotSent && ra.After > time.Minute && ra.After <= time.Hour:
				later++
			default:
				t.Errorf("error %v: want nil or Deferred (not sent) to the chat's next turn", err)
			}
		}
		if sent != 1 || later != 3 || api.countFor("424242") != 1 || api.countFor("777") != 1 {
			t.Fatalf("sent %d, told to come back %d; API got %d for the chat, %d for the other: want 1, 3, 1, 1",
				sent, later, api.countFor("424242"), api.countFor("777"))
		}
	})

	t.Run("GlobalLimitHoldsAcrossChats", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.GlobalRate = perHour
		s := newSender(t, cfg)
		sent := 0
		for _, chat := range []string{"1", "2", "3"} {
			m := testMessage
			m.To = chat
			err := s.Send(testkit.Context(t), m)
			switch _, deferred := channel.IsDeferred(err); {
			case err == nil:
				sent++
			case !deferred:
				t.Errorf("chat %s: error %v, want Deferred (not sent)", chat, err)
			}
		}
		if sent != 1 || len(api.received()) != 1 {
			t.Fatalf("sent %d, API got %d: want 1", sent, len(api.received()))
		}
	})

	t.Run("WaitsItsTurnWithinTheContext", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.ChatRate = 50 // a turn every 20ms: every message waits, none is refused
		s := newSender(t, cfg)
		for i := range 5 {
			m := testMessage
			m.Text = fmt.Sprint("message ", i)
			if err := s.Send(testkit.Context(t), m); err != nil {
				t.Fatal(err)
			}
		}
		var order []string
		for _, m := range api.received() {
			order = append(order, m.Text[strings.LastIndex(m.Text, " ")+1:])
		}
		if strings.Join(order, ",") != "0,1,2,3,4" {
			t.Fatalf("API received %v, want 0..4 in order", order)
		}
	})

	t.Run("TurnTooCloseToTheDeadlineIsHeldBack", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.ChatRate = 1 // the second message's turn: a second after the first
		s := newSender(t, cfg)
		if err := s.Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		// The turn comes before the deadline, without the second the call
		// may need: a call cut by the deadline would count as an attempt.
		ctx, cancel := context.WithTimeout(testkit.Context(t), 1500*time.Millisecond)
		defer cancel()
		err := s.Send(ctx, testMessage)
		if after, deferred := channel.IsDeferred(err); !deferred || after > time.Second {
			t.Fatalf("error %v: want Deferred to the turn, within a second", err)
		}
		if n := len(api.received()); n != 1 {
			t.Fatalf("API got %d, want 1", n)
		}
	})

	t.Run("CancelledWaitGivesItsTurnBack", func(t *testing.T) {
		t.Parallel()
		api := startBotAPI(t)
		cfg := config(t, api)
		cfg.ChatRate = perHour
		s := newSender(t, cfg)
		if err := s.Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		// No deadline: Send waits for the turn, until cancelled.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Send(ctx, testMessage); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		err := s.Send(testkit.Context(t), testMessage)
		if after, deferred := channel.IsDeferred(err); !deferred || after > time.Hour {
			t.Fatalf("error %v: want Deferred at most an hour (the cancelled wait's turn given back)", err)
		}
		if n := len(api.received()); n != 1 {
			t.Fatalf("API got %d, want 1", n)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	token := authtest.WriteFile(t, "token", testToken)
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.WriteFile(loose, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	nearMiss := authtest.WriteFile(t, "near-miss", "bot"+testToken)
	good := telegram.Config{TokenFile: token}
	if _, err := telegram.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*telegram.Config)
		want   string
	}{
		"NoTokenFile":               {func(c *telegram.Config) { c.TokenFile = "" }, "NOTIFIER_TELEGRAM_TOKEN_FILE is not set"},
		"TokenReadableByOthers":     {func(c *telegram.Config) { c.TokenFile = loose }, "chmod 600"},
		"NotAToken":                 {func(c *telegram.Config) { c.TokenFile = nearMiss }, "not a bot token"},
		"PlainHTTPAcrossTheNetwork": {func(c *telegram.Config) { c.BaseURL = "http://api.telegram.org" }, "loopback"},
		"NotAURL":                   {func(c *telegram.Config) { c.BaseURL = "api.telegram.org" }, "NOTIFIER_TELEGRAM_API_URL"},
		"NegativeRate":              {func(c *telegram.Config) { c.ChatRate = -1 }, "NOTIFIER_TELEGRAM_CHAT_RATE"},
		"NaNRate":                   {func(c *telegram.Config) { c.GlobalRate = math.NaN() }, "NOTIFIER_TELEGRAM_RATE"},
	} {
		cfg := good
		tc.change(&cfg)
		_, err := telegram.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", name, err, tc.want)
		}
		noToken(t, err)
	}
	local := good
	local.BaseURL = "http://127.0.0.1:8081/"
	if _, err := telegram.New(local); err != nil {
		t.Errorf("http to loopback (a local Bot API server): %v", err)
	}
}

func TestLoadConfigReadsTheEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"NOTIFIER_TELEGRAM_TOKEN_FILE": "/run/secrets/telegram-token",
		"NOTIFIER_TELEGRAM_API_URL":    "http://127.0.0.1:8081",
		"NOTIFIER_TELEGRAM_CHAT_RATE":  "0.5",
		"NOTIFIER_TELEGRAM_RATE":       "20",
		"NOTIFIER_TELEGRAM_TIMEOUT":    "3s",
	}
	l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	got := telegram.LoadConfig(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	want := telegram.Config{TokenFile: "/run/secrets/telegram-token", BaseURL: "http://127.0.0.1:8081", ChatRate: 0.5, GlobalRate: 20, Timeout: 3 * time.Second}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	none := telegram.LoadConfig(&envconfig.Loader{Lookup: func(string) (string, bool) { return "", false }})
	if none.TokenFile != "" || none.BaseURL != telegram.DefaultBaseURL || none.ChatRate != 1 || none.GlobalRate != 30 {
		t.Fatalf("defaults: %+v", none)
	}
}
