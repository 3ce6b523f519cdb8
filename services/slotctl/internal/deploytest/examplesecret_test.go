package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// TestExampleTokensAreRefused: the placeholders of secret.example.yaml, if
// applied unchanged, stop the services at start instead of working as
// tokens anyone can read in this repository.
func TestExampleTokensAreRefused(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "base", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]string
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		if s, ok := decodeStrict(t, "secret.example.yaml", []byte(doc)).(*corev1.Secret); ok && s.Name == "slotwatch-auth" {
			data = s.StringData
		}
	}
	if data["tokens"] == "" || data["checker-token"] == "" || data["admin-token"] == "" {
		t.Fatalf("slotwatch-auth lacks tokens, checker-token or admin-token: %v", data)
	}
	dir := t.TempDir()
	write := func(name string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if _, err := auth.OpenTokens(write("tokens"), nil); err == nil {
		t.Error("the example tokens file loads")
	}
	for _, key := range []string{"checker-token", "admin-token"} {
		_, err := auth.DialOptions("127.0.0.1:50051", auth.ClientConfig{TokenFile: write(key)})
		if err == nil || !strings.Contains(err.Error(), "CHANGE-ME") || !strings.Contains(err.Error(), "accountpool tokens generate") {
			t.Errorf("%s: want a refusal naming the placeholder and how to make a token, got %v", key, err)
		}
	}
}
