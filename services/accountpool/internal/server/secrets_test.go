package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestPasswordsAtRest(t *testing.T) {
	t.Parallel()

	t.Run("ColumnHoldsNoPlaintext", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		ids := addAccounts(t, c, 3)
		for i, id := range ids {
			var ct []byte
			if err := b.db.QueryRow(testkit.Context(t), `SELECT password_ciphertext FROM accountpool.accounts WHERE id = $1`, id).Scan(&ct); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(ct, []byte(accPassword(i+1))) {
				t.Fatalf("account %d stores its password in clear", id)
			}
			if kid, ok := secrets.KeyID(ct); !ok || kid != b.keys.PrimaryKeyID() {
				t.Fatalf("account %d: ciphertext not made with the primary key", id)
			}
		}
	})

	t.Run("CiphertextMovedToAnotherRowDoesNotDecrypt", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
		ids := addAccounts(t, c, 2)
		// Give account 1 account 2's ciphertext, as an attacker with write
		// access to the table might.
		if _, err := b.db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET password_ciphertext =
			(SELECT password_ciphertext FROM accountpool.accounts WHERE id = $2) WHERE id = $1`, ids[0], ids[1]); err != nil {
			t.Fatal(err)
		}
		_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.Internal)
		if strings.Contains(err.Error(), accPassword(2)) {
			t.Fatal("error leaks the password")
		}
		// The lease ends as an error and the account is disabled until it
		// gets a new password; the next Acquire gets the intact account 2.
		if a := getAccount(t, c, ids[0]); a.GetConsecutiveFailures() != 1 || a.GetLeasedBy() != "" ||
			a.GetState() != apv1.AccountState_ACCOUNT_STATE_DISABLED {
			t.Fatalf("undecryptable account after acquire: %v", a)
		}
		if l := acquire(t, c, "fra"); l.GetAccountId() != ids[1] || l.GetPassword() != accPassword(2) {
			t.Fatalf("second acquire: %v", l.GetAccountId())
		}
		// After a rotation, re-encryption skips the bad row and names it,
		// and still moves the good one.
		rotated, err := secrets.Rotate(b.keyset)
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := setupOn(t, b.dbURL, withKeyset(rotated))
		resp, err := c2.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetUndecryptableAccountIds(); len(got) != 1 || got[0] != ids[0] || resp.GetReencrypted() != 1 {
			t.Fatalf("reencrypt answered %v; want account %d undecryptable and 1 moved", resp, ids[0])
		}
	})

	// Session states are credentials under the same keyset: a rotation
	// moves them too, and one that does not open is cleared.
	t.Run("RotationMovesSessionStatesToo", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 2)
		for range ids {
			releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{LoggedIn: true, SessionState: []byte(cookie)})
		}
		// Account 2's session state is damaged.
		if _, err := b.db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET session_ciphertext = password_ciphertext WHERE id = $1`, ids[1]); err != nil {
			t.Fatal(err)
		}
		rotated, err := secrets.Rotate(b.keyset)
		if err != nil {
			t.Fatal(err)
		}
		c2, b2 := setupOn(t, b.dbURL, withKeyset(rotated), withConfig(noCooldown))
		resp, err := c2.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetSessionsReencrypted() != 1 || resp.GetSessionsCleared() != 1 || resp.GetReencrypted() != 2 {
			t.Fatalf("reencrypt: %v; want 2 passwords and 1 session moved, 1 session cleared", resp)
		}
		ct, exp := storedSession(t, b, ids[0])
		if kid, _ := secrets.KeyID(ct); kid != b2.keys.PrimaryKeyID() || exp == nil {
			t.Fatalf("account %d's session state is under key %d (expiry %v), want the new primary %d", ids[0], kid, exp, b2.keys.PrimaryKeyID())
		}
		if ct, exp := storedSession(t, b, ids[1]); ct != nil || exp != nil {
			t.Fatalf("account %d's damaged session state was not cleared", ids[1])
		}
		if l := acquire(t, c2, "fra"); l.GetAccountId() != ids[0] || string(l.GetSessionState()) != cookie {
			t.Fatalf("lease after the rotation: account %d, session %q", l.GetAccountId(), l.GetSessionState())
		}
		if again, err := c2.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{}); err != nil || again.GetSessionsReencrypted() != 0 {
			t.Fatalf("second reencrypt: %v, %v", again, err)
		}
	})

	t.Run("RotationRoundTrip", func(t *testing.T) {
		t.Parallel()
		oldKeyset, err := secrets.Generate()
		if err != nil {
			t.Fatal(err)
		}
		c, b := setup(t, withKeyset(oldKeyset), withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
		ids := addAccounts(t, c, 4)

		rotated, err := secrets.Rotate(oldKeyset)
		if err != nil {
			t.Fatal(err)
		}
		// A replica restarted with the rotated keyset still reads old rows.
		c2, b2 := setupOn(t, b.dbURL, withKeyset(rotated), withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
		if b2.keys.PrimaryKeyID() == b.keys.PrimaryKeyID() {
			t.Fatal("rotation kept the primary key")
		}
		resp, err := c2.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetReencrypted() != 4 || resp.GetPrimaryKeyId() != b2.keys.PrimaryKeyID() {
			t.Fatalf("reencrypt: %v", resp)
		}
		again, err := c2.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
		if err != nil || again.GetReencrypted() != 0 {
			t.Fatalf("second reencrypt: %v, %v", again, err)
		}
		oldOnly, err := secrets.Parse(oldKeyset)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			var ct []byte
			if err := b.db.QueryRow(testkit.Context(t), `SELECT password_ciphertext FROM accountpool.accounts WHERE id = $1`, id).Scan(&ct); err != nil {
				t.Fatal(err)
			}
			if kid, _ := secrets.KeyID(ct); kid != b2.keys.PrimaryKeyID() {
				t.Fatalf("account %d still under key %d", id, kid)
			}
			if _, err := oldOnly.Decrypt(ct, nil); err == nil {
				t.Fatal("the old keyset opens a re-encrypted password")
			}
		}
		seen := map[string]bool{}
		for range ids {
			l := acquire(t, c2, "fra")
			seen[l.GetPassword()] = true
			release(t, c2, l, apv1.Outcome_OUTCOME_NO_SLOT)
			b2.clock.Advance(time.Second)
		}
		for i := range ids {
			if !seen[accPassword(i+1)] {
				t.Fatalf("password of account %d lost in rotation; saw %v", i+1, len(seen))
			}
		}
		_ = c
	})

	t.Run("UpdatedPasswordIsWhatTheNextLeaseGets", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		id := addAccounts(t, c, 1)[0]
		pw := "a-brand-new-password"
		if _, err := c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: id, Password: &pw}); err != nil {
			t.Fatal(err)
		}
		if l := acquire(t, c, "fra"); l.GetPassword() != pw {
			t.Fatal("lease does not carry the updated password")
		}
	})
}

