// Package email is the Notifier's email channel: one message per Send,
// submitted over SMTP (STARTTLS and AUTH by default) as plain text with an
// HTML alternative, its Message-ID derived from the delivery's idempotency
// key so that a retried delivery carries the same one.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/secretfile"
)

// Sender sends email over SMTP. It is safe for concurrent use: each Send
// has a connection of its own.
type Sender struct {
	cfg      Config
	password string
	from     *netmail.Address
	domain   string // of From: the right-hand side of Message-IDs
	tls      *tls.Config
}

var _ channel.Sender = (*Sender)(nil)

// New checks cfg and reads the password file. It does not connect: a
// server that is down at start delays deliveries, it does not stop the
// Notifier.
func New(cfg Config) (*Sender, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("NOTIFIER_SMTP_HOST is not set: set it to the SMTP server's host name"))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("NOTIFIER_SMTP_PORT=%d: want a port, 1 to 65535", cfg.Port))
	}
	if err := cfg.TLS.check(); err != nil {
		errs = append(errs, err)
	}
	s := &Sender{cfg: cfg}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("NOTIFIER_SMTP_FROM=%q: want an address such as \"slotwatch <alerts@example.org>\": %w", cfg.From, err))
	} else {
		s.from = from
		s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	switch {
	case cfg.Username == "" && cfg.PasswordFile != "":
		errs = append(errs, errors.New("NOTIFIER_SMTP_PASSWORD_FILE is set but NOTIFIER_SMTP_USERNAME is not: set both, or neither to send without AUTH"))
	case cfg.Username != "" && cfg.PasswordFile == "":
		errs = append(errs, errors.New("NOTIFIER_SMTP_USERNAME is set but NOTIFIER_SMTP_PASSWORD_FILE is not: point it at a file (mode 600) holding the password"))
	case cfg.Username != "":
		if cfg.TLS != TLSStartTLS && !auth.IsLoopback(cfg.Host) {
			errs = append(errs, fmt.Errorf("NOTIFIER_SMTP_TLS=%s with a password for %s: the password would cross the network unencrypted; use starttls", cfg.TLS, cfg.Host))
		}
		if s.password, err = secretfile.ReadLine(cfg.PasswordFile, "NOTIFIER_SMTP_PASSWORD_FILE"); err != nil {
			errs = append(errs, err)
		}
	}
	if s.tls, err = clientTLS(cfg.Host, cfg.CAFile); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("email channel: %w", errors.Join(errs...))
	}
	return s, nil
}

func clientTLS(host, caFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("NOTIFIER_SMTP_CA_FILE: %w", err)
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("NOTIFIER_SMTP_CA_FILE %s: no PEM certificate in it", caFile)
	}
	return c, nil
}

// Kind implements channel.Sender.
func (s *Sender) Kind() channel.Kind { return channel.Email }

// Timeout implements channel.Timed: one delivery, connect to QUIT.
func (s *Sender) Timeout() time.Duration { return s.cfg.Timeout }

// Send submits msg to the SMTP server for msg.To. A refusal with a 5xx
// reply, or a message that cannot be addressed, is permanent; a 4xx reply,
// a connection or TLS failure, and ctx ending are temporary.
func (s *Sender) Send(ctx context.Context, msg channel.Message) error {
	m, err := s.message(msg)
	if err != nil {
		return channel.Permanent(err)
	}
	// go-mail bounds a delivery by its own timeout and uses ctx only to
	// dial; closing the connection when ctx ends makes the whole
	// conversation follow ctx. And go-mail leaves the connection open
	// when EHLO or STARTTLS fails: it is closed here, whatever happened.
	var conn sendConn
	defer conn.close()
	defer context.AfterFunc(ctx, conn.close)()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		return conn.set(c)
	}
	c, err := mail.NewClient(s.cfg.Host,
		mail.WithPort(s.cfg.Port),
		mail.WithTimeout(s.cfg.Timeout),
		mail.WithTLSPolicy(goMailPolicy[s.cfg.TLS]),
		mail.WithTLSConfig(s.tls),
		mail.WithDialContextFunc(dial),
	)
	if err != nil {
		return fmt.Errorf("email client: %w", err)
	}
	if s.cfg.Username != "" {
		c.SetSMTPAuth(mail.SMTPAuthAutoDiscover)
		c.SetUsername(s.cfg.Username)
		c.SetPassword(s.password)
	}
	if s.cfg.Logger != nil && s.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		c.SetLogger(conversationLog{s.cfg.Logger})
		c.SetDebugLog(true)
	}
	err = c.DialAndSendWithContext(ctx, m)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("email to %s: %w", msg.To, context.Cause(ctx))
	}
	return s.classify(msg.To, err)
}

