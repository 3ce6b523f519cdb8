// Package secrets encrypts small secrets (portal passwords, passport numbers)
// at rest with a Tink AEAD keyset. Every ciphertext is bound to the row it
// belongs to through associated data, so a ciphertext copied to another row
// does not decrypt.
package secrets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/slotwatch/slotwatch/services/platform/secretfile"
)

// ErrDecrypt is returned when a ciphertext does not open: a wrong key, a
// tampered value, or a value bound to another row.
var ErrDecrypt = errors.New("secret does not decrypt with this keyset and row")

// HowToMake is what to tell an operator who has no keyset.
const HowToMake = "make one with `accountpool keyset generate > keyset.json && chmod 600 keyset.json` and point ENCRYPTION_KEYSET_FILE at it"

// Keyset encrypts and decrypts with a Tink AEAD keyset. It is safe for
// concurrent use.
type Keyset struct {
	handle *keyset.Handle
	aead   tink.AEAD
}

// LoadFile reads a cleartext JSON keyset, as printed by Generate. Keep the
// file in a secret store (a Kubernetes Secret), never in the database. A
// file that other users may read, or its group may write, is refused
// (secretfile.CheckMode).
func LoadFile(path string) (*Keyset, error) {
	if path == "" {
		return nil, fmt.Errorf("ENCRYPTION_KEYSET_FILE is not set: %s", HowToMake)
	}
	if _, err := os.Stat(path); err == nil {
		if err := secretfile.CheckMode(path, "ENCRYPTION_KEYSET_FILE"); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyset: %w (%s)", err, HowToMake)
	}
	return Parse(b)
}

// Parse reads a cleartext JSON keyset.
func Parse(jsonKeyset []byte) (*Keyset, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(jsonKeyset)))
	if err != nil {
		return nil, fmt.Errorf("parse keyset: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("keyset is not an AEAD keyset: %w", err)
	}
	return &Keyset{handle: h, aead: a}, nil
}

// Generate returns a new JSON keyset with one AES-256-GCM key.
func Generate() ([]byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generate keyset: %w", err)
	}
	return write(h)
}

// Rotate returns jsonKeyset with a new AES-256-GCM key added and made
// primary. Old keys stay, so existing ciphertexts still decrypt until they are
// re-encrypted.
func Rotate(jsonKeyset []byte) ([]byte, error) {
	k, err := Parse(jsonKeyset)
	if err != nil {
		return nil, err
	}
	m := keyset.NewManagerFromHandle(k.handle)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("add key: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("set primary: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("rotate keyset: %w", err)
	}
	return write(h)
}

func write(h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, fmt.Errorf("write keyset: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Encrypt seals plaintext with the primary key, bound to associatedData.
func (k *Keyset) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	ct, err := k.aead.Encrypt(plaintext, associatedData)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return ct, nil
}

// Decrypt opens a ciphertext made by Encrypt with the same associatedData.
func (k *Keyset) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := k.aead.Decrypt(ciphertext, associatedData)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// PrimaryKeyID is the id of the key Encrypt uses.
func (k *Keyset) PrimaryKeyID() uint32 {
	return k.handle.KeysetInfo().GetPrimaryKeyId()
}

// HoldsKeyOf says whether this keyset can use the key that sealed
// ciphertext, as Tink's output prefix names it (KeyID): a key of that id
// and prefix kind that is ENABLED (Tink's AEAD leaves DISABLED and
// DESTROYED keys out, so they open nothing). A ciphertext that names no
// key (no Tink prefix: not one this or any Tink keyset made, unless
// with a RAW key) counts as held, as does any when the keyset has an
// enabled RAW key, which could have sealed it. A ciphertext that does not decrypt
// although its key is held was tampered with or moved; one whose key is
// not held may be intact, and the keyset the wrong one or older than the
// ciphertext (a rotation not rolled out everywhere yet, or its key
// disabled too early).
func (k *Keyset) HoldsKeyOf(ciphertext []byte) bool {
	id, prefixed := KeyID(ciphertext)
	if !prefixed {
		return true
	}
	for _, ki := range k.handle.KeysetInfo().GetKeyInfo() {
		if ki.GetStatus() != tinkpb.KeyStatusType_ENABLED {
			continue
		}
		switch ki.GetOutputPrefixType() {
		case tinkpb.OutputPrefixType_RAW:
			// A RAW key's ciphertext has no prefix: any may be its own.
			return true
		case tinkpb.OutputPrefixType_TINK:
			if ciphertext[0] == tinkPrefix && ki.GetKeyId() == id {
				return true
			}
		case tinkpb.OutputPrefixType_LEGACY, tinkpb.OutputPrefixType_CRUNCHY:
			if ciphertext[0] == legacyPrefix && ki.GetKeyId() == id {
				return true
			}
		}
	}
	return false
}

// Tink's output prefixes: a version byte, then the key id big-endian.
const (
	legacyPrefix = 0x00 // LEGACY and CRUNCHY keys
	tinkPrefix   = 0x01 // TINK keys
)

// KeyID reads which key sealed a ciphertext from Tink's output prefix
// (0x01 for a TINK key, 0x00 for a LEGACY or CRUNCHY one, then the key
// id big-endian).
func KeyID(ciphertext []byte) (uint32, bool) {
	if len(ciphertext) < 5 || (ciphertext[0] != tinkPrefix && ciphertext[0] != legacyPrefix) {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:5]), true
}