// TestPasswordOnlyInAcquire drives every RPC that touches an account and
// checks that the password appears in Acquire's answer and nowhere else:
// not in another response, not in an error, not in the logs.
func TestPasswordOnlyInAcquire(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	const pw = "Hunter2-very-secret"
	var seen []string // every response and error message
	answer := func(m proto.Message, err error) {
		t.Helper()
		if err != nil {
			seen = append(seen, err.Error())
			return
		}
		seen = append(seen, protojson.Format(m))
	}
	created, err := c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: "secret@example.com", Password: pw, Phone: "+33123456789"})
	if err != nil {
		t.Fatal(err)
	}
	answer(created, nil)
	id := created.GetAccount().GetId()
	answer(c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: "secret@example.com", Password: pw}))
	answer(c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: "bad", Password: pw}))

	lease := acquire(t, c, "fra")
	if lease.GetPassword() != pw {
		t.Fatal("Acquire does not return the password")
	}
	answer(c.GetAccount(testkit.Context(t), &apv1.GetAccountRequest{Id: id}))
	answer(c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{}))
	answer(c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: lease.GetLeaseId(), FencingToken: lease.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT}))
	answer(c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: id, Password: proto.String(pw + "2")}))
	answer(c.ResetAccount(testkit.Context(t), &apv1.ResetAccountRequest{Id: id}))
	answer(c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{}))
	answer(c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{}))
	answer(c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{}))
	answer(c.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{}))
	for _, s := range seen {
		if strings.Contains(s, "Hunter2") {
			t.Fatalf("password in an answer: %s", s)
		}
	}
	if logs := b.logs.String(); strings.Contains(logs, "Hunter2") || !strings.Contains(logs, "CreateAccount") {
		t.Fatalf("password in the logs, or no request logs at all: %q", logs)
	}
}

