package demo

import (
	"context"
	"errors"
	"fmt"
	"net/smtp"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func startSink(t *testing.T) *MailSink {
	t.Helper()
	s, err := StartMailSink("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sendMail submits a message as a client would (net/smtp: no TLS, since
// the sink offers none, and no AUTH).
func sendMail(t *testing.T, addr, to, subject, messageID string) {
	t.Helper()
	msg := fmt.Sprintf("From: slotwatch <alerts@example.org>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"+
		"Content-Type: text/plain; charset=UTF-8\r\n\r\nA slot is free.\r\n", to, subject, messageID)
	if err := smtp.SendMail(addr, nil, "alerts@example.org", []string{to}, []byte(msg)); err != nil {
		t.Fatalf("send to the sink: %v", err)
	}
}

func TestMailSink(t *testing.T) {
	t.Parallel()

	t.Run("RecordsEnvelopeSubjectMessageIDAndTime", func(t *testing.T) {
		t.Parallel()
		s := startSink(t)
		before := time.Now()
		// The subject as go-mail encodes non-ASCII text: MIME words.
		sendMail(t, s.Addr(), "ana@example.net", "=?UTF-8?q?Slot_found:_S=C3=A3o_Paulo?=", "key-1@example.org")
		after := time.Now()
		m, err := s.Next(testkit.Context(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.From != "alerts@example.org" || len(m.To) != 1 || m.To[0] != "ana@example.net" {
			t.Errorf("envelope %q -> %q", m.From, m.To)
		}
		if m.Subject != "Slot found: São Paulo" || m.MessageID != "key-1@example.org" {
			t.Errorf("subject %q, Message-ID %q", m.Subject, m.MessageID)
		}
		if m.Received.Before(before) || m.Received.After(after) {
			t.Errorf("received at %s, outside the send (%s to %s)", m.Received, before, after)
		}
		if len(s.Mails()) != 1 {
			t.Errorf("Mails: %d, want 1", len(s.Mails()))
		}
	})

	t.Run("NextWaitsForAMatchAndReturnsEachOnce", func(t *testing.T) {
		t.Parallel()
		s := startSink(t)
		sendMail(t, s.Addr(), "a@example.net", "first", "a@x")
		got := make(chan Mail, 1)
		errc := make(chan error, 1)
		go func() {
			m, err := s.Next(testkit.Context(t), func(m Mail) bool { return m.To[0] == "b@example.net" })
			got <- m
			errc <- err
		}()
		sendMail(t, s.Addr(), "c@example.net", "other", "c@x")
		sendMail(t, s.Addr(), "b@example.net", "wanted", "b@x")
		if m, err := <-got, <-errc; err != nil || m.MessageID != "b@x" {
			t.Fatalf("Next = %+v, %v; want the message to b", m, err)
		}
		// Those it skipped are still there, in order; the one returned is not.
		for _, want := range []string{"a@x", "c@x"} {
			m, err := s.Next(testkit.Context(t), nil)
			if err != nil || m.MessageID != want {
				t.Fatalf("Next = %q, %v; want %s", m.MessageID, err, want)
			}
		}
		ctx, cancel := context.WithCancel(testkit.Context(t))
		cancel()
		if _, err := s.Next(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with nothing left = %v, want the context's error", err)
		}
	})

	t.Run("ClosedSinkRefuses", func(t *testing.T) {
		t.Parallel()
		s := startSink(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"b@example.net"}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
			t.Fatal("a closed sink took a message")
		}
	})
}
