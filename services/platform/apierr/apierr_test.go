package apierr_test

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
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

func TestPreconditionCarriesItsViolation(t *testing.T) {
	t.Parallel()
	err := apierr.Precondition("request r is cancelled", "STATUS", "request/r", "needs SLOT_FOUND")
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || st.Message() != "request r is cancelled" || len(st.Details()) != 1 {
		t.Fatalf("precondition error %v", err)
	}
	pf, ok := st.Details()[0].(*errdetails.PreconditionFailure)
	if !ok || len(pf.GetViolations()) != 1 || pf.GetViolations()[0].GetSubject() != "request/r" || pf.GetViolations()[0].GetType() != "STATUS" {
		t.Fatalf("detail %v", st.Details()[0])
	}
}
