package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// TestHealthzAnswersWhileALengthenedBrowserStartIsUnderWay: README and
// OPERATIONS tell an operator whose node is too busy to start Chromium in
// 30 s to lengthen CHECKER_BROWSER_START_TIMEOUT. The manifest's liveness
// probe (deploy/k8s/base/checker.yaml: /healthz on the metrics port,
// initialDelaySeconds 15, periodSeconds 10, failureThreshold 3) kills the
// container on its third failure, 35 s after the start. serve starts the
// metrics listener only after the first startBrowser returns, i.e. after
// the whole start timeout: with the lengthened timeout on exactly such a
// node the container is killed before it ever listens, restarted, and the
// next start of Chromium begins from nothing again (CrashLoopBackOff).
func TestHealthzAnswersWhileALengthenedBrowserStartIsUnderWay(t *testing.T) {
	dir := t.TempDir()
	// A Chromium that never says "DevTools listening": a start that
	// takes longer than any timeout.
	chrome := filepath.Join(dir, "slow-chromium")
	if err := os.WriteFile(chrome, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	metrics := grpcservertest.FreeAddr(t)
	grpcservertest.Setenv(t, map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": metrics,
		"ACCOUNTPOOL_ADDR": "127.0.0.1:1", "REQUESTS_ADDR": "127.0.0.1:1",
		"AUTH_TOKENS_FILE": authtest.TokensFile(t), "AUTH_TOKEN_FILE": authtest.WriteFile(t, "checker.token", authtest.CheckerToken+"\n"),
		"TLS_CERT_FILE": "", "TLS_KEY_FILE": "", "TLS_CA_FILE": "", "TLS_INSECURE": "", "RATE_LIMIT_RPS": "0",
		"CHECKER_LOOP": "false", "CHECKER_ARTIFACTS_DIR": filepath.Join(dir, "artifacts"),
		"CHROME_PATH": chrome, "CHROME_NO_SANDBOX": strconv.FormatBool(os.Geteuid() == 0),
		"CHECKER_BROWSER_START_TIMEOUT": "2m",
	})
	srv := grpcservertest.Serve(t, run)
	defer func() { _ = srv.Stop(t) }()

	const livenessKill = 35 * time.Second // 15 s + 2 x 10 s
	client := &http.Client{Timeout: time.Second}
	begin := time.Now()
	for time.Since(begin) < livenessKill-5*time.Second {
		resp, err := client.Get("http://" + metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("/healthz answered %s after the start", time.Since(begin).Round(time.Millisecond))
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("/healthz did not answer within %s of the start with CHECKER_BROWSER_START_TIMEOUT=2m and a slow Chromium: the liveness probe kills the container at %s, before the start timeout the docs say to lengthen has passed",
		livenessKill-5*time.Second, livenessKill)
}
