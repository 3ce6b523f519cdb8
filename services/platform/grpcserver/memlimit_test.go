package grpcserver_test

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
)

// The Go runtime's soft memory limit is a share of the container's limit
// (MEMORY_LIMIT), 0.9 unless GO_MEMORY_SHARE says otherwise; GOMEMLIMIT
// wins; bad values are refused with the variable's name. Not parallel: the
// limit is the process's.
func TestMemoryLimitIsAShareOfTheContainers(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const mib = 1 << 20
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    int64  // the limit in force after the call
		wantErr string // part of the error
	}{
		{name: "nothing set", env: nil, want: math.MaxInt64},
		{name: "default share", env: map[string]string{"MEMORY_LIMIT": "268435456"}, want: 256 * mib * 9 / 10},
		{name: "Checker's share", env: map[string]string{"MEMORY_LIMIT": "2147483648", "GO_MEMORY_SHARE": "0.25"}, want: 512 * mib},
		{name: "whole limit", env: map[string]string{"MEMORY_LIMIT": "16777216", "GO_MEMORY_SHARE": "1"}, want: 16 * mib},
		{name: "no overflow", env: map[string]string{"MEMORY_LIMIT": "9223372036854775807", "GO_MEMORY_SHARE": "1"}, want: math.MaxInt64},
		// The runtime read GOMEMLIMIT at start; it is left as it is.
		{name: "GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "100MiB", "MEMORY_LIMIT": "268435456"}, want: math.MaxInt64},
		{name: "limit not a number", env: map[string]string{"MEMORY_LIMIT": "256Mi"}, wantErr: `MEMORY_LIMIT="256Mi"`},
		{name: "limit zero", env: map[string]string{"MEMORY_LIMIT": "0"}, wantErr: `MEMORY_LIMIT="0"`},
		// A resourceFieldRef with divisor 1Mi: "256" for 256 Mi.
		{name: "limit in other units", env: map[string]string{"MEMORY_LIMIT": "256"}, wantErr: `MEMORY_LIMIT="256"`},
		{name: "share zero", env: map[string]string{"MEMORY_LIMIT": "268435456", "GO_MEMORY_SHARE": "0"}, wantErr: `GO_MEMORY_SHARE="0"`},
		{name: "share above one", env: map[string]string{"MEMORY_LIMIT": "268435456", "GO_MEMORY_SHARE": "90"}, wantErr: `GO_MEMORY_SHARE="90"`},
		{name: "share not a number", env: map[string]string{"MEMORY_LIMIT": "268435456", "GO_MEMORY_SHARE": "half"}, wantErr: `GO_MEMORY_SHARE="half"`},
		{name: "share NaN", env: map[string]string{"MEMORY_LIMIT": "268435456", "GO_MEMORY_SHARE": "NaN"}, wantErr: `GO_MEMORY_SHARE="NaN"`},
		{name: "share checked without a limit", env: map[string]string{"GO_MEMORY_SHARE": "2"}, wantErr: `GO_MEMORY_SHARE="2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			env := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			var logs bytes.Buffer
			got, err := grpcserver.SetMemoryLimit(env, slog.New(slog.NewJSONHandler(&logs, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				if now := debug.SetMemoryLimit(-1); now != math.MaxInt64 {
					t.Fatalf("a refused setting changed the limit to %d", now)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if now := debug.SetMemoryLimit(-1); got != tc.want || now != tc.want {
				t.Fatalf("limit %d (returned %d), want %d", now, got, tc.want)
			}
			applied := tc.env["MEMORY_LIMIT"] != "" && tc.env["GOMEMLIMIT"] == ""
			if set := strings.Contains(logs.String(), "Go memory limit set"); set != applied {
				t.Fatalf("log %q: want a line exactly when the limit is set", logs.String())
			}
		})
	}
}
