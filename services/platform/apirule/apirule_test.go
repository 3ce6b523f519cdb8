package apirule_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

func TestFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule  string
		valid func(string) bool
		ok    []string
		bad   []string
	}{
		{
			"MissionCode", apirule.ValidMissionCode,
			[]string{"fra", "de", "gbr_lon", "us-nyc", "0123456789abcdef"},
			[]string{"", "f", "FRA", "France!", "fr a", "0123456789abcdefg", "fra\n"},
		},
		{
			// 4 to 32 characters after an optional +: the wider of the two
			// forms the services had drifted to, so every phone Requests
			// stored still fits a pool account, and no 3-digit short code.
			"Phone", apirule.ValidPhone,
			[]string{"+33123456789", "0123", "+44 20 7946 0000", "+1 (202) 555-0100", "+" + strings.Repeat("1", 32), strings.Repeat("1", 32)},
			[]string{"", "112", "+112", "+33" + strings.Repeat("1", 40), strings.Repeat("1", 33), "+ 33123456789", "(0)123456", "+33 1 23 45 67 8x", "++33123456789"},
		},
		{
			"Email", apirule.ValidEmail,
			[]string{"a@example.com", "first.last+tag@sub.example.org", strings.Repeat("a", 242) + "@example.com"},
			[]string{"", "plain", "a@localhost", "Name <a@example.com>", strings.Repeat("a", 243) + "@example.com"},
		},
	} {
		for _, s := range tc.ok {
			if !tc.valid(s) {
				t.Errorf("%s refuses %q", tc.rule, s)
			}
		}
		for _, s := range tc.bad {
			if tc.valid(s) {
				t.Errorf("%s accepts %q", tc.rule, s)
			}
		}
	}
}

func TestLimitsThatOneServiceSendsFitTheOther(t *testing.T) {
	t.Parallel()
	// The Checker passes a claim's request ids to Acquire and Release, and
	// its id as both checker_id and holder.
	if apirule.MaxLeaseRequestIDs < apirule.MaxRequestsPerClaim {
		t.Errorf("a claim carries up to %d requests but a lease takes %d ids", apirule.MaxRequestsPerClaim, apirule.MaxLeaseRequestIDs)
	}
	if apirule.MaxCheckerIDLen > apirule.MaxHolderLen {
		t.Errorf("a checker id of %d characters would not fit a holder of %d", apirule.MaxCheckerIDLen, apirule.MaxHolderLen)
	}
	if apirule.MinClaimTTL <= 0 || apirule.MinClaimTTL >= apirule.MaxClaimTTL {
		t.Errorf("claim TTL bounds %s..%s", apirule.MinClaimTTL, apirule.MaxClaimTTL)
	}
}

func TestFieldErrorsNameEachFieldOnce(t *testing.T) {
	t.Parallel()
	var e apirule.FieldErrors
	if e.Err() != nil {
		t.Fatal("no field errors but an error")
	}
	e.MissionCode("mission_code", "France!")
	e.Phone("phone", "")
	e.Phone("phone2", "112")
	e.Email("email", "plain")
	err := e.Err()
	var got apirule.FieldErrors
	if !errors.As(err, &got) || len(got) != 3 {
		t.Fatalf("Err() = %v, want the three field errors", err)
	}
	for i, field := range []string{"mission_code", "phone2", "email"} {
		if got[i].Field != field || got[i].Description == "" {
			t.Errorf("field error %d = %+v, want one for %s", i, got[i], field)
		}
	}
	if want := "invalid request: mission_code: must match"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start with %q", err, want)
	}
}

func TestTextPostgresCannotStoreIsAFieldError(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a\x00b", "\xff\xfe"} {
		var v, w apirule.FieldErrors
		v.MaxLen("detail", s, 100)
		w.Required("holder", s)
		if v.Len() != 1 || w.Len() != 1 {
			t.Errorf("%q accepted (MaxLen %d, Required %d field errors)", s, v.Len(), w.Len())
		}
	}
	var v apirule.FieldErrors
	v.MaxLen("detail", "héllo wörld", 11)
	v.Required("holder", "h")
	if v.Len() != 0 {
		t.Errorf("valid text refused: %v", v)
	}
	v.Required("holder", "  ")
	if v.Len() != 1 {
		t.Error("blank text accepted as required")
	}
}

func TestUUID(t *testing.T) {
	t.Parallel()
	const id = "0190a8c4-0000-7000-8000-0000000000ff"
	for in, want := range map[string]string{
		id:                                       "",
		"":                                       "must not be empty",
		"ada":                                    "must be a UUID",
		"{0190a8c4-0000-7000-8000-0000000000ff}": "must be a UUID",
		"00000000-0000-0000-0000-000000000000":   "must not be the nil UUID",
	} {
		var v apirule.FieldErrors
		got := v.UUID("id", in)
		switch {
		case want == "" && (v.Len() != 0 || got.String() != in):
			t.Errorf("UUID(%q) = %v, %v; want it, no error", in, got, v)
		case want != "" && (v.Len() != 1 || v[0].Description != want):
			t.Errorf("UUID(%q): %v; want %q", in, v, want)
		}
	}
}
