package apierr_test

import (
	"errors"
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

func TestInfoCarriesItsReasonAndMetadata(t *testing.T) {
	t.Parallel()
	err := apierr.Info(codes.OutOfRange, "cursor 3 is too old", apirule.ReasonEventsPruned, map[string]string{apirule.MetaOldestCursor: "10"})
	if status.Code(err) != codes.OutOfRange || status.Convert(err).Message() != "cursor 3 is too old" {
		t.Fatalf("info error %v", err)
	}
	info, ok := apierr.InfoOf(err)
	if !ok || info.GetReason() != apirule.ReasonEventsPruned || info.GetDomain() != apierr.Domain || info.GetMetadata()[apirule.MetaOldestCursor] != "10" {
		t.Fatalf("info %v, %v", info, ok)
	}
	// Another domain's ErrorInfo, a plain status and a plain error carry none.
	other, _ := status.New(codes.OutOfRange, "x").WithDetails(&errdetails.ErrorInfo{Reason: apirule.ReasonEventsPruned, Domain: "elsewhere"})
	for _, err := range []error{other.Err(), status.Error(codes.OutOfRange, "x"), errors.New("x")} {
		if info, ok := apierr.InfoOf(err); ok {
			t.Errorf("InfoOf(%v) = %v, want none", err, info)
		}
	}
}
