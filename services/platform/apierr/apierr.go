// Package apierr builds the gRPC errors that callers act on: InvalidArgument
// with google.rpc.BadRequest field violations (from apirule.FieldErrors),
// ResourceExhausted with google.rpc.RetryInfo, FailedPrecondition with
// google.rpc.PreconditionFailure, and any code with google.rpc.ErrorInfo
// (a reason a caller can switch on, and the values it acts on).
package apierr

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Invalid is InvalidArgument carrying every field error as a
// google.rpc.BadRequest field violation: the one translation of a domain's
// FieldErrors at the gRPC edge. Each service's error mapping calls it.
func Invalid(fe apirule.FieldErrors) error {
	list := make([]*errdetails.BadRequest_FieldViolation, len(fe))
	for i, f := range fe {
		list[i] = &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description}
	}
	st := status.New(codes.InvalidArgument, fe.Error())
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: list}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// Duration reads a protobuf duration, recording a field error when d is
// malformed, negative or above max (when max > 0). A nil d is valid: it
// means "use the default".
func Duration(fe *apirule.FieldErrors, field string, d *durationpb.Duration, max time.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if err := d.CheckValid(); err != nil {
		fe.Add(field, "must be a valid duration")
		return 0
	}
	got := d.AsDuration()
	switch {
	case got < 0:
		fe.Add(field, "must not be negative")
	case max > 0 && got > max:
		fe.Add(field, "must be at most %s", max)
	}
	return got
}

// RetryAfter is ResourceExhausted with google.rpc.RetryInfo set to delay.
func RetryAfter(msg string, delay time.Duration) error {
	if delay < 0 {
		delay = 0
	}
	st := status.New(codes.ResourceExhausted, msg)
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// RetryDelay reads google.rpc.RetryInfo from an error, if it carries one.
func RetryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// FieldViolations lists the fields named by an InvalidArgument error.
func FieldViolations(err error) map[string]string {
	out := map[string]string{}
	st, ok := status.FromError(err)
	if !ok {
		return out
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, f := range br.GetFieldViolations() {
				out[f.GetField()] = f.GetDescription()
			}
		}
	}
	return out
}

// Precondition is FailedPrecondition carrying a google.rpc.PreconditionFailure
// with one violation: typ names the kind of precondition (e.g. "STATUS"),
// subject what failed it (e.g. "request/<id>"), description how.
func Precondition(msg, typ, subject, description string) error {
	st := status.New(codes.FailedPrecondition, msg)
	if withDetail, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: description},
	}}); err == nil {
		st = withDetail
	}
	return st.Err()
}

// Domain is the google.rpc.ErrorInfo domain of every slotwatch service: the
// reasons (apirule's Reason constants) are unique across the system.
const Domain = "slotwatch"

// Info is an error of the given code carrying a google.rpc.ErrorInfo:
// reason is a constant a caller can switch on (UPPER_SNAKE_CASE, one of
// apirule's Reason constants), metadata the values it acts on. The message
// is for people; a caller never has to parse it.
func Info(code codes.Code, msg, reason string, metadata map[string]string) error {
	st := status.New(code, msg)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: metadata}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// InfoOf reads the google.rpc.ErrorInfo of an error, if it carries one
// from a slotwatch service.
func InfoOf(err error) (*errdetails.ErrorInfo, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info, true
		}
	}
	return nil, false
}
