package webhooksig_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/webhooksig"
)

var (
	oldSecret = []byte("old-secret-0123456789abcdef0123456789")
	newSecret = []byte("new-secret-0123456789abcdef0123456789")
)

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"type":"slot_found"}`)
	tests := []struct {
		name    string
		header  string
		body    []byte
		at      time.Time
		secrets [][]byte
		want    error
	}{
		{"Valid", webhooksig.Sign(now, body, newSecret), body, now, [][]byte{newSecret}, nil},
		{"TamperedBody", webhooksig.Sign(now, body, newSecret), []byte(`{"type":"expired"}`), now, [][]byte{newSecret}, webhooksig.ErrMismatch},
		{"WrongSecret", webhooksig.Sign(now, body, newSecret), body, now, [][]byte{oldSecret}, webhooksig.ErrMismatch},
		{"ReplayedAfterTheWindow", webhooksig.Sign(now, body, newSecret), body, now.Add(webhooksig.ReplayWindow + time.Second), [][]byte{newSecret}, webhooksig.ErrTimestamp},
		{"FromTheFuture", webhooksig.Sign(now.Add(webhooksig.ReplayWindow+time.Second), body, newSecret), body, now, [][]byte{newSecret}, webhooksig.ErrTimestamp},
		{"JustInsideTheWindow", webhooksig.Sign(now, body, newSecret), body, now.Add(webhooksig.ReplayWindow), [][]byte{newSecret}, nil},
		{"TimestampChanged", strings.Replace(webhooksig.Sign(now, body, newSecret), "t=1900000000", "t=1900000001", 1), body, now, [][]byte{newSecret}, webhooksig.ErrMismatch},
		// During a rotation the sender signs with both; a receiver knowing
		// either verifies.
		{"RotationReceiverHasOld", webhooksig.Sign(now, body, newSecret, oldSecret), body, now, [][]byte{oldSecret}, nil},
		{"RotationReceiverHasNew", webhooksig.Sign(now, body, newSecret, oldSecret), body, now, [][]byte{newSecret}, nil},
		{"ReceiverRotatingSenderDone", webhooksig.Sign(now, body, newSecret), body, now, [][]byte{oldSecret, newSecret}, nil},
		{"NoHeader", "", body, now, [][]byte{newSecret}, webhooksig.ErrNoSignature},
		{"NoV1", "t=1900000000", body, now, [][]byte{newSecret}, webhooksig.ErrNoSignature},
		{"Garbage", "t=abc,v1=zz", body, now, [][]byte{newSecret}, webhooksig.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := webhooksig.Verify(tt.header, tt.body, tt.at, tt.secrets...); !errors.Is(err, tt.want) {
				t.Errorf("webhooksig.Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
