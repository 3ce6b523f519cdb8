package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// TestExampleTokensAreRefused: the placeholders of secret.example.yaml, if
// applied unchanged, stop the services at start instead of working as
// tokens anyone can read in this repository.
func TestExampleTokensAreRefused(t *testing.T) {
	data := map[string]string{} // "secret/key" → value
	for _, s := range exampleSecretObjects(t) {
		for k, v := range s.StringData {
			data[s.Name+"/"+k] = v
		}
	}
	servers := []string{"slotwatch-auth/accountpool-tokens", "slotwatch-auth/requests-tokens", "slotwatch-auth/checker-tokens", "slotwatch-auth/notifier-tokens"}
	clients := []string{"slotwatch-checker-token/token", "slotwatch-notifier-token/token", "slotwatch-admin-token/token"}
	for _, k := range slices.Concat(servers, clients) {
		if data[k] == "" {
			t.Fatalf("secret.example.yaml has no %s", k)
		}
	}
	dir := t.TempDir()
	write := func(name string) string {
		path := filepath.Join(dir, strings.ReplaceAll(name, "/", "-"))
		if err := os.WriteFile(path, []byte(data[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, key := range servers {
		if _, err := auth.OpenTokens(write(key), nil); err == nil {
			t.Errorf("the example tokens file %s loads", key)
		}
	}
	for _, key := range clients {
		_, err := auth.DialOptions("127.0.0.1:50051", auth.ClientConfig{TokenFile: write(key)})
		if err == nil || !strings.Contains(err.Error(), "CHANGE-ME") || !strings.Contains(err.Error(), "accountpool tokens generate") {
			t.Errorf("%s: want a refusal naming the placeholder and how to make a token, got %v", key, err)
		}
	}
}
