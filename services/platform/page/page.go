// Package page reads and writes the page_size / page_token pair of List RPCs.
// A token is the position after the last row served (keyset pagination), so a
// page stays stable while rows are inserted concurrently.
package page

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

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
// that was not made by Encode is a violation of field.
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
	if err != nil {
		v.Add(field, "is not a token returned by a previous call")
	}
}
