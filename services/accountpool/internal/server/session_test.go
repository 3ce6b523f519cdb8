package server_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// cookie is a session state whose text a test can look for anywhere.
const cookie = `{"cookies":[{"name":"SESSIONID","value":"c00kie-s3cret-7f3a"}]}`

func releaseSession(t *testing.T, c apv1.AccountPoolServiceClient, l *apv1.Lease, o apv1.Outcome, req *apv1.ReleaseRequest) *apv1.ReleaseResponse {
	t.Helper()
	req.LeaseId, req.FencingToken, req.Outcome = l.GetLeaseId(), l.GetFencingToken(), o
	resp, err := c.Release(testkit.Context(t), req)
	if err != nil {
		t.Fatalf("release %s: %v", l.GetLeaseId(), err)
	}
	return resp
}

// storedSession reads an account's session columns as they are at rest.
func storedSession(t *testing.T, b *testBundle, id int64) ([]byte, *time.Time) {
	t.Helper()
	var ct []byte
	var exp *time.Time
	if err := b.db.QueryRow(testkit.Context(t), `SELECT session_ciphertext, session_expires_at FROM accountpool.accounts WHERE id = $1`, id).Scan(&ct, &exp); err != nil {
		t.Fatal(err)
	}
	return ct, exp
}

func noCooldown(c *domain.Config) { c.Cooldown = 0 }

