package domain

import (
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// MaxPasswordLen bounds a portal password, in characters.
const MaxPasswordLen = 256

// CheckNewAccount records what is wrong with an account to create: the
// email is required, the password too, the phone is optional. A
// description never echoes the password.
func CheckNewAccount(p *apirule.FieldErrors, email, password, phone string) {
	p.Email("email", email)
	CheckPassword(p, password)
	p.Phone("phone", phone)
}

// CheckPassword records a violation unless pw is a password the pool can
// store.
func CheckPassword(p *apirule.FieldErrors, pw string) {
	if pw == "" {
		p.Add("password", "must not be empty")
		return
	}
	p.MaxLen("password", pw, MaxPasswordLen)
}

// CheckAccountChange records what is wrong with a change to an account:
// the fields that are set (non-nil), and a change that sets none.
func CheckAccountChange(p *apirule.FieldErrors, password, phone *string, active *bool) {
	if password != nil {
		CheckPassword(p, *password)
	}
	if phone != nil {
		p.Phone("phone", *phone)
	}
	if password == nil && phone == nil && active == nil {
		p.Add("password", "set at least one of password, phone, active")
	}
}

// CheckAcquire records what is wrong with a lease request and returns its
// acquire_id in canonical form ("" when it has none): optional, a UUID
// but not the nil one.
func CheckAcquire(p *apirule.FieldErrors, missionCode, holder string, requestIDs []string, acquireID string) string {
	p.MissionCode("mission_code", missionCode)
	if p.Required("holder", holder) {
		p.MaxLen("holder", holder, apirule.MaxHolderLen)
		p.OneLine("holder", holder)
	}
	CheckRequestIDs(p, "request_ids", requestIDs)
	if acquireID == "" {
		return ""
	}
	return p.UUID("acquire_id", acquireID).String()
}

// CheckGiveBack records what is wrong with a release by acquire_id, which
// gives back the lease of an Acquire whose answer the caller lost: it
// names no lease and no token (it never got them), and its outcome is
// OutcomeUnused, with nothing of a check that ran (no clear_session, no
// retry_after; CheckSessionRelease refuses logged_in and session_state
// with OutcomeUnused). It returns the id in canonical form.
func CheckGiveBack(p *apirule.FieldErrors, acquireID, leaseID string, token int64, outcome Outcome, clearSession, retryAfter bool) string {
	id := p.UUID("acquire_id", acquireID).String()
	if leaseID != "" {
		p.Add("lease_id", "must be empty with acquire_id")
	}
	if token != 0 {
		p.Add("fencing_token", "must be 0 with acquire_id")
	}
	if outcome != OutcomeUnused {
		p.Add("outcome", "must be OUTCOME_UNUSED with acquire_id")
	}
	if clearSession {
		p.Add("clear_session", "must be false with acquire_id")
	}
	if retryAfter {
		p.Add("retry_after", "must be unset with acquire_id")
	}
	return id
}

// CheckRelease records what is wrong with the free text of a release.
func CheckRelease(p *apirule.FieldErrors, detail string, requestIDs []string, retryAfter time.Duration) {
	p.MaxLen("detail", detail, apirule.MaxReleaseDetailLen)
	CheckRequestIDs(p, "request_ids", requestIDs)
	if retryAfter != 0 && (retryAfter < apirule.MinPortalRetryAfter || retryAfter > apirule.MaxPortalRetryAfter) {
		p.Add("retry_after", "must be at least %s and at most %s, got %s", apirule.MinPortalRetryAfter, apirule.MaxPortalRetryAfter, retryAfter)
	}
}

// SessionRelease is what a release says about the account's session
// state.
type SessionRelease struct {
	State    []byte        // the state to store; empty keeps the stored one
	MaxAge   time.Duration // how long it may be reused; 0: the configured cap
	HasAge   bool          // whether the caller sent a max age
	Clear    bool          // forget the stored state
	LoggedIn bool          // the check logged in
}

// CheckSessionRelease records what is wrong with a release's session
// fields given its outcome: a state too large, sent with a clear, or with
// an outcome that clears the session; a max age without a state.
func CheckSessionRelease(p *apirule.FieldErrors, outcome Outcome, s SessionRelease) {
	switch {
	case len(s.State) > apirule.MaxSessionStateBytes:
		p.Add("session_state", "must be at most %d bytes, got %d", apirule.MaxSessionStateBytes, len(s.State))
	case len(s.State) > 0 && s.Clear:
		p.Add("session_state", "must be empty when clear_session is set")
	case len(s.State) > 0 && ClearsSession(outcome):
		p.Add("session_state", "must be empty with OUTCOME_LOGIN_FAIL or OUTCOME_BANNED, which clear the session")
	}
	if outcome == OutcomeUnused {
		// An unused account did not reach the portal: nothing to log in
		// with or to keep.
		if s.LoggedIn {
			p.Add("logged_in", "must be false with OUTCOME_UNUSED")
		}
		if len(s.State) > 0 {
			p.Add("session_state", "must be empty with OUTCOME_UNUSED")
		}
	}
	if s.HasAge && len(s.State) == 0 {
		p.Add("session_max_age", "is allowed only with session_state")
	} else if s.HasAge && s.MaxAge <= 0 {
		p.Add("session_max_age", "must be positive")
	}
}

// CheckRequestIDs records a violation, once, when ids are too many or one
// of them is empty, too long or not storable.
func CheckRequestIDs(p *apirule.FieldErrors, field string, ids []string) {
	if len(ids) > apirule.MaxLeaseRequestIDs {
		p.Add(field, "must list at most %d ids", apirule.MaxLeaseRequestIDs)
		return
	}
	for _, id := range ids {
		if id == "" || len(id) > apirule.MaxLeaseRequestIDLen {
			p.Add(field, "each id must be 1 to %d characters", apirule.MaxLeaseRequestIDLen)
			return
		}
		before := p.Len()
		if p.MaxLen(field, id, apirule.MaxLeaseRequestIDLen); p.Len() > before {
			return
		}
	}
}
