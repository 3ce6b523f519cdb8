package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzAdminState: any body PUT to /admin/state or /admin/slots is taken
// (200) or refused (400), never a panic or a 500; a state taken reads back
// from GET /admin/state as a Config that is valid and PUTs back unchanged.
func FuzzAdminState(f *testing.F) {
	base, _ := json.Marshal(baseConfig())
	f.Add(false, base)
	f.Add(false, []byte(`{"missions":[{"code":"fra","centres":["a"],"visa_categories":["b"],"slots":[{"centre":"a","visa_category":"b","date":"2030-02-30","time":"24:00"}]}],"timezone":"Mars/Olympus"}`))
	f.Add(false, []byte(`{"family":"ais","timezone":"Asia/Kolkata","accounts":[{"email":" A@x ","password":"p","behaviour":{"kind":"captcha","delay_ms":-1}}]}`))
	f.Add(true, []byte(`{"mission":"fra","centre":"London","visa_category":"tourism","slots":[{"centre":"London","visa_category":"tourism","date":"2030-07-01","time":"9:05"}]}`))
	f.Add(true, []byte(`{"mission":"fra","slots":[{"date":"0000-00-00"}]}`))
	s, err := New(baseConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, slots bool, body []byte) {
		if err := s.SetState(baseConfig()); err != nil {
			t.Fatal(err)
		}
		path := "/admin/state"
		if slots {
			path = "/admin/slots"
		}
		if code := serve(s, "PUT", path, body).Code; code != http.StatusOK && code != http.StatusBadRequest {
			t.Fatalf("PUT %s %s: %d", path, body, code)
		}
		got := serve(s, "GET", "/admin/state", nil)
		var cfg Config
		if err := json.Unmarshal(got.Body.Bytes(), &cfg); err != nil {
			t.Fatalf("GET state: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("the state after PUT %s %s is not valid: %v", path, body, err)
		}
		if back := serve(s, "PUT", "/admin/state", got.Body.Bytes()); back.Code != http.StatusOK ||
			!bytes.Equal(serve(s, "GET", "/admin/state", nil).Body.Bytes(), got.Body.Bytes()) {
			t.Fatalf("the state does not PUT back unchanged: %d %s\n%s", back.Code, back.Body, got.Body)
		}
	})
}

func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec
}
