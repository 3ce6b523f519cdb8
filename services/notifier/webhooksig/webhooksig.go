// Package webhooksig is the Notifier's webhook signature, both sides: Sign
// makes the Slotwatch-Signature header the webhook channel sends, Verify is
// what a receiver checks (docs/NOTIFIER.md). It is public, unlike the
// channel, so that receivers in Go outside the Notifier (the demo's, tests)
// verify with this code and no copy of it.
//
//	Slotwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	SignatureHeader   = "Slotwatch-Signature"
	IdempotencyHeader = "Idempotency-Key"
)

// Sign is the Slotwatch-Signature header value of body at t, one v1 per
// secret.
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, sec := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(sec, ts, body)))
	}
	return b.String()
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verification errors.
var (
	ErrNoSignature = errors.New("no valid Slotwatch-Signature header")
	ErrTimestamp   = errors.New("signature timestamp outside the replay window")
	ErrMismatch    = errors.New("no signature matches a known secret")
)

// ReplayWindow is how far a signature's timestamp may lie from the
// receiver's clock.
const ReplayWindow = 5 * time.Minute

// Verify checks a Slotwatch-Signature header against the raw body: its
// timestamp within ReplayWindow of now, and one of its v1 signatures made
// with one of secrets (pass the old and the new secret during a rotation).
// Duplicates within the window are the receiver's to drop, by the
// Idempotency-Key header.
func Verify(header string, body []byte, now time.Time, secrets ...[]byte) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > ReplayWindow || d < -ReplayWindow {
		return ErrTimestamp
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, got := range sigs {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrMismatch
}
