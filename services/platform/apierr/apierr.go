// Package apierr builds the gRPC errors that callers act on: InvalidArgument
// with google.rpc.BadRequest field violations, and ResourceExhausted with
// google.rpc.RetryInfo.
package apierr

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Violations collects field violations of one request.
type Violations struct {
	list []*errdetails.BadRequest_FieldViolation
}

// Add records that field is wrong, and why.
func (v *Violations) Add(field, format string, args ...any) {
	v.list = append(v.list, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Len is the number of violations recorded.
func (v *Violations) Len() int { return len(v.list) }

// Err is nil without violations, else InvalidArgument carrying all of them.
func (v *Violations) Err() error {
	if len(v.list) == 0 {
		return nil
	}
	fields := make([]string, len(v.list))
	for i, f := range v.list {
		fields[i] = f.Field + ": " + f.Description
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(fields, "; "))
	st, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v.list})
	if err != nil {
		return status.Error(codes.InvalidArgument, "invalid request: "+strings.Join(fields, "; "))
	}
	return st.Err()
}

// MaxLen records a violation when s is longer than max characters or is not
// text Postgres can store (invalid UTF-8, a NUL byte): a caller's mistake,
// not a database error.
func (v *Violations) MaxLen(field, s string, max int) {
	if !v.storable(field, s) {
		return
	}
	if n := utf8.RuneCountInString(s); n > max {
		v.Add(field, "must be at most %d characters, got %d", max, n)
	}
}

func (v *Violations) storable(field, s string) bool {
	if !utf8.ValidString(s) {
		v.Add(field, "must be valid UTF-8")
		return false
	}
	if strings.IndexByte(s, 0) >= 0 {
		v.Add(field, "must not contain NUL characters")
		return false
	}
	return true
}

// Required records a violation when s is empty or only white space.
func (v *Violations) Required(field, s string) bool {
	if strings.TrimSpace(s) == "" {
		v.Add(field, "must not be empty")
		return false
	}
	return v.storable(field, s)
}

// Email records a violation unless s is a bare address of at most 254
// characters (RFC 5321's limit).
func (v *Violations) Email(field, s string) {
	if !v.Required(field, s) {
		return
	}
	if len(s) > 254 {
		v.Add(field, "must be at most 254 characters, got %d", len(s))
		return
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		v.Add(field, "must be an email address such as name@example.com")
	}
}

// Duration records a violation when d is negative or above max (when max > 0).
// A nil d is valid: it means "use the default".
func (v *Violations) Duration(field string, d *durationpb.Duration, max time.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if err := d.CheckValid(); err != nil {
		v.Add(field, "must be a valid duration")
		return 0
	}
	got := d.AsDuration()
	switch {
	case got < 0:
		v.Add(field, "must not be negative")
	case max > 0 && got > max:
		v.Add(field, "must be at most %s", max)
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
