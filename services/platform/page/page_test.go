package page_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
)

type pos struct {
	After int64 `json:"a"`
}

// keyset is the shape of the services' positions: a time, an id, a name.
type keyset struct {
	At   time.Time `json:"t"`
	ID   int64     `json:"i"`
	Name string    `json:"n"`
}

func TestTokenRoundTripAndForgery(t *testing.T) {
	t.Parallel()
	var v apirule.FieldErrors
	var got pos
	page.Decode(&v, "page_token", page.Encode(pos{After: 42}), &got)
	if v.Len() != 0 || got.After != 42 {
		t.Fatalf("round trip: %+v, %d violations", got, v.Len())
	}
	for _, bad := range []string{"!!", "bm90IGpzb24", "eyJ6IjoxfQ"} { // not base64, "not json", {"z":1}
		var v apirule.FieldErrors
		page.Decode(&v, "page_token", bad, &got)
		if v.Len() != 1 {
			t.Fatalf("token %q accepted", bad)
		}
	}
}

func TestTokenWithNULRefused(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{`{"n":"fra\u0000"}`, `{"t":"2030-06-01T10:00:00Z","n":"\u0000"}`} {
		var v apirule.FieldErrors
		var got keyset
		page.Decode(&v, "page_token", base64.RawURLEncoding.EncodeToString([]byte(tok)), &got)
		if v.Len() != 1 {
			t.Errorf("token %s accepted as %+v", tok, got)
		}
	}
}

// FuzzDecode: any token is refused or read into a position that Encode
// writes back into a token reading the same, with no NUL in it.
func FuzzDecode(f *testing.F) {
	f.Add(page.Encode(keyset{At: time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC), ID: 7, Name: "fra"}))
	f.Add(page.Encode(keyset{Name: "vfs\x00"}))
	f.Add("eyJuIjoiXHUwMDAwIn0") // {"n":"\u0000"}
	f.Add("!!")
	f.Fuzz(func(t *testing.T, tok string) {
		var v apirule.FieldErrors
		var got keyset
		page.Decode(&v, "page_token", tok, &got)
		if v.Len() != 0 {
			return
		}
		if strings.ContainsRune(got.Name, 0) {
			t.Fatalf("token %q read with a NUL: %+v", tok, got)
		}
		var again keyset
		page.Decode(&v, "page_token", page.Encode(got), &again)
		if v.Len() != 0 || !again.At.Equal(got.At) || again.ID != got.ID || again.Name != got.Name {
			t.Fatalf("token %q: %+v does not round-trip: %+v (%d violations)", tok, got, again, v.Len())
		}
	})
}

func TestSize(t *testing.T) {
	t.Parallel()
	var v apirule.FieldErrors
	if page.Size(&v, "page_size", 0) != page.DefaultSize || page.Size(&v, "page_size", 5000) != page.MaxSize || v.Len() != 0 {
		t.Fatal("defaults or cap wrong")
	}
	page.Size(&v, "page_size", -1)
	if v.Len() != 1 {
		t.Fatal("negative size accepted")
	}
}
