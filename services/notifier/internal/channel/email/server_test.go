package email_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
)

// A real SMTP server (go-smtp) on 127.0.0.1, started by a test: it offers
// STARTTLS with a self-signed certificate when asked, AUTH PLAIN (over TLS
// only) for one user, and records what it received.
type smtpServer struct {
	Addr   string
	CAFile string // the certificate a client must trust

	user, password string

	mu        sync.Mutex
	received  []received
	authAsked int
	// failAt, when set, is the reply the server gives at a stage ("mail",
	// "rcpt", "data") instead of accepting.
	failAt map[string]*smtp.SMTPError
	// atData, when set, runs inside DATA before the message is read.
	atData func()
	// closed receives one value per connection the server has seen end
	// (after EHLO).
	closed chan struct{}
}

type received struct {
	From   string
	To     []string
	Data   []byte
	TLS    bool
	AuthAs string
}

type serverOpts struct {
	startTLS       bool
	user, password string // AUTH PLAIN when user is set
}

func startSMTP(t testing.TB, o serverOpts) *smtpServer {
	t.Helper()
	s := &smtpServer{user: o.user, password: o.password, failAt: map[string]*smtp.SMTPError{}, closed: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = discardLog{}
	if o.startTLS {
		certFile, keyFile := authtest.SelfSigned(t, t.TempDir(), "smtp")
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.CAFile = certFile
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = lis.Addr().String()
	go srv.Serve(lis)
	t.Cleanup(func() {
		srv.Close()
		lis.Close() // in case Serve had not registered it yet
	})
	return s
}

func (s *smtpServer) fail(stage string, code int, enhanced smtp.EnhancedCode, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAt[stage] = &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

func (s *smtpServer) Received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

func (s *smtpServer) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authAsked
}

func (s *smtpServer) failure(stage string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.failAt[stage]; e != nil {
		return e
	}
	return nil
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	cur  received
}

var _ smtp.AuthSession = (*session)(nil)

func (x *session) AuthMechanisms() []string {
	if x.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	x.srv.mu.Lock()
	x.srv.authAsked++
	x.srv.mu.Unlock()
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != x.srv.user || password != x.srv.password {
			return smtp.ErrAuthFailed
		}
		x.cur.AuthAs = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.srv.user != "" && x.cur.AuthAs == "" {
		return smtp.ErrAuthRequired
	}
	if err := x.srv.failure("mail"); err != nil {
		return err
	}
	x.cur.From = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.srv.failure("rcpt"); err != nil {
		return err
	}
	x.cur.To = append(x.cur.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	if x.srv.atData != nil {
		x.srv.atData()
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.srv.failure("data"); err != nil {
		return err
	}
	_, x.cur.TLS = x.conn.TLSConnectionState()
	x.cur.Data = b
	x.srv.mu.Lock()
	x.srv.received = append(x.srv.received, x.cur)
	x.srv.mu.Unlock()
	authAs := x.cur.AuthAs
	x.cur = received{AuthAs: authAs}
	return nil
}

func (x *session) Reset() {
	authAs := x.cur.AuthAs
	x.cur = received{AuthAs: authAs}
}

func (x *session) Logout() error {
	select {
	case x.srv.closed <- struct{}{}:
	default:
	}
	return nil
}

// waitClosed waits until the server has seen a connection end: a client
// that leaves it open fails the test when ctx ends.
func (s *smtpServer) waitClosed(t testing.TB, ctx context.Context) {
	t.Helper()
	select {
	case <-s.closed:
	case <-ctx.Done():
		t.Fatal("the client left its connection open")
	}
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}
