package apirule

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FieldError says that one field of a request is wrong, and why. Field is
// the API's name (snake_case, "slots[2].date" for an element).
type FieldError struct {
	Field       string
	Description string
}

// FieldErrors collects the wrong fields of one request. A domain fills it
// and returns Err; the gRPC edge turns it into InvalidArgument with one
// field violation per entry. The zero value is empty and ready to use.
type FieldErrors []FieldError

// Error lists the fields, in the order they were found.
func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + ": " + f.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Err is nil when nothing is wrong, else e itself.
func (e FieldErrors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Len is the number of wrong fields found.
func (e FieldErrors) Len() int { return len(e) }

// Add records that field is wrong, and why.
func (e *FieldErrors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Description: fmt.Sprintf(format, args...)})
}

// UUID reads an id field: a UUID in its 36-character form, and not the nil
// UUID, which no row has (as a filter it would mean "no filter"). It
// records a violation otherwise, and then returns the nil UUID.
func (e *FieldErrors) UUID(field, s string) uuid.UUID {
	if s == "" {
		e.Add(field, "must not be empty")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	switch {
	case err != nil || len(s) != 36:
		e.Add(field, "must be a UUID")
		return uuid.Nil
	case id == uuid.Nil:
		e.Add(field, "must not be the nil UUID")
	}
	return id
}

// Required records a violation when s is empty, only white space or not
// storable, and says whether s passed.
func (e *FieldErrors) Required(field, s string) bool {
	if strings.TrimSpace(s) == "" {
		e.Add(field, "must not be empty")
		return false
	}
	return e.storable(field, s)
}

// MaxLen records a violation when s is longer than max characters or is not
// text Postgres can store (invalid UTF-8, a NUL byte): a caller's mistake,
// not a database error.
func (e *FieldErrors) MaxLen(field, s string, max int) {
	if !e.storable(field, s) {
		return
	}
	if n := utf8.RuneCountInString(s); n > max {
		e.Add(field, "must be at most %d characters, got %d", max, n)
	}
}

// OneLine records a violation when s holds a control character (a line
// break, a tab, an escape) or Unicode's line or paragraph separator: the
// rule of a single-line field (a name, a centre, an id, a holder), whose
// value would otherwise break the line wherever it is shown (a message, a
// log line, a table). Free text (a detail) may hold line breaks.
func (e *FieldErrors) OneLine(field, s string) {
	if i := strings.IndexFunc(s, breaksLine); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		e.Add(field, "must be one line without control characters, found %U at byte %d", r, i)
	}
}

func breaksLine(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

func (e *FieldErrors) storable(field, s string) bool {
	if !utf8.ValidString(s) {
		e.Add(field, "must be valid UTF-8")
		return false
	}
	if strings.IndexByte(s, 0) >= 0 {
		e.Add(field, "must not contain NUL characters")
		return false
	}
	return true
}

// Email records a violation unless s is a bare address of at most
// MaxEmailLen characters (ValidEmail).
func (e *FieldErrors) Email(field, s string) {
	if !e.Required(field, s) {
		return
	}
	if len(s) > MaxEmailLen {
		e.Add(field, "must be at most %d characters, got %d", MaxEmailLen, len(s))
		return
	}
	if !ValidEmail(s) {
		e.Add(field, "must be an email address such as name@example.com")
	}
}

// MissionCode records a violation unless s is a mission code.
func (e *FieldErrors) MissionCode(field, s string) {
	if !ValidMissionCode(s) {
		e.Add(field, "must match %s (lower-case letters, digits, _ or -), e.g. \"fra\"", MissionCodePattern)
	}
}

// Phone records a violation unless s is empty or a phone number.
func (e *FieldErrors) Phone(field, s string) {
	if s != "" && !ValidPhone(s) {
		e.Add(field, "must be a phone number such as +33123456789: 4 to 32 digits, spaces, dashes or parentheses, after an optional +")
	}
}
