package email_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel/email"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

const (
	testUser     = "notifier@example.org"
	testPassword = "s3cret pass-w0rd!" // a space: only the line ending is cut
)

var testMessage = channel.Message{
	IdempotencyKey: "d6f1c0de-5a1e-4d7e-9c3b-000000000001",
	To:             "Ana Lima <ana@example.net>",
	Subject:        "Slot found: Lisbon, 12 January 2027",
	Text:           "A slot is free at Lisbon on 12 January 2027 at 09:30.\nBook it now.",
	HTML:           "<p>A slot is free at <b>Lisbon</b> on 12 January 2027 at 09:30.</p>",
}

// config is a Config for srv: STARTTLS trusting the test certificate and
// AUTH as testUser.
func config(t testing.TB, srv *smtpServer) email.Config {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return email.Config{
		Host:         host,
		Port:         p,
		Username:     testUser,
		PasswordFile: authtest.WriteFile(t, "smtp-password", testPassword+"\n"),
		From:         "slotwatch <alerts@example.org>",
		TLS:          email.TLSStartTLS,
		CAFile:       srv.CAFile,
	}
}

func newSender(t testing.TB, cfg email.Config) *email.Sender {
	t.Helper()
	s, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func secureServer(t testing.TB) *smtpServer {
	return startSMTP(t, serverOpts{startTLS: true, user: testUser, password: testPassword})
}

// parsed is one received email, read back as a mail client would.
type parsed struct {
	header     netmail.Header
	text, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, data)
	}
	p := parsed{header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v): want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = part
		if part.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			body = quotedprintable.NewReader(part)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		default:
			t.Fatalf("unexpected part %s", pt)
		}
	}
	return p
}

