package grpcserver_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var out bytes.Buffer
		if !grpcserver.PrintVersion(&out, args) {
			t.Errorf("%v: not taken as a version request", args)
		}
		if got := out.String(); !strings.Contains(got, buildinfo.Get().Version+" (commit ") || !strings.Contains(got, runtime.Version()) {
			t.Errorf("%v printed %q", args, got)
		}
	}
	for _, args := range [][]string{nil, {"serve"}, {"--version", "x"}, {"migrate", "version"}} {
		var out bytes.Buffer
		if grpcserver.PrintVersion(&out, args) || out.Len() > 0 {
			t.Errorf("%v: taken as a version request (%q)", args, out.String())
		}
	}
}

func TestBuildInfoGauge(t *testing.T) {
	t.Parallel()
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t)})
	i := buildinfo.Get()
	grpcservertest.WantMetric(t, srv.Registry, 1, "slotwatch_build_info", "version", i.Version, "commit", i.Commit, "go", i.Go)
}
