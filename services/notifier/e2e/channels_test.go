package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// The channels against real servers of their kind, from the real binary:
// its environment switches them on (NOTIFIER_SMTP_*, NOTIFIER_TELEGRAM_*),
// as in production.

const (
	smtpUser     = "notifier@example.org"
	smtpPassword = "e2e smtp pass-w0rd"
	botToken     = "123456:e2e-bot-token-AAAA"
)

// TestEmailReachesTheContactOnce: a SLOT_FOUND reaches the applicant's
// email contact through a go-smtp server that requires STARTTLS (a test
// certificate the Notifier trusts by NOTIFIER_SMTP_CA_FILE) and AUTH: one
// message, over TLS, authenticated, its Message-ID the delivery's
// idempotency key, no passport number; the delivery log shows it once.
func TestEmailReachesTheContactOnce(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t)
	host, port, _ := net.SplitHostPort(srv.addr)
	s := newSystem(t, options{notifierEnv: []string{
		"NOTIFIER_SMTP_HOST=" + host, "NOTIFIER_SMTP_PORT=" + port, "NOTIFIER_SMTP_TLS=starttls",
		"NOTIFIER_SMTP_CA_FILE=" + srv.caFile, "NOTIFIER_SMTP_FROM=slotwatch <alerts@example.org>",
		"NOTIFIER_SMTP_USERNAME=" + smtpUser,
		"NOTIFIER_SMTP_PASSWORD_FILE=" + authtest.WriteFile(t, "smtp-password", smtpPassword+"\n"),
	}})
	c, err := s.nt.CreateContact(testkit.Context(t), &notifierv1.CreateContactRequest{
		ApplicantId: s.applicant, Kind: notifierv1.ContactKind_CONTACT_KIND_EMAIL, Address: "ada@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := s.createRequests(1)
	if n := s.findSlot(); n != 1 {
		t.Fatalf("matched %d", n)
	}
	eventually(t, "the email delivered", func() bool {
		return len(deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1
	})

	all := deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED)
	if len(all) != 1 {
		t.Fatalf("the log holds %d deliveries, want 1: %v", len(all), all)
	}
	d := all[0]
	if d.GetContactId() != c.GetContact().GetId() || d.GetKind() != notifierv1.ContactKind_CONTACT_KIND_EMAIL ||
		d.GetAttempts() != 1 || d.GetRequestId() != ids[0] || d.GetAddress() != "ada@example.com" {
		t.Errorf("delivery: %v", d)
	}
	got := srv.messages()
	if len(got) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.tls || m.authAs != smtpUser || len(m.to) != 1 || m.to[0] != "ada@example.com" || m.from != "alerts@example.org" {
		t.Errorf("envelope: TLS %v, AUTH as %q, from %q to %v", m.tls, m.authAs, m.from, m.to)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	if want := "<" + d.GetIdempotencyKey() + "@example.org>"; msg.Header.Get("Message-ID") != want {
		t.Errorf("Message-ID %q, want %q", msg.Header.Get("Message-ID"), want)
	}
	if !strings.HasPrefix(d.GetIdempotencyKey(), "slotwatch-") {
		t.Errorf("idempotency key %q", d.GetIdempotencyKey())
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != d.GetSubject() || !strings.HasPrefix(subject, "Slot found: fra paris") {
		t.Errorf("subject %q, the log's %q", subject, d.GetSubject())
	}
	if bytes.Contains(m.data, []byte(passport)) || bytes.Contains(m.data, []byte(smtpPassword)) {
		t.Error("the message holds the passport number or the SMTP password")
	}
}

// TestTelegramReachesTheContactOnce: the same through a local server that
// speaks the Bot API's sendMessage (NOTIFIER_TELEGRAM_API_URL).
func TestTelegramReachesTheContactOnce(t *testing.T) {
	t.Parallel()
	bot := startBotAPI(t)
	s := newSystem(t, options{notifierEnv: []string{
		"NOTIFIER_TELEGRAM_TOKEN_FILE=" + authtest.WriteFile(t, "bot-token", botToken+"\n"),
		"NOTIFIER_TELEGRAM_API_URL=" + bot.url,
	}})
	if _, err := s.nt.CreateContact(testkit.Context(t), &notifierv1.CreateContactRequest{
		ApplicantId: s.applicant, Kind: notifierv1.ContactKind_CONTACT_KIND_TELEGRAM, Address: "424242",
	}); err != nil {
		t.Fatal(err)
	}
	ids := s.createRequests(1)
	if n := s.findSlot(); n != 1 {
		t.Fatalf("matched %d", n)
	}
	eventually(t, "the Telegram message delivered", func() bool {
		return len(deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED)) == 1
	})
	if all := deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED); len(all) != 1 || all[0].GetAttempts() != 1 {
		t.Errorf("the log: %v; want one delivery, one attempt", all)
	}
	got := bot.messages()
	if len(got) != 1 {
		t.Fatalf("the Bot API got %d sendMessage calls, want 1", len(got))
	}
	if got[0].path != "/bot"+botToken+"/sendMessage" || got[0].chat != "424242" {
		t.Errorf("sendMessage %s to chat %q", got[0].path, got[0].chat)
	}
	for _, want := range []string{"Ada Lovelace", "2027-03-03 09:30", "requests book " + ids[0]} {
		if !strings.Contains(got[0].text, want) {
			t.Errorf("the text lacks %q:\n%s", want, got[0].text)
		}
	}
	if strings.Contains(got[0].text, passport) {
		t.Error("the text holds the passport number")
	}
}

// TestTelegramPacingCountsNoAttempt: a burst to one chat, paced at four
// messages a second, sent by 16 workers at once, makes the later ones wait
// for their turn longer than a send's deadline (three quarters of the 4 s
// lease, from the send's start): the sends whose turn comes after it are
// held back without a call and due again at their turn, their attempt not
// counted.
// With one attempt allowed, every delivery still ends delivered on its one
// counted attempt, each message once at the Bot API.
func TestTelegramPacingCountsNoAttempt(t *testing.T) {
	t.Parallel()
	bot := startBotAPI(t)
	s := newSystem(t, options{notifierEnv: []string{
		"NOTIFIER_TELEGRAM_TOKEN_FILE=" + authtest.WriteFile(t, "bot-token", botToken+"\n"),
		"NOTIFIER_TELEGRAM_API_URL=" + bot.url, "NOTIFIER_TELEGRAM_CHAT_RATE=4",
		"NOTIFIER_MAX_ATTEMPTS=1", "LOG_LEVEL=debug", "NOTIFIER_CONCURRENCY=16",
	}})
	if _, err := s.nt.CreateContact(testkit.Context(t), &notifierv1.CreateContactRequest{
		ApplicantId: s.applicant, Kind: notifierv1.ContactKind_CONTACT_KIND_TELEGRAM, Address: "424242",
	}); err != nil {
		t.Fatal(err)
	}
	const n = 20 // five seconds of turns
	s.createRequests(n)
	if got := s.findSlot(); got != n {
		t.Fatalf("matched %d", got)
	}
	eventually(t, "every delivery delivered or dead", func() bool {
		return s.count(`SELECT count(*) FROM notifier.deliveries WHERE state <> 'pending'`) == n
	})
	if dead := deliveries(t, s.reader, notifierv1.DeliveryState_DELIVERY_STATE_DEAD); len(dead) > 0 {
		t.Errorf("%d deliveries dead, the first: %v", len(dead), dead[0])
	}
	if got := s.count(`SELECT count(*) FROM notifier.deliveries WHERE state = 'delivered' AND attempts = 1`); got != n {
		t.Errorf("%d of %d delivered on one counted attempt", got, n)
	}
	if got := len(s.notifiers[0].Log.With("delivery deferred to its channel's next turn; no attempt counted")); got == 0 {
		t.Error("no send was held back: the burst did not outlast a deadline, and the test proves nothing")
	}
	texts := map[string]bool{}
	for _, m := range bot.messages() {
		texts[m.text] = true
	}
	if got := len(bot.messages()); got != n || len(texts) != n {
		t.Errorf("the Bot API got %d sendMessage calls, %d distinct; want %d of each", got, len(texts), n)
	}
}

// smtpServer is a go-smtp server on 127.0.0.1 that offers STARTTLS with a
// self-signed certificate (caFile) and AUTH PLAIN as smtpUser, refuses
// MAIL before AUTH, and keeps what it receives.
type smtpServer struct {
	addr, caFile string
	mu           sync.Mutex
	got          []smtpMessage
}

type smtpMessage struct {
	from, authAs string
	to           []string
	tls          bool
	data         []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = nopLog{}
	certFile, keyFile := authtest.SelfSigned(t, t.TempDir(), "smtp")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.caFile = certFile
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	go srv.Serve(lis)
	t.Cleanup(func() {
		srv.Close()
		lis.Close()
	})
	return s
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.got...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	cur  smtpMessage
}

func (x *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != smtpUser || password != smtpPassword {
			return smtp.ErrAuthFailed
		}
		x.cur.authAs = user
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.cur.authAs == "" {
		return smtp.ErrAuthRequired
	}
	x.cur.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.cur.to = append(x.cur.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, x.cur.tls = x.conn.TLSConnectionState()
	x.cur.data = b
	x.srv.mu.Lock()
	x.srv.got = append(x.srv.got, x.cur)
	x.srv.mu.Unlock()
	x.cur = smtpMessage{authAs: x.cur.authAs}
	return nil
}

func (x *smtpSession) Reset()        { x.cur = smtpMessage{authAs: x.cur.authAs} }
func (x *smtpSession) Logout() error { return nil }

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

// botAPI answers sendMessage as Telegram's Bot API does, and keeps each
// call.
type botAPI struct {
	url  string
	mu   sync.Mutex
	sent []botMessage
}

type botMessage struct{ path, chat, text string }

func startBotAPI(t *testing.T) *botAPI {
	t.Helper()
	b := &botAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ChatID json.RawMessage `json:"chat_id"`
			Text   string          `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !strings.HasSuffix(r.URL.Path, "/sendMessage") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"ok":false,"error_code":400,"description":"Bad Request"}`))
			return
		}
		b.mu.Lock()
		b.sent = append(b.sent, botMessage{path: r.URL.Path, chat: strings.Trim(string(body.ChatID), `"`), text: body.Text})
		n := len(b.sent)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": map[string]any{"message_id": n, "date": 0, "chat": map[string]any{"id": 424242}, "text": body.Text}})
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *botAPI) messages() []botMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botMessage(nil), b.sent...)
}
