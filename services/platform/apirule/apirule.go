// Package apirule holds the rules of the API that more than one service
// checks or relies on: the formats of shared fields (mission code, phone,
// email), the limits one service sets and another must stay within (detail
// lengths, slots per report, claim and lease lengths), and FieldErrors, the
// plain error a domain returns for bad input. It does no I/O and knows
// nothing of gRPC: each service's gRPC edge turns FieldErrors into
// InvalidArgument with field violations (apierr.Invalid).
package apirule

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// MissionCodePattern is the form of a mission code (a country's visa
// mission): AccountPool's Acquire and usage filter, Requests' requests and
// their filter. The Checker passes on the codes Requests gives it.
const MissionCodePattern = `^[a-z0-9_-]{2,16}$`

// PhonePattern is the form of a phone number: an optional +, then 4 to 32
// digits, spaces, dashes or parentheses, starting with a digit. Requests'
// applicants and AccountPool's accounts share it, since the legacy import
// copies an applicant's phone to a pool account.
const PhonePattern = `^\+?[0-9][0-9 ()-]{3,31}$`

var (
	missionCodeRE = regexp.MustCompile(MissionCodePattern)
	phoneRE       = regexp.MustCompile(PhonePattern)
)

// ValidMissionCode says whether s is a mission code.
func ValidMissionCode(s string) bool { return missionCodeRE.MatchString(s) }

// ValidPhone says whether s is a phone number. The empty phone (none
// given) is for the caller to allow.
func ValidPhone(s string) bool { return phoneRE.MatchString(s) }

// MaxEmailLen is RFC 5321's limit on an address.
const MaxEmailLen = 254

// ValidEmail says whether s is a bare address (no display name) of at most
// MaxEmailLen bytes whose domain has a dot.
func ValidEmail(s string) bool {
	if s == "" || len(s) > MaxEmailLen {
		return false
	}
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}

// Limits on what the Checker sends to the other services; the services
// refuse more.
const (
	// MaxHolderLen bounds AccountPool's Acquire.holder.
	MaxHolderLen = 128
	// MaxCheckerIDLen bounds Requests' ClaimDueMissions.checker_id. A
	// checker's id is both, so the two limits are one.
	MaxCheckerIDLen = MaxHolderLen
	// MaxReleaseDetailLen bounds AccountPool's Release.detail, in
	// characters.
	MaxReleaseDetailLen = 2000
	// MaxReportDetailLen bounds Requests' ReportCheckResult.detail, in
	// characters.
	MaxReportDetailLen = 4000
	// MaxSlotsPerReport bounds ReportCheckResult.slots.
	MaxSlotsPerReport = 10000
	// MaxSlotsPerRequest is how many of the slots that match a request
	// Requests keeps (the earliest), and so how many of a request's a
	// Checker that must cut its report keeps first.
	MaxSlotsPerRequest = 20
	// MaxReportSlotsBytes is what a report's slots may take encoded (100
	// bytes a slot on average): Requests reads a ReportCheckResult that
	// large plus room for the rest, and the Checker cuts its slots to it.
	MaxReportSlotsBytes = MaxSlotsPerReport * 100
	// MaxMissionsPerClaim bounds ClaimDueMissions.max_missions (and the
	// Checker's RunSession.max_missions, which it passes on).
	MaxMissionsPerClaim = 100
	// MaxRequestsPerClaim bounds the requests one claim carries, even for
	// a mission with a huge backlog (Requests also stops an answer before
	// it nears gRPC's 4 MB message limit).
	MaxRequestsPerClaim = 1000
	// MaxLeaseRequestIDs bounds the request_ids of Acquire and Release: a
	// claim's requests always fit.
	MaxLeaseRequestIDs = MaxRequestsPerClaim
	// MaxLeaseRequestIDLen bounds each of those ids.
	MaxLeaseRequestIDLen = 64
	// MaxSessionStateBytes bounds AccountPool's Release.session_state (a
	// portal's cookies and local storage, serialized by the Checker), so
	// that a Release stays below the servers' 256 KiB message limit.
	MaxSessionStateBytes = 128 << 10
)

// Reasons of the google.rpc.ErrorInfo a service attaches to an error that
// callers act on (apierr.Info), and the metadata keys that go with them.
const (
	// ReasonEventsPruned: Requests' WatchEvents refused after_cursor with
	// OUT_OF_RANGE because its retention deleted events after it. Metadata
	// MetaOldestCursor is the oldest cursor available, as a decimal: the
	// cursor to resume after.
	ReasonEventsPruned = "EVENTS_PRUNED"
	MetaOldestCursor   = "oldest_cursor"
)

// Bounds on lengths of time callers ask for.
const (
	// MinLeaseTTL bounds Acquire.lease_ttl and Renew.extend_by from below
	// (when set): a shorter lease could end before its answer reaches the
	// caller, and end in a lease_expired failure of the account.
	MinLeaseTTL = time.Second
	// MaxLeaseTTL bounds Acquire.lease_ttl and Renew.extend_by.
	MaxLeaseTTL = time.Hour
	// MaxAcquireWait bounds Acquire.wait.
	MaxAcquireWait = 10 * time.Minute
	// MinClaimTTL bounds ClaimDueMissions.claim_ttl from below: a shorter
	// claim could lapse before its answer reaches the checker.
	MinClaimTTL = time.Second
	// MaxClaimTTL bounds claim_ttl: a checker that needs longer should
	// report and claim again.
	MaxClaimTTL = time.Hour
	// MaxSessionMaxAge bounds Release.session_max_age and
	// POOL_SESSION_MAX_AGE: no portal keeps a session for longer.
	MaxSessionMaxAge = 30 * 24 * time.Hour
	// MinPortalRetryAfter and MaxPortalRetryAfter bound a portal's
	// Retry-After as a checker passes it on: ReportCheckResult.retry_after
	// (on a wall) and Release.retry_after.
	MinPortalRetryAfter = time.Second
	MaxPortalRetryAfter = 24 * time.Hour
)
