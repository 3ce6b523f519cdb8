package secrets_test

import (
	"errors"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func TestCiphertextIsBoundToItsAssociatedData(t *testing.T) {
	t.Parallel()
	raw, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := secrets.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Encrypt([]byte("p4ss"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(ct, []byte("row-1")); err != nil || string(pt) != "p4ss" {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	if _, err := k.Decrypt(ct, []byte("row-2")); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("decrypt under another row: %v", err)
	}
	other, _ := secrets.Generate()
	k2, _ := secrets.Parse(other)
	if _, err := k2.Decrypt(ct, []byte("row-1")); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("decrypt with another keyset: %v", err)
	}
	if id, ok := secrets.KeyID(ct); !ok || id != k.PrimaryKeyID() {
		t.Fatalf("KeyID = %d, %v; primary %d", id, ok, k.PrimaryKeyID())
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	t.Parallel()
	if _, err := secrets.Parse([]byte(`{"not":"a keyset"}`)); err == nil {
		t.Fatal("garbage accepted as a keyset")
	}
	if _, err := secrets.LoadFile(""); err == nil {
		t.Fatal("empty path accepted")
	}
}
