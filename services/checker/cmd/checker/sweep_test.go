package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// TestAnIdleCheckerDeletesOldArtifacts: the check folders past
// CHECKER_ARTIFACTS_MAX_AGE were deleted only when a check started or
// saved, so a Checker with nothing to check (CHECKER_LOOP=false here, or
// no mission due for days) kept what a page had shown of an applicant for
// good. A younger folder stays.
func TestAnIdleCheckerDeletesOldArtifacts(t *testing.T) {
	dir := t.TempDir()
	folder := func(age time.Duration, n string) string {
		p := filepath.Join(dir, time.Now().UTC().Add(-age).Format("20060102T150405.000Z")+"-fra-login-"+n)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "check.json"), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old, young := folder(2*time.Hour, "000001"), folder(time.Minute, "000002")
	env := map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "CHECKER_LOOP": "false",
		"CHECKER_ARTIFACTS_DIR": dir, "CHECKER_ARTIFACTS_MAX_AGE": "1h",
	}
	for k, v := range rootOptIn() {
		env[k] = v
	}
	grpcservertest.Setenv(t, env)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, io.Discard) }()

	const wait = 60 * time.Second
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(old); os.IsNotExist(err) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the checker stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s of an idle Checker the folder past CHECKER_ARTIFACTS_MAX_AGE (1h) is still there: %s", wait, filepath.Base(old))
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("the folder younger than CHECKER_ARTIFACTS_MAX_AGE is gone: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the checker stopped with %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("the checker did not stop within %s of its context's end", wait)
	}
}
