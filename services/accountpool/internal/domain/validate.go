package domain

import (
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

// CheckAcquire records what is wrong with a lease request.
func CheckAcquire(p *apirule.FieldErrors, missionCode, holder string, requestIDs []string) {
	p.MissionCode("mission_code", missionCode)
	if p.Required("holder", holder) {
		p.MaxLen("holder", holder, apirule.MaxHolderLen)
	}
	CheckRequestIDs(p, "request_ids", requestIDs)
}

// CheckRelease records what is wrong with the free text of a release.
func CheckRelease(p *apirule.FieldErrors, detail string, requestIDs []string) {
	p.MaxLen("detail", detail, apirule.MaxReleaseDetailLen)
	CheckRequestIDs(p, "request_ids", requestIDs)
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
