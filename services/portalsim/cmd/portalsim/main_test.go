package main

import (
	"bytes"
	"context"
	"io"
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
