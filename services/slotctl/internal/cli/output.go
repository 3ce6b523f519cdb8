package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// describe turns an error into the one line slotctl prints: the gRPC
// status message with every field violation, the code, and a hint when the
// code has an obvious next step.
func describe(err error, a *app) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	st, ok := status.FromError(err)
	if !ok {
		return oneLine(err.Error())
	}
	msg := st.Message()
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				if !strings.Contains(msg, v.GetField()+": "+v.GetDescription()) {
					msg += "; " + v.GetField() + ": " + v.GetDescription()
				}
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				if !strings.Contains(msg, v.GetDescription()) {
					msg += "; " + v.GetDescription()
				}
			}
		case *errdetails.RetryInfo:
			msg += fmt.Sprintf("; retry in %s", d.GetRetryDelay().AsDuration().Round(time.Second))
		}
	}
	line := fmt.Sprintf("%s (%s)", msg, st.Code())
	switch st.Code() {
	case codes.Unavailable:
		line += ": is " + a.lastTarget + " running and reachable?"
	case codes.Unauthenticated:
		line += ": give an admin token with --token-file or AUTH_TOKEN_FILE"
	case codes.PermissionDenied:
		line += ": the token's role may not do this; slotctl needs an admin token"
	case codes.DeadlineExceeded:
		line += fmt.Sprintf(": no answer within --timeout %s", a.timeout)
	}
	return oneLine(line)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// printJSON writes one message as indented JSON.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return err
	}
	return writeIndented(w, b)
}

// printJSONList writes messages as one indented JSON array ([] when empty).
func printJSONList[M proto.Message](w io.Writer, ms []M) error {
	raw := make([]json.RawMessage, len(ms))
	for i, m := range ms {
		b, err := jsonOpts.Marshal(m)
		if err != nil {
			return err
		}
		raw[i] = b
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return writeIndented(w, b)
}

// printJSONValue writes a plain Go value as indented JSON.
func printJSONValue(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeIndented(w, b)
}

func writeIndented(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// table writes aligned columns; Flush writes them out.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(toAny(headers)...)
	return t
}

// cellSpace turns what would break a table's row or column (a tab, a line
// break) into a space: free text such as a release's detail may hold them.
var cellSpace = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ", "\v", " ", "\f", " ", "\u2028", " ", "\u2029", " ")

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = cellSpace.Replace(fmt.Sprint(c))
		if s[i] == "" {
			s[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// enumWord is an enum value as people type it: ACCOUNT_STATE_COOLDOWN →
// "cooldown".
func enumWord(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// parseEnum finds word among an enum's names (prefix + upper-case word);
// "" is the zero value.
func parseEnum(flag, word, prefix string, values map[string]int32) (int32, error) {
	if word == "" {
		return 0, nil
	}
	if v, ok := values[prefix+strings.ToUpper(lower(word))]; ok && v != 0 {
		return v, nil
	}
	var names []string
	for n, v := range values {
		if v != 0 {
			names = append(names, enumWord(n, prefix))
		}
	}
	slices.Sort(names)
	return 0, usagef("--%s %q: want one of %s", flag, word, strings.Join(names, ", "))
}

// when formats a time for a table: local time to the second, or "".
func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().Local().Format("2006-01-02 15:04:05")
}

// until formats a future time as "in 3m10s", a past one as its time.
func until(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return ""
	}
	d := ts.AsTime().Sub(now)
	if d <= 0 {
		return when(ts)
	}
	return "in " + d.Round(time.Second).String()
}
