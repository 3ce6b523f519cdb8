package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message the sink received.
type Mail struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Subject is the header, MIME words decoded; MessageID is the
	// Message-ID header without its angle brackets.
	Subject   string
	MessageID string
	// Received is when the sink had the whole message.
	Received time.Time
	// Data is the message as sent: headers and body.
	Data []byte
}

// MailSink is an SMTP server on loopback that keeps every message it is
// given (no TLS, no AUTH: the demo's Notifier sends to it with
// NOTIFIER_SMTP_TLS=none), so that the demo can show what a person would
// have received.
type MailSink struct {
	srv  *smtp.Server
	lis  net.Listener
	addr string

	mu       sync.Mutex
	mails    []Mail
	returned []bool // by Next
	arrived  chan struct{}
}

// mailSinkMaxBytes bounds one message: a notification is a few KiB.
const mailSinkMaxBytes = 1 << 20

// StartMailSink listens on addr ("127.0.0.1:2525"; "" picks a free port
// on 127.0.0.1) and serves until Close.
func StartMailSink(addr string) (*MailSink, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail sink: %w", err)
	}
	s := &MailSink{lis: lis, addr: lis.Addr().String(), arrived: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.MaxMessageBytes = mailSinkMaxBytes
	s.srv.MaxRecipients = 50
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = discardLogger{}
	go s.srv.Serve(lis)
	return s, nil
}

// Addr is where the sink listens, host:port.
func (s *MailSink) Addr() string { return s.addr }

// Close stops the server and drops its connections.
func (s *MailSink) Close() error {
	err := s.srv.Close()
	// Serve may not have registered the listener with the server yet.
	if lerr := s.lis.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
		err = lerr
	}
	return err
}

// Mails is every message received so far, in order.
func (s *MailSink) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Next returns the first message, in the order received, that match
// accepts (nil accepts any) and that no earlier Next returned: one
// already received, or else the next to arrive. It waits until ctx ends.
func (s *MailSink) Next(ctx context.Context, match func(Mail) bool) (Mail, error) {
	for {
		s.mu.Lock()
		for i, m := range s.mails {
			if !s.returned[i] && (match == nil || match(m)) {
				s.returned[i] = true
				s.mu.Unlock()
				return m, nil
			}
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return Mail{}, fmt.Errorf("mail sink: no matching message: %w", context.Cause(ctx))
		}
	}
}

func (s *MailSink) add(m Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails = append(s.mails, m)
	s.returned = append(s.returned, false)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// sinkSession collects one SMTP transaction at a time.
type sinkSession struct {
	sink *MailSink
	from string
	to   []string
}

func (x *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: x.from, To: x.to, Received: time.Now(), Data: data}
	// A message the demo cannot parse is still kept, headers empty: the
	// sink records, it does not judge.
	if msg, err := netmail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Subject = msg.Header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(m.Subject); err == nil {
			m.Subject = dec
		}
		m.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(msg.Header.Get("Message-ID")), "<"), ">")
	}
	x.sink.add(m)
	x.from, x.to = "", nil
	return nil
}

func (x *sinkSession) Reset() { x.from, x.to = "", nil }

func (x *sinkSession) Logout() error { return nil }

// discardLogger keeps go-smtp's reports of broken connections out of the
// demo's terminal.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
