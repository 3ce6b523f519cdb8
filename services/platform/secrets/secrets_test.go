package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

func TestLoadFileRefusesAKeysetOthersCanRead(t *testing.T) {
	t.Parallel()
	raw, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.LoadFile(path); err != nil {
		t.Fatalf("mode 600: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = secrets.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEYSET_FILE") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("mode 644: want a refusal saying chmod 600, got %v", err)
	}
}
