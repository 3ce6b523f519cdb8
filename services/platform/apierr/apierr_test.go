package apierr_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

func TestViolationsAndRetryInfoTravelInTheStatus(t *testing.T) {
	t.Parallel()
	var v apirule.FieldErrors
	v.Add("a", "is bad")
	v.Add("b", "is worse: %d", 2)
	err := apierr.Invalid(v)
	if status.Code(err) != codes.InvalidArgument || len(apierr.FieldViolations(err)) != 2 || apierr.FieldViolations(err)["b"] != "is worse: 2" {
		t.Fatalf("violations error %v", err)
	}
	if status.Convert(err).Message() != v.Error() {
		t.Errorf("message %q, want the field errors' %q", status.Convert(err).Message(), v.Error())
	}
	retry := apierr.RetryAfter("busy", 90*time.Second)
	if d, ok := apierr.RetryDelay(retry); !ok || d != 90*time.Second || status.Code(retry) != codes.ResourceExhausted {
		t.Fatalf("retry error %v, delay %s", retry, d)
	}
}