func TestSessionState(t *testing.T) {
	t.Parallel()

	t.Run("StoredEncryptedAndHandedToTheNextLease", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		if len(l.GetSessionState()) != 0 || l.GetSessionExpiresAt() != nil {
			t.Fatalf("a new account's lease carries a session: %v", l)
		}
		releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie), LoggedIn: true})
		ct, exp := storedSession(t, b, ids[0])
		if ct == nil || bytes.Contains(ct, []byte("c00kie-s3cret")) {
			t.Fatalf("session column holds %q; want ciphertext without the cookie", ct)
		}
		if want := b.clock.Now().Add(domain.DefaultConfig().SessionMaxAge); exp == nil || !exp.Equal(want) {
			t.Fatalf("session expires at %v, want %v (POOL_SESSION_MAX_AGE)", exp, want)
		}
		b.clock.Advance(time.Hour)
		l = acquire(t, c, "fra")
		if string(l.GetSessionState()) != cookie || !l.GetSessionExpiresAt().AsTime().Equal(*exp) {
			t.Fatalf("next lease's session = %q until %v", l.GetSessionState(), l.GetSessionExpiresAt())
		}
		// A Release that says nothing of the session keeps it.
		release(t, c, l, apv1.Outcome_OUTCOME_SUCCESS)
		if l := acquire(t, c, "fra"); string(l.GetSessionState()) != cookie {
			t.Fatalf("a release without session fields dropped the session: %q", l.GetSessionState())
		}
	})

	t.Run("MaxAgeIsTheCallersCappedByTheServer", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown, c.SessionMaxAge = 0, 2*time.Hour }))
		ids := addAccounts(t, c, 1)
		for _, tc := range []struct{ ask, want time.Duration }{{30 * time.Minute, 30 * time.Minute}, {48 * time.Hour, 2 * time.Hour}} {
			l := acquire(t, c, "fra")
			releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie), SessionMaxAge: durationpb.New(tc.ask)})
			if _, exp := storedSession(t, b, ids[0]); exp == nil || !exp.Equal(b.clock.Now().Add(tc.want)) {
				t.Fatalf("session_max_age %s: expires at %v, want now+%s", tc.ask, exp, tc.want)
			}
		}
	})

	t.Run("ExpiredIsNone", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		addAccounts(t, c, 1)
		releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT,
			&apv1.ReleaseRequest{SessionState: []byte(cookie), SessionMaxAge: durationpb.New(time.Hour)})
		b.clock.Advance(time.Hour)
		if l := acquire(t, c, "fra"); len(l.GetSessionState()) != 0 || l.GetSessionExpiresAt() != nil {
			t.Fatalf("an expired session was handed out: %q", l.GetSessionState())
		}
	})

	t.Run("BoundToItsRowAndPurpose", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 3)
		releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
		ctx := testkit.Context(t)
		// Account 2 gets account 1's session ciphertext; account 3 gets its
		// own password ciphertext as a session.
		if _, err := b.db.Exec(ctx, `UPDATE accountpool.accounts SET (session_ciphertext, session_expires_at) =
			(SELECT session_ciphertext, session_expires_at FROM accountpool.accounts WHERE id = $1) WHERE id = $2`, ids[0], ids[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Exec(ctx, `UPDATE accountpool.accounts SET session_ciphertext = password_ciphertext,
			session_expires_at = $2 WHERE id = $1`, ids[2], b.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, want := range ids[1:] {
			l := acquire(t, c, "fra")
			if l.GetAccountId() != want {
				t.Fatalf("leased account %d, want %d", l.GetAccountId(), want)
			}
			if len(l.GetSessionState()) != 0 || l.GetSessionExpiresAt() != nil {
				t.Fatalf("account %d opened a session that is not its own: %q", want, l.GetSessionState())
			}
			if l.GetPassword() != accPassword(int(want-ids[0])+1) {
				t.Fatalf("account %d's password changed", want)
			}
		}
		if logs := b.logs.String(); !strings.Contains(logs, "session state does not decrypt") || strings.Contains(logs, "c00kie") ||
			strings.Contains(logs, accPassword(3)) {
			t.Fatalf("logs should name the bad session and never its content:\n%s", logs)
		}
	})

	t.Run("ClearedOnEachEvent", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 1)
		id := ids[0]
		ctx := testkit.Context(t)
		store := func() {
			t.Helper()
			releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
			if ct, _ := storedSession(t, b, id); ct == nil {
				t.Fatal("session not stored")
			}
		}
		on := true
		for _, ev := range []struct {
			name string
			do   func() error
		}{
			{"ResetAccount", func() error { _, err := c.ResetAccount(ctx, &apv1.ResetAccountRequest{Id: id}); return err }},
			{"NewPassword", func() error {
				pw := accPassword(1)
				_, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Password: &pw})
				return err
			}},
			{"Disabled", func() error {
				off := false
				if _, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Active: &off}); err != nil {
					return err
				}
				_, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Active: &on})
				return err
			}},
		} {
			store()
			if err := ev.do(); err != nil {
				t.Fatalf("%s: %v", ev.name, err)
			}
			b.clock.Advance(time.Second)
			if ct, exp := storedSession(t, b, id); ct != nil || exp != nil {
				t.Fatalf("%s left the session stored", ev.name)
			}
		}
		for _, o := range []apv1.Outcome{apv1.Outcome_OUTCOME_LOGIN_FAIL, apv1.Outcome_OUTCOME_BANNED, apv1.Outcome_OUTCOME_NO_SLOT} {
			if _, err := c.ResetAccount(ctx, &apv1.ResetAccountRequest{Id: id}); err != nil {
				t.Fatal(err)
			}
			store()
			l := acquire(t, c, "fra")
			if string(l.GetSessionState()) != cookie {
				t.Fatalf("before %s: lease without the session", o)
			}
			// NO_SLOT clears only when asked to.
			releaseSession(t, c, l, o, &apv1.ReleaseRequest{ClearSession: o == apv1.Outcome_OUTCOME_NO_SLOT})
			if ct, exp := storedSession(t, b, id); ct != nil || exp != nil {
				t.Fatalf("release with %s left the session stored", o)
			}
		}
		// A lease held while its account gets a new password stores
		// nothing, nor one held while it is switched off.
		pw := "a-new-password"
		off := false
		for _, change := range []*apv1.UpdateAccountRequest{{Id: id, Password: &pw}, {Id: id, Active: &off}} {
			if _, err := c.ResetAccount(ctx, &apv1.ResetAccountRequest{Id: id}); err != nil {
				t.Fatal(err)
			}
			l := acquire(t, c, "fra")
			b.clock.Advance(time.Second)
			if _, err := c.UpdateAccount(ctx, change); err != nil {
				t.Fatal(err)
			}
			releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
			if ct, _ := storedSession(t, b, id); ct != nil {
				t.Fatalf("after %v during the lease, its release stored a session", change)
			}
			// The next lease, begun after the change, stores one again.
			if _, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Active: &on}); err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(time.Second)
			releaseSession(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie)})
			if ct, _ := storedSession(t, b, id); ct == nil {
				t.Fatalf("after %v, a later lease could not store a session", change)
			}
		}
	})

	t.Run("ReplayedReleaseStoresNothingNew", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		first := releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie), LoggedIn: true})
		ct, exp := storedSession(t, b, ids[0])
		b.clock.Advance(time.Minute)
		again := releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte("other"), LoggedIn: false})
		if !proto.Equal(first, again) {
			t.Fatalf("replay answered %v, first %v", again, first)
		}
		if ct2, exp2 := storedSession(t, b, ids[0]); !bytes.Equal(ct, ct2) || !exp.Equal(*exp2) {
			t.Fatal("a replayed Release rewrote the session")
		}
		if u := usage(t, c, ids[0]); len(u) != 1 || !u[0].GetLoggedIn() {
			t.Fatalf("usage after replay: %v", u)
		}
	})

	t.Run("NeverInOtherResponsesOrLogs", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, withConfig(noCooldown))
		ids := addAccounts(t, c, 1)
		ctx := testkit.Context(t)
		l := acquire(t, c, "fra")
		var answers []proto.Message
		answers = append(answers, releaseSession(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT, &apv1.ReleaseRequest{SessionState: []byte(cookie)}))
		if string(acquire(t, c, "fra").GetSessionState()) != cookie {
			t.Fatal("session not stored")
		}
		get, err := c.GetAccount(ctx, &apv1.GetAccountRequest{Id: ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		list, err := c.ListAccounts(ctx, &apv1.ListAccountsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		use, err := c.ListUsage(ctx, &apv1.ListUsageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, get, list, use)
		encoded := base64.StdEncoding.EncodeToString([]byte(cookie))
		for _, m := range answers {
			js := protojson.Format(m)
			if strings.Contains(js, "c00kie") || strings.Contains(js, encoded[:16]) {
				t.Fatalf("%T shows the session: %s", m, js)
			}
		}
		if logs := b.logs.String(); strings.Contains(logs, "c00kie") || strings.Contains(logs, encoded[:16]) {
			t.Fatalf("logs show the session:\n%s", logs)
		}
	})

	t.Run("BadSessionFields", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		addAccounts(t, c, 1)
		l := acquire(t, c, "fra")
		for _, tc := range []struct {
			field string
			req   *apv1.ReleaseRequest
		}{
			{"session_state", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionState: make([]byte, apirule.MaxSessionStateBytes+1)}},
			{"session_state", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionState: []byte(cookie), ClearSession: true}},
			{"session_state", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_LOGIN_FAIL, SessionState: []byte(cookie)}},
			{"session_state", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_BANNED, SessionState: []byte(cookie)}},
			{"session_max_age", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionMaxAge: durationpb.New(time.Hour)}},
			{"session_max_age", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionState: []byte(cookie), SessionMaxAge: durationpb.New(-time.Hour)}},
			{"session_max_age", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionState: []byte(cookie), SessionMaxAge: durationpb.New(0)}},
			{"session_max_age", &apv1.ReleaseRequest{Outcome: apv1.Outcome_OUTCOME_NO_SLOT, SessionState: []byte(cookie), SessionMaxAge: durationpb.New(apirule.MaxSessionMaxAge + time.Second)}},
		} {
			tc.req.LeaseId, tc.req.FencingToken = l.GetLeaseId(), l.GetFencingToken()
			_, err := c.Release(testkit.Context(t), tc.req)
			wantViolation(t, err, tc.field)
			if strings.Contains(err.Error(), "c00kie") {
				t.Fatalf("error echoes the session: %v", err)
			}
		}
		// None of them ended the lease.
		release(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT)
	})

	t.Run("ReaderCannotAcquire", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		_, err := b.dial(t, readerToken).Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.PermissionDenied)
	})
}