func TestSend(t *testing.T) {
	t.Parallel()

	t.Run("DeliversTextAndHTMLOverSTARTTLSWithAuth", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		s := newSender(t, config(t, srv))
		if err := s.Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		got := srv.Received()
		if len(got) != 1 {
			t.Fatalf("server received %d messages, want 1", len(got))
		}
		r := got[0]
		if !r.TLS || r.AuthAs != testUser {
			t.Errorf("TLS=%v auth=%q: want the message over TLS, authenticated as %s", r.TLS, r.AuthAs, testUser)
		}
		if r.From != "alerts@example.org" || len(r.To) != 1 || r.To[0] != "ana@example.net" {
			t.Errorf("envelope from %q to %q", r.From, r.To)
		}
		p := parse(t, r.Data)
		dec := new(mime.WordDecoder)
		subject, _ := dec.DecodeHeader(p.header.Get("Subject"))
		for name, want := range map[string]string{
			"Message-ID":     "<" + testMessage.IdempotencyKey + "@example.org>",
			"From":           `"slotwatch" <alerts@example.org>`,
			"To":             `"Ana Lima" <ana@example.net>`,
			"Auto-Submitted": "auto-generated",
		} {
			if got := p.header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if subject != testMessage.Subject {
			t.Errorf("Subject = %q, want %q", subject, testMessage.Subject)
		}
		if _, err := p.header.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		if got := strings.ReplaceAll(strings.TrimRight(p.text, "\r\n"), "\r\n", "\n"); got != testMessage.Text {
			t.Errorf("text part %q, want %q", p.text, testMessage.Text)
		}
		if strings.TrimRight(p.html, "\r\n") != testMessage.HTML {
			t.Errorf("HTML part %q, want %q", p.html, testMessage.HTML)
		}
	})

	t.Run("RetryKeepsTheMessageID", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		s := newSender(t, config(t, srv))
		other := testMessage
		other.IdempotencyKey = "evt:42/contact:7" // not a valid left-hand side
		for _, m := range []channel.Message{testMessage, testMessage, other, other} {
			if err := s.Send(testkit.Context(t), m); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for _, r := range srv.Received() {
			ids = append(ids, parse(t, r.Data).header.Get("Message-ID"))
		}
		if len(ids) != 4 || ids[0] != ids[1] || ids[2] != ids[3] || ids[0] == ids[2] {
			t.Fatalf("Message-IDs %q: want one per key, the same on every retry", ids)
		}
		if want := "<" + email.MessageID(other.IdempotencyKey, "example.org") + ">"; ids[2] != want {
			t.Errorf("Message-ID %s, want %s", ids[2], want)
		}
		if _, err := netmail.ParseAddress(strings.Trim(ids[2], "<>")); err != nil {
			t.Errorf("Message-ID %s of a key with ':' and '/' is not addr-spec: %v", ids[2], err)
		}
	})

	t.Run("ConcurrentSendsEachHaveTheirConnection", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		s := newSender(t, config(t, srv))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				m := testMessage
				m.IdempotencyKey = fmt.Sprint("key-", i)
				errs[i] = s.Send(testkit.Context(t), m)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, r := range srv.Received() {
			ids[parse(t, r.Data).header.Get("Message-ID")] = true
		}
		if len(ids) != len(errs) {
			t.Fatalf("server has %d distinct messages, want %d", len(ids), len(errs))
		}
	})

	t.Run("SubjectIsOneLineAndAddsNoHeader", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		m := testMessage
		m.Subject = "Slot found\r\nBcc: eve@example.com\nX-Evil: 1"
		if err := newSender(t, config(t, srv)).Send(testkit.Context(t), m); err != nil {
			t.Fatal(err)
		}
		r := srv.Received()[0]
		p := parse(t, r.Data)
		subject, _ := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
		if subject != "Slot found Bcc: eve@example.com X-Evil: 1" || p.header.Get("Bcc") != "" || p.header.Get("X-Evil") != "" || len(r.To) != 1 {
			t.Fatalf("subject %q, Bcc %q, X-Evil %q, envelope to %q", subject, p.header.Get("Bcc"), p.header.Get("X-Evil"), r.To)
		}
	})

	t.Run("WithoutHTMLSendsTextAlone", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		s := newSender(t, config(t, srv))
		m := testMessage
		m.HTML = ""
		if err := s.Send(testkit.Context(t), m); err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(srv.Received()[0].Data))
		if err != nil {
			t.Fatal(err)
		}
		if mt, _, _ := mime.ParseMediaType(msg.Header.Get("Content-Type")); mt != "text/plain" {
			t.Errorf("Content-Type %s, want text/plain", mt)
		}
	})

	t.Run("TemporaryRepliesAreRetried", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			stage string
			code  int
			enh   smtp.EnhancedCode
		}{
			{"mail", 421, smtp.EnhancedCode{4, 3, 2}},
			{"rcpt", 451, smtp.EnhancedCode{4, 7, 1}},
			{"data", 451, smtp.EnhancedCode{4, 3, 0}},
		} {
			srv := secureServer(t)
			srv.fail(tc.stage, tc.code, tc.enh, "try again later")
			err := newSender(t, config(t, srv)).Send(testkit.Context(t), testMessage)
			if err == nil || channel.IsPermanent(err) || !strings.Contains(err.Error(), strconv.Itoa(tc.code)) {
				t.Errorf("%d at %s: error %v, want a temporary one naming the reply", tc.code, tc.stage, err)
			}
			if n := len(srv.Received()); n != 0 {
				t.Errorf("%d at %s: server kept %d messages", tc.code, tc.stage, n)
			}
		}
	})

	t.Run("RejectionIsPermanent", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		srv.fail("rcpt", 550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		err := newSender(t, config(t, srv)).Send(testkit.Context(t), testMessage)
		if !channel.IsPermanent(err) || !strings.Contains(err.Error(), "550") {
			t.Fatalf("error %v, want a permanent one naming 550", err)
		}
	})

	t.Run("BadRecipientIsPermanentWithoutConnecting", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		s := newSender(t, config(t, srv))
		for _, m := range []channel.Message{
			{IdempotencyKey: "k1", To: "not an address", Text: "x"},
			{IdempotencyKey: "", To: "ana@example.net", Text: "x"},
		} {
			if err := s.Send(testkit.Context(t), m); !channel.IsPermanent(err) {
				t.Errorf("%+v: error %v, want permanent", m, err)
			}
		}
		if srv.AuthAttempts() != 0 {
			t.Error("the sender connected for a message it could not address")
		}
	})

	t.Run("WrongPasswordWaitsForTheOperatorAndIsNotLeaked", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, serverOpts{startTLS: true, user: testUser, password: "the-right-one"})
		err := newSender(t, config(t, srv)).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) || !strings.Contains(err.Error(), "535") ||
			!strings.Contains(err.Error(), "NOTIFIER_SMTP_PASSWORD_FILE") {
			t.Fatalf("error %v: want a temporary one naming 535 and the password setting", err)
		}
		assertNoSecret(t, err.Error())
		if len(srv.Received()) != 0 {
			t.Error("server accepted a message without AUTH")
		}
	})

	t.Run("STARTTLSRequiredByDefault", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, serverOpts{user: testUser, password: testPassword})
		cfg := config(t, srv)
		cfg.TLS = "" // the default
		err := newSender(t, cfg).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("error %v: want a temporary refusal naming STARTTLS", err)
		}
		if srv.AuthAttempts() != 0 || len(srv.Received()) != 0 {
			t.Error("the password or the message went to a server without TLS")
		}
		srv.waitClosed(t, testkit.Context(t))
	})

	t.Run("UntrustedCertificateRefused", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		cfg := config(t, srv)
		cfg.CAFile = "" // system roots: the self-signed certificate fails
		err := newSender(t, cfg).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v: want a temporary certificate failure", err)
		}
		if srv.AuthAttempts() != 0 || len(srv.Received()) != 0 {
			t.Error("the password or the message went to an unverified server")
		}
	})

	t.Run("LocalSinkWithoutTLSOrAuth", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, serverOpts{})
		cfg := config(t, srv)
		cfg.TLS, cfg.Username, cfg.PasswordFile, cfg.CAFile = email.TLSNone, "", "", ""
		if err := newSender(t, cfg).Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		if r := srv.Received(); len(r) != 1 || r[0].TLS {
			t.Fatalf("received %+v: want one message in the clear", r)
		}
	})

	t.Run("OpportunisticUsesSTARTTLSWhenOffered", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		cfg := config(t, srv)
		cfg.TLS = email.TLSOpportunistic
		if err := newSender(t, cfg).Send(testkit.Context(t), testMessage); err != nil {
			t.Fatal(err)
		}
		if r := srv.Received(); len(r) != 1 || !r[0].TLS {
			t.Fatalf("received %+v: want one message over TLS", r)
		}
	})

	t.Run("ServerDownIsTemporary", func(t *testing.T) {
		t.Parallel()
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().(*net.TCPAddr)
		lis.Close()
		cfg := config(t, &smtpServer{Addr: addr.String()})
		err = newSender(t, cfg).Send(testkit.Context(t), testMessage)
		if err == nil || channel.IsPermanent(err) {
			t.Fatalf("error %v, want a temporary one", err)
		}
	})

	t.Run("ContextEndsAStalledConversation", func(t *testing.T) {
		t.Parallel()
		srv := secureServer(t)
		stalled, release := make(chan struct{}), make(chan struct{})
		t.Cleanup(func() { close(release) })
		srv.atData = func() { close(stalled); <-release }
		ctx, cancel := context.WithCancel(testkit.Context(t))
		go func() { <-stalled; cancel() }()
		cfg := config(t, srv)
		// go-mail's own deadline would end the call too; an hour leaves
		// only ctx to do it (without it, this test hangs until go test's
		// timeout).
		cfg.Timeout = time.Hour
		err := newSender(t, cfg).Send(ctx, testMessage)
		if !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
			t.Fatalf("error %v, want the context's, temporary", err)
		}
	})
}