// sendConn is the connection of one Send, closed from two goroutines:
// Send's when it returns, ctx's when it ends.
type sendConn struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (c *sendConn) set(conn net.Conn) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	c.conn = conn
	return conn, nil
}

func (c *sendConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.Close()
	}
}

var goMailPolicy = map[TLSPolicy]mail.TLSPolicy{
	TLSStartTLS:      mail.TLSMandatory,
	TLSOpportunistic: mail.TLSOpportunistic,
	TLSNone:          mail.NoTLS,
}

func (s *Sender) message(msg channel.Message) (*mail.Msg, error) {
	if msg.IdempotencyKey == "" {
		return nil, errors.New("email: the message has no idempotency key")
	}
	to, err := netmail.ParseAddress(msg.To)
	if err != nil {
		return nil, fmt.Errorf("email: recipient %q: %w", msg.To, err)
	}
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	m.FromMailAddress(s.from)
	m.ToMailAddress(to)
	// One line: a line break from a template (or from a name in it) would
	// show as a broken subject; go-mail encodes it, so it cannot add a
	// header, but it is still not what the reader should see.
	m.Subject(channel.OneLine(msg.Subject))
	m.SetMessageIDWithValue(MessageID(msg.IdempotencyKey, s.domain))
	m.SetDate()
	// RFC 3834: an automatic message; vacation responders stay quiet.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(mail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		m.AddAlternativeString(mail.TypeTextHTML, msg.HTML)
	}
	return m, nil
}

// MessageID is the Message-ID (without its angle brackets) of the email
// for a delivery with this idempotency key, From's domain on the right.
// A key that is a valid left-hand side (letters, digits, "-", ".", ...)
// is used as it is, so a reader can find the delivery from the email;
// any other key is replaced by its SHA-256, in hex.
func MessageID(key, domain string) string {
	if !isDotAtom(key) {
		sum := sha256.Sum256([]byte(key))
		key = hex.EncodeToString(sum[:])
	}
	return key + "@" + domain
}

// isDotAtom reports whether s is RFC 5322 dot-atom-text: runs of atext
// joined by single dots.
func isDotAtom(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			isAlnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
			if !isAlnum && !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r) {
				return false
			}
		}
	}
	return true
}

// classify turns a go-mail error into the channel's: the SMTP reply's
// first digit decides (5 permanent, 4 temporary); without a reply
// (connection refused, reset, TLS) it is temporary. The error text names
// the server and the reply, never the password (go-mail's errors do not
// carry it; the check below keeps it so).
func (s *Sender) classify(to string, err error) error {
	code := 0
	var se *mail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	if s.password != "" && strings.Contains(err.Error(), s.password) {
		err = errors.New("the SMTP error text held the password and is withheld")
	}
	err = fmt.Errorf("email to %s via %s:%d: %w", to, s.cfg.Host, s.cfg.Port, err)
	switch {
	case code == 530 || code == 534 || code == 535:
		// RFC 4954's AUTH refusals: the credentials are wrong for every
		// message alike, and right again once an operator fixes them, so
		// the deliveries wait instead of dying.
		return fmt.Errorf("%w (the server refused NOTIFIER_SMTP_USERNAME and the password of NOTIFIER_SMTP_PASSWORD_FILE)", err)
	case code >= 500 && code < 600:
		return channel.Permanent(err)
	}
	return err
}