// TestAReplicaWithAnotherKeysetDisablesNoAccount: a replica started with a
// keyset that lacks the key a password was sealed with (a keyset file
// mixed up, or a replica not yet rolled out when a rotated one wrote a new
// password) cannot open it, but the row is intact: the fault is the
// replica's. Its Acquires must fail without disabling the accounts or
// charging them a failure, and a replica with the right keyset still
// leases them.
func TestAReplicaWithAnotherKeysetDisablesNoAccount(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]option{"Batched": nil, "Unbatched": {withoutBatching()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, b := setup(t, withConfig(noCooldown))
			ids := addAccounts(t, c, 3)
			other, err := secrets.Generate()
			if err != nil {
				t.Fatal(err)
			}
			wrong, _ := setupOn(t, b.dbURL, append([]option{withKeyset(other), withConfig(noCooldown)}, opts...)...)
			for range ids {
				_, err := wrong.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
				testkit.WantCode(t, err, codes.Internal)
			}
			for _, id := range ids {
				wantUncharged(t, c, id, "after the other keyset's acquires")
			}
			if l := acquire(t, c, "fra"); l.GetPassword() == "" {
				t.Fatal("the right keyset's replica got no password")
			}
		})
	}
}

// wantUncharged fails t unless account id is available with no failure
// (after what).
func wantUncharged(t *testing.T, c apv1.AccountPoolServiceClient, id int64, what string) {
	t.Helper()
	if a := getAccount(t, c, id); a.GetState() != apv1.AccountState_ACCOUNT_STATE_AVAILABLE || a.GetConsecutiveFailures() != 0 {
		t.Errorf("account %d %s: state %s, %d failures; want available, 0", id, what, a.GetState(), a.GetConsecutiveFailures())
	}
}

// TestReencryptOnAReplicaWithAnotherKeysetClearsNoSession: ReencryptPasswords
// on a replica whose keyset lacks the key a session state was sealed with
// (a wrong keyset file, or an old pod during a rotation's rollout) cannot
// tell that state from none, but it is intact: clearing it would cost its
// account a login, for every account at once. It is left as it is; only a
// state whose key the keyset holds and that does not open is cleared.
func TestReencryptOnAReplicaWithAnotherKeysetClearsNoSession(t *testing.T) {
	t.Parallel()
	c, b := setup(t, withConfig(noCooldown))
	id := addAccounts(t, c, 1)[0]
	releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{LoggedIn: true, SessionState: []byte(cookie)})
	other, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := setupOn(t, b.dbURL, withKeyset(other), withConfig(noCooldown))
	resp, err := wrong.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSessionsCleared() != 0 || len(resp.GetUndecryptableAccountIds()) != 1 {
		t.Errorf("reencrypt on the other keyset's replica: %v; want the password named undecryptable and no session cleared", resp)
	}
	if ct, _ := storedSession(t, b, id); ct == nil {
		t.Fatal("the other keyset's replica cleared the session state")
	}
	if l := acquire(t, c, "fra"); string(l.GetSessionState()) != cookie {
		t.Fatalf("lease after the other keyset's reencrypt carries session %q, want %q", l.GetSessionState(), cookie)
	}
}
