package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// TestGatewayRefusesHugeBodiesWithoutReadingThem is issue 10's experiment
// (item 2) against the binary's serve path: a 150 MiB POST to the JSON
// gateway took the heap from 152 to 858 MiB, token or not, because the
// gateway decoded the body before gRPC's auth saw the request. Now it is
// 401 without a token and 413 with one, and the process allocates a few
// MiB, not the body. Not parallel: it measures the whole process's
// allocations.
func TestGatewayRefusesHugeBodiesWithoutReadingThem(t *testing.T) {
	srv := serve(t, map[string]string{"AUTH_TOKENS_FILE": authtest.TokensFile(t)})
	grpcservertest.DialServing(t, srv.grpcAddr)
	url := "http://" + srv.httpAddr + "/v1/applicants"
	// A string field that never ends: the JSON decoder has to read it all.
	body := func() *grpcservertest.Body { return grpcservertest.NewBody(`{"full_name":"`, 150<<20) }

	// The gateway works for a real caller, and is warm before measuring.
	created := grpcservertest.Post(t, url, authtest.AdminToken, strings.NewReader(`{"full_name":"Ada Lovelace","email":"ada@example.com"}`), -1)
	if created.Status != http.StatusOK {
		t.Fatalf("create through the gateway: %d %v", created.Status, created.Body)
	}

	var answers []grpcservertest.Answer
	var sent []int64
	start := time.Now()
	total, heap := grpcservertest.Allocated(func() {
		for _, c := range []struct {
			tok           string
			contentLength int64
		}{
			{"", -1},                             // no token, chunked
			{authtest.AdminToken, 150 << 20},     // a token, Content-Length says it all
			{authtest.AdminToken, -1},            // a token, chunked: read up to the limit only
			{"not-a-token-0123456789abcdef", -1}, // a wrong token: the chain refuses it after at most 1 MiB
		} {
			b := body()
			answers = append(answers, grpcservertest.Post(t, url, c.tok, b, c.contentLength))
			sent = append(sent, b.Sent())
		}
	})
	t.Logf("four 150 MiB POSTs answered in %s; the process allocated %d KiB meanwhile, the heap grew %d KiB; the client sent %v bytes",
		time.Since(start).Round(time.Millisecond), total>>10, heap>>10, sent)

	for i, want := range []int{http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge} {
		if answers[i].Status != want {
			t.Errorf("POST %d: %d %v, want %d", i, answers[i].Status, answers[i].Body, want)
		}
	}
	if answers[0].Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("401 without WWW-Authenticate: %v", answers[0].Header)
	}
	// 600 MiB were offered; the server reads at most 1 MiB of each body,
	// and the decoder's copies of that stay within a few MiB per request.
	if total > 40<<20 {
		t.Errorf("the process allocated %d MiB while refusing the bodies", total>>20)
	}
	if heap > 8<<20 {
		t.Errorf("the live heap grew by %d MiB", heap>>20)
	}
	if b := grpcserver.MaxRequestBodyBytes; answers[2].Body["message"] == nil || !strings.Contains(answers[2].Body["message"].(string), "1048576") {
		t.Errorf("413 body %v does not say the limit (%d)", answers[2].Body, b)
	}
	if err := srv.Stop(t); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
