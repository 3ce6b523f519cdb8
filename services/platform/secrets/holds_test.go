package secrets_test

import (
	"bytes"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"

	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func jsonOf(t *testing.T, h *keyset.Handle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parse(t *testing.T, b []byte) *secrets.Keyset {
	t.Helper()
	k, err := secrets.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestHoldsKeyOfADisabledKey: Tink's AEAD leaves a
// DISABLED key out of the primitive set, so a keyset whose old key was
// disabled (Tink's own step before dropping a key) cannot open an intact
// ciphertext sealed with it. The fault is the keyset's, as for a missing
// key, yet HoldsKeyOf says "held", so grant disables the account as if its
// row were tampered with.
func TestHoldsKeyOfADisabledKey(t *testing.T) {
	m := keyset.NewManager()
	old, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(old); err != nil {
		t.Fatal(err)
	}
	h, _ := m.Handle()
	before := parse(t, jsonOf(t, h))
	ct, err := before.Encrypt([]byte("pw"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	nu, _ := m.Add(aead.AES256GCMKeyTemplate())
	if err := m.SetPrimary(nu); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(old); err != nil {
		t.Fatal(err)
	}
	h, _ = m.Handle()
	after := parse(t, jsonOf(t, h))
	if _, err := after.Decrypt(ct, []byte("ad")); err == nil {
		t.Fatal("a disabled key opened the ciphertext")
	}
	if after.HoldsKeyOf(ct) {
		t.Errorf("HoldsKeyOf = true for a ciphertext of a DISABLED key the keyset cannot use: an intact row would disable its account")
	}
}

// TestHoldsKeyOfALegacyPrefix: a LEGACY (or CRUNCHY)
// key prefixes its ciphertexts with 0x00 and its key id, as TINK does with
// 0x01. KeyID reads only 0x01, so a replica with another keyset says it
// holds the key of every such ciphertext and disables each account it
// leases: the defect 904fcdf fixed, back for keysets with these keys.
func TestHoldsKeyOfALegacyPrefix(t *testing.T) {
	tmpl := aead.AES256GCMKeyTemplate()
	tmpl.OutputPrefixType = tinkpb.OutputPrefixType_LEGACY
	h, err := keyset.NewHandle(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	legacy := parse(t, jsonOf(t, h))
	ct, err := legacy.Encrypt([]byte("pw"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	otherJSON, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other := parse(t, otherJSON)
	if other.HoldsKeyOf(ct) {
		t.Errorf("another keyset holds the key of a LEGACY ciphertext (prefix % x): an intact row would disable its account", ct[:5])
	}
	if !legacy.HoldsKeyOf(ct) {
		t.Errorf("its own keyset does not hold it")
	}
}
