package page_test

import (
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
)

type pos struct {
	After int64 `json:"a"`
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
