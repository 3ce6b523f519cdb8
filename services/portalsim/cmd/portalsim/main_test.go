package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := buildinfo.Get().String("portalsim") + "\n"; out.String() != want {
		t.Errorf("portalsim --version printed %q, want %q", out.String(), want)
	}
}

func TestUnknownFamilyIsRefusedBeforeListening(t *testing.T) {
	t.Setenv("PORTALSIM_FAMILY", "bls")
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `family "bls"`) {
		t.Errorf("run with PORTALSIM_FAMILY=bls: %v, want the family refused", err)
	}
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-family", "nope"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `family "nope"`) {
		t.Errorf("run -family nope: %v, want the family refused", err)
	}
}

func TestBadSessionLifetimeIsRefusedBeforeListening(t *testing.T) {
	t.Setenv("PORTALSIM_SESSION_LIFETIME", "half an hour")
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `session_lifetime "half an hour"`) {
		t.Errorf("run with PORTALSIM_SESSION_LIFETIME=%q: %v, want it refused", "half an hour", err)
	}
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-session-lifetime", "-5m"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `session_lifetime "-5m"`) {
		t.Errorf("run -session-lifetime -5m: %v, want it refused", err)
	}
}
