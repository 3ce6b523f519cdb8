// Package page reads and writes the page_size / page_token pair of List RPCs.
// A token is the position after the last row served (keyset pagination), so a
// page stays stable while rows are inserted concurrently.
package page

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
)

// Page size bounds shared by every List RPC.
const (
	DefaultSize = 50
	MaxSize     = 1000
)

// Size validates a requested page size: 0 means DefaultSize, larger than
// MaxSize is capped, negative is a violation.
func Size(v *apirule.FieldErrors, field string, n int32) int {
	switch {
	case n < 0:
		v.Add(field, "must not be negative")
		return DefaultSize
	case n == 0:
		return DefaultSize
	case n > MaxSize:
		return MaxSize
	}
	return int(n)
}

// Encode turns a position into an opaque token.
func Encode(pos any) string {
	b, err := json.Marshal(pos)
	if err != nil {
		panic("page: position does not marshal: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a token into pos; an empty token leaves pos as it is. A token
// that was not made by Encode is a violation of field: one that does not
// decode into pos, or holds a string with a NUL character, which no
// position read from Postgres has (a text value cannot hold one, and a
// query given one fails).
func Decode(v *apirule.FieldErrors, field, token string, pos any) {
	if token == "" {
		return
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(pos)
	}
	if err == nil {
		var doc any
		if json.Unmarshal(b, &doc) != nil || holdsNUL(doc) {
			err = errNUL
		}
	}
	if err != nil {
		v.Add(field, "is not a token returned by a previous call")
	}
}

var errNUL = errors.New("a string holds NUL")

// holdsNUL says whether a decoded JSON document has a key or string with a
// NUL character.
func holdsNUL(doc any) bool {
	switch d := doc.(type) {
	case string:
		return strings.ContainsRune(d, 0)
	case []any:
		return slices.ContainsFunc(d, holdsNUL)
	case map[string]any:
		for k, e := range d {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

// Args reads a List request's page_size and page_token: the size (as Size)
// and the position the token holds, nil for the first page (no token).
func Args[P any](v *apirule.FieldErrors, size int32, token string) (int, *P) {
	n := Size(v, "page_size", size)
	if token == "" {
		return n, nil
	}
	var pos P
	Decode(v, "page_token", token, &pos)
	return n, &pos
}
