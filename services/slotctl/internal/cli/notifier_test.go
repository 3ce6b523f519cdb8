package cli

import (
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// startNotifier runs a Notifier beside the bundle's services, on their
// database, reading Requests with the reader token, and returns its address.
func (b *testBundle) startNotifier(t *testing.T) string {
	t.Helper()
	var env []string
	for _, kv := range b.rqEnv {
		if !strings.HasPrefix(kv, "ENCRYPTION_KEYSET_FILE=") && !strings.HasPrefix(kv, "HTTP_ADDR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "ENCRYPTION_KEYSET_FILE="+grpcservertest.KeysetFile(t), "REQUESTS_ADDR="+b.rqAddr, "AUTH_TOKEN_FILE="+b.readerToken)
	addr, _ := startService(t, b.owner, "notifier", env)
	return addr
}

type jsonContact struct {
	ID               string `json:"id"`
	ApplicantID      string `json:"applicant_id"`
	Kind             string `json:"kind"`
	Address          string `json:"address"`
	Language         string `json:"language"`
	WebhookSecretSet bool   `json:"webhook_secret_set"`
}

func TestNotifierCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nt := b.startNotifier(t)
	run := func(stdin string, args ...string) result {
		return b.slotctl(t, stdin, append([]string{"--notifier", nt}, args...)...)
	}
	ap := decodeJSON[jsonApplicant](t, b.slotctl(t, "X1234567\n", "-o", "json", "applicants", "add", "--name", "Ada Lovelace",
		"--email", "ada@example.com", "--read-passport").must(t).stdout)

	// A secret typed slower than --timeout: the call's time starts after it.
	typing := func(line string, args ...string) result {
		return b.slotctlTyping(t, line, slowTyping, append([]string{"--notifier", nt, "--timeout", "2s"}, args...)...)
	}
	const secret = "whsec-from-stdin-0123456789abcdefghijkl"
	c := decodeJSON[jsonContact](t, typing(secret+"\n", "-o", "json", "contacts", "add", "--applicant", ap.ID, "--kind", "webhook",
		"--address", "https://hooks.example.com/slotwatch", "--language", "fr", "--read-secret").must(t).stdout)
	if c.ApplicantID != ap.ID || c.Kind != "CONTACT_KIND_WEBHOOK" || c.Language != "fr" || !c.WebhookSecretSet {
		t.Errorf("contact: %+v", c)
	}
	if r := typing(secret+"-2\n", "contacts", "update", c.ID, "--read-secret").must(t); !strings.Contains(r.stdout, "rotating") {
		t.Errorf("contacts update --read-secret:\n%s", r.stdout)
	}
	if r := typing(secret+"-3\n", "subscriptions", "add", "--missions", "ita", "--kind", "webhook", "--address", "https://hooks.example.com/ops",
		"--read-secret").must(t); !strings.Contains(r.stdout, "set") {
		t.Errorf("subscriptions add --read-secret:\n%s", r.stdout)
	}
	r := run("", "contacts", "list", "--applicant", ap.ID).must(t)
	if !strings.Contains(r.stdout, c.ID) || !strings.Contains(r.stdout, "webhook") || strings.Contains(r.stdout, secret) {
		t.Errorf("contacts list:\n%s", r.stdout)
	}
	run("", "contacts", "update", c.ID, "--address", "http://example.com/hook").fails(t, 1, "address", "InvalidArgument")
	run("", "contacts", "add", "--applicant", "0190a8c4-0000-7000-8000-0000000000ff", "--kind", "email", "--address", "x@example.com").
		fails(t, 1, "FailedPrecondition")
	run("", "contacts", "add", "--applicant", ap.ID, "--kind", "pigeon").fails(t, 2, "--kind")

	r = run("", "subscriptions", "add", "--missions", "fra,bel", "--events", "slot_found,expired", "--kind", "email", "--address", "ops@example.com").must(t)
	if !strings.Contains(r.stdout, "bel,fra") || !strings.Contains(r.stdout, "slot_found,expired") {
		t.Errorf("subscriptions add:\n%s", r.stdout)
	}
	if r := run("", "subscriptions", "list", "--mission", "bel").must(t); !strings.Contains(r.stdout, "ops@example.com") {
		t.Errorf("subscriptions list --mission bel:\n%s", r.stdout)
	}
	if r := run("", "subscriptions", "list", "--mission", "ita").must(t); strings.Contains(r.stdout, "ops@example.com") {
		t.Errorf("subscriptions list --mission ita:\n%s", r.stdout)
	}
	run("", "deliveries", "list", "--state", "dead").must(t)
	run("", "deliveries", "retry", "42").fails(t, 1, "NotFound")
	run("", "contacts", "delete", c.ID).must(t)
	run("", "contacts", "get", c.ID).fails(t, 1, "NotFound")
}
