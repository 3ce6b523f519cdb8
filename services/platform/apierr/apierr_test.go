package apierr_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slotwatch/slotwatch/services/platform/apierr"
)

func TestEmail(t *testing.T) {
	t.Parallel()
	for email, ok := range map[string]bool{
		"a@example.com":                      true,
		"first.last+tag@sub.example.org":     true,
		"":                                   false,
		"plain":                              false,
		"a@localhost":                        false,
		"Name <a@example.com>":               false,
		strings.Repeat("a", 250) + "@ex.com": false,
	} {
		var v apierr.Violations
		v.Email("email", email)
		if (v.Len() == 0) != ok {
			t.Errorf("Email(%q) valid=%v, want %v", email, v.Len() == 0, ok)
		}
	}
}

func TestViolationsAndRetryInfoTravelInTheStatus(t *testing.T) {
	t.Parallel()
	var v apierr.Violations
	if v.Err() != nil {
		t.Fatal("no violations but an error")
	}
	v.Add("a", "is bad")
	v.Add("b", "is worse: %d", 2)
	err := v.Err()
	if status.Code(err) != codes.InvalidArgument || len(apierr.FieldViolations(err)) != 2 {
		t.Fatalf("violations error %v", err)
	}
	retry := apierr.RetryAfter("busy", 90*time.Second)
	if d, ok := apierr.RetryDelay(retry); !ok || d != 90*time.Second || status.Code(retry) != codes.ResourceExhausted {
		t.Fatalf("retry error %v, delay %s", retry, d)
	}
}

func TestTextPostgresCannotStoreIsAViolation(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a\x00b", "\xff\xfe"} {
		var v apierr.Violations
		v.MaxLen("detail", s, 100)
		var w apierr.Violations
		w.Required("holder", s)
		if v.Len() != 1 || w.Len() != 1 {
			t.Errorf("%q accepted (MaxLen %d, Required %d violations)", s, v.Len(), w.Len())
		}
	}
	var v apierr.Violations
	v.MaxLen("detail", "héllo wörld", 11)
	if v.Len() != 0 {
		t.Error("11 characters rejected by a limit of 11")
	}
}