// assertNoSecret fails t when s holds the password, in clear or as the
// AUTH PLAIN exchange carries it.
func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	for _, secret := range []string{testPassword, plain} {
		if strings.Contains(s, secret) {
			t.Fatalf("%q holds the password", s)
		}
	}
}

func TestPasswordStaysOutOfTheConversationLog(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	srv := secureServer(t)
	cfg := config(t, srv)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := newSender(t, cfg).Send(testkit.Context(t), testMessage); err != nil {
		t.Fatal(err)
	}
	bad := startSMTP(t, serverOpts{startTLS: true, user: testUser, password: "the-right-one"})
	badCfg := config(t, bad)
	badCfg.Logger = cfg.Logger
	err := newSender(t, badCfg).Send(testkit.Context(t), testMessage)
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	out := logs.String()
	// The log is there (so the check below could fail), AUTH included.
	if !strings.Contains(out, "STARTTLS") || !strings.Contains(out, "AUTH") || !strings.Contains(out, "535") {
		t.Fatalf("the debug log lacks the conversation:\n%s", out)
	}
	assertNoSecret(t, out)
	assertNoSecret(t, err.Error())
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	password := authtest.WriteFile(t, "password", testPassword)
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte(testPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := authtest.WriteFile(t, "empty", "\n")
	good := email.Config{Host: "smtp.example.org", From: "alerts@example.org", Username: "u", PasswordFile: password}
	if _, err := email.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*email.Config)
		want   string
	}{
		"NoHost":                                {func(c *email.Config) { c.Host = "" }, "NOTIFIER_SMTP_HOST"},
		"NoFrom":                                {func(c *email.Config) { c.From = "" }, "NOTIFIER_SMTP_FROM"},
		"BadFrom":                               {func(c *email.Config) { c.From = "alerts at example" }, "NOTIFIER_SMTP_FROM"},
		"BadPort":                               {func(c *email.Config) { c.Port = 70000 }, "NOTIFIER_SMTP_PORT"},
		"UnknownTLS":                            {func(c *email.Config) { c.TLS = "ssl" }, "NOTIFIER_SMTP_TLS"},
		"UserWithoutPassword":                   {func(c *email.Config) { c.PasswordFile = "" }, "NOTIFIER_SMTP_PASSWORD_FILE"},
		"PasswordWithoutUser":                   {func(c *email.Config) { c.Username = "" }, "NOTIFIER_SMTP_USERNAME"},
		"PasswordFileReadableByOthers":          {func(c *email.Config) { c.PasswordFile = loose }, "chmod 600"},
		"EmptyPassword":                         {func(c *email.Config) { c.PasswordFile = empty }, "empty"},
		"MissingCAFile":                         {func(c *email.Config) { c.CAFile = filepath.Join(dir, "none.pem") }, "NOTIFIER_SMTP_CA_FILE"},
		"CAFileWithoutPEM":                      {func(c *email.Config) { c.CAFile = empty }, "NOTIFIER_SMTP_CA_FILE"},
		"PasswordInTheClearAcrossTheNetwork":    {func(c *email.Config) { c.TLS = email.TLSNone }, "unencrypted"},
		"PasswordOpportunisticAcrossTheNetwork": {func(c *email.Config) { c.TLS = email.TLSOpportunistic }, "unencrypted"},
	} {
		cfg := good
		tc.change(&cfg)
		_, err := email.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", name, err, tc.want)
		}
		if err != nil {
			assertNoSecret(t, err.Error())
		}
	}
}

func TestLoadConfigReadsTheEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"NOTIFIER_SMTP_HOST":          "smtp.example.org",
		"NOTIFIER_SMTP_PORT":          "2525",
		"NOTIFIER_SMTP_USERNAME":      "u",
		"NOTIFIER_SMTP_PASSWORD_FILE": "/run/secrets/smtp-password",
		"NOTIFIER_SMTP_FROM":          "alerts@example.org",
		"NOTIFIER_SMTP_TLS":           "opportunistic",
		"NOTIFIER_SMTP_CA_FILE":       "/etc/ca.pem",
		"NOTIFIER_SMTP_TIMEOUT":       "5s",
	}
	l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	got := email.LoadConfig(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	want := email.Config{Host: "smtp.example.org", Port: 2525, Username: "u", PasswordFile: "/run/secrets/smtp-password",
		From: "alerts@example.org", TLS: email.TLSOpportunistic, CAFile: "/etc/ca.pem", Timeout: 5e9}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	none := email.LoadConfig(&envconfig.Loader{Lookup: func(string) (string, bool) { return "", false }})
	if none.Host != "" || none.Port != email.DefaultPort || none.TLS != email.TLSStartTLS || none.Timeout != email.DefaultTimeout {
		t.Fatalf("defaults: %+v", none)
	}
}

// BenchmarkSend is one email per iteration as the Notifier sends it: a new
// connection, STARTTLS, AUTH PLAIN, the message and QUIT, to a go-smtp
// server on loopback.
func BenchmarkSend(b *testing.B) {
	srv := secureServer(b)
	s := newSender(b, config(b, srv))
	ctx := testkit.Context(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(ctx, testMessage); err != nil {
			b.Fatal(err)
		}
	}
}
