package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// serveGateway serves the JSON gateway on 127.0.0.1 until the test ends,
// calling the gRPC server over conn.
func serveGateway(t *testing.T, conn *grpc.ClientConn) *httptest.Server {
	t.Helper()
	gw, err := server.Gateway(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	return hs
}

// TestGateway drives the JSON API over real HTTP on 127.0.0.1, through the
// gateway, into the gRPC server over bufconn with its interceptor chain.
func TestGateway(t *testing.T) {
	t.Parallel()
	_, bundle := setup(t)
	hs := serveGateway(t, bundle.server.conn)

	do := func(t *testing.T, method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		req, err := http.NewRequestWithContext(testkit.Context(t), method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, wantStatus)
		}
		out := map[string]any{}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
		}
		return out
	}
	field := func(m map[string]any, path ...string) any {
		var v any = m
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		return v
	}

	created := do(t, "POST", "/v1/applicants", `{"full_name":"Grace Hopper","email":"grace@example.com","passport_number":"P7654321","nationality":"us"}`, 200)
	id := field(created, "applicant", "id").(string)
	if field(created, "applicant", "passport_number") != "" {
		t.Fatalf("create returned the passport number: %v", created)
	}
	got := do(t, "GET", "/v1/applicants/"+id, "", 200)
	if field(got, "applicant", "passport_number") != "P7654321" || field(got, "applicant", "nationality") != "US" {
		t.Fatalf("GET applicant = %v", got)
	}
	patched := do(t, "PATCH", "/v1/applicants/"+id, `{"phone":"+1 202 555 0100"}`, 200)
	if field(patched, "applicant", "phone") != "+1 202 555 0100" || field(patched, "applicant", "full_name") != "Grace Hopper" {
		t.Fatalf("PATCH applicant = %v", patched)
	}
	list := do(t, "GET", "/v1/applicants?page_size=10", "", 200)
	if n := len(list["applicants"].([]any)); n != 1 {
		t.Fatalf("list = %v", list)
	}

	r := do(t, "POST", "/v1/requests", `{"applicant_id":"`+id+`","mission_code":"fra","centre":"paris","visa_category":"tourism","earliest_date":"2030-07-01","latest_date":"2030-07-10"}`, 200)
	rid := field(r, "request", "id").(string)
	if field(r, "request", "status") != "REQUEST_STATUS_PENDING" {
		t.Fatalf("POST request = %v", r)
	}
	if got := do(t, "GET", "/v1/requests/"+rid, "", 200); field(got, "request", "mission_code") != "fra" {
		t.Fatalf("GET request = %v", got)
	}
	if got := do(t, "GET", "/v1/requests?mission_code=fra&status=REQUEST_STATUS_PENDING", "", 200); len(got["requests"].([]any)) != 1 {
		t.Fatalf("GET requests = %v", got)
	}
	cancelled := do(t, "POST", "/v1/requests/"+rid+":cancel", "", 200)
	if field(cancelled, "request", "status") != "REQUEST_STATUS_CANCELLED" {
		t.Fatalf("cancel = %v", cancelled)
	}
	// Book and resume need a SLOT_FOUND request: FAILED_PRECONDITION is 400.
	for _, verb := range []string{":book", ":resume"} {
		if refused := do(t, "POST", "/v1/requests/"+rid+verb, "", 400); refused["code"] != float64(codes.FailedPrecondition) {
			t.Fatalf("POST %s on a cancelled request = %v", verb, refused)
		}
	}
	if del := do(t, "DELETE", "/v1/applicants/"+id, "", 200); del["cancelled_requests"] != float64(0) {
		t.Fatalf("DELETE = %v", del)
	}

	// Errors keep their gRPC meaning.
	missing := do(t, "GET", "/v1/applicants/0190f5a4-0000-7000-8000-000000000000", "", 404)
	if missing["code"] != float64(5) {
		t.Fatalf("404 body = %v", missing)
	}
	bad := do(t, "POST", "/v1/requests", `{"applicant_id":"`+id+`","mission_code":"FRA","centre":"","visa_category":"tourism","earliest_date":"2030-07-11","latest_date":"2030-07-10"}`, 400)
	fields := map[string]bool{}
	for _, d := range bad["details"].([]any) {
		for _, v := range d.(map[string]any)["field_violations"].([]any) {
			fields[v.(map[string]any)["field"].(string)] = true
		}
	}
	for _, f := range []string{"mission_code", "centre", "earliest_date"} {
		if !fields[f] {
			t.Fatalf("400 body %v lacks a violation of %s", bad, f)
		}
	}
	do(t, "POST", "/v1/applicants", `{"fullname":"typo"}`, 400)
}

// TestGatewayServesOpenAPIForEveryRoute reads the HTTP rules file the gateway
// is generated from and checks that GET /openapi.json, asked without a
// token, documents each of its routes with its method.
func TestGatewayServesOpenAPIForEveryRoute(t *testing.T) {
	t.Parallel()
	_, bundle := setup(t)
	hs := serveGateway(t, bundle.server.conn)

	rules, err := os.ReadFile("../../../../proto/slotwatch/requests/v1/requests_gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`(?m)^\s+(get|post|put|patch|delete):\s*(\S+)\s*$`).FindAllStringSubmatch(string(rules), -1)
	if len(routes) < 9 {
		t.Fatalf("found %d routes in the rules file, want at least 9: %q", len(routes), routes)
	}

	req, err := http.NewRequestWithContext(testkit.Context(t), http.MethodGet, hs.URL+"/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %q %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	for _, r := range routes {
		method, path := r[1], r[2]
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("openapi.json has no %s %s", strings.ToUpper(method), path)
		}
	}
}
