package server

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// TestSizeBoundsHoldTheEncoding: the bounds the answers are budgeted with
// (domain.Request.SizeBound, domain.ClaimSizeBound) are never below the
// encoded size, for the largest request input allows: names of the most
// characters of four bytes each, every slot kept, every time set, and
// counts at their largest.
func TestSizeBoundsHoldTheEncoding(t *testing.T) {
	t.Parallel()
	name := strings.Repeat("𝄞", domain.MaxTextLen) // 4 bytes each
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	slot := domain.Slot{Centre: name, VisaCategory: name, Date: far, Time: "23:59"}
	slots := make([]domain.Slot, domain.MaxSlotsPerRequest)
	for i := range slots {
		slots[i] = slot
	}
	big := domain.Request{
		ID: uuid.New(), ApplicantID: uuid.New(), MissionCode: strings.Repeat("m", 16), Centre: name, VisaCategory: name,
		EarliestDate: far, LatestDate: far, Status: domain.StatusSlotFound, MatchedSlots: slots, MatchedSlotCount: 1<<31 - 1,
		MissedSlots: slots, LastCheckedAt: far, CheckCount: 1<<31 - 1, CreatedAt: far, UpdatedAt: far,
	}
	small := domain.Request{ID: uuid.New(), MissionCode: "fr", Centre: "p", VisaCategory: "t", Status: domain.StatusPending}
	for _, r := range []domain.Request{big, small} {
		// A request inside a list: the list's tag and length count too.
		got := proto.Size(&requestsv1.ListAppointmentRequestsResponse{Requests: []*requestsv1.AppointmentRequest{requestToProto(r)}})
		if got > r.SizeBound() {
			t.Errorf("request of %d slots encodes to %d bytes, bound %d", len(r.MatchedSlots)+len(r.MissedSlots), got, r.SizeBound())
		}
	}
	c := domain.Claim{ID: uuid.New(), MissionCode: big.MissionCode, ExpiresAt: far, Timezone: strings.Repeat("z", domain.MaxTimezoneLen),
		Requests: []domain.Request{big, big}}
	got := proto.Size(&requestsv1.ClaimDueMissionsResponse{Claims: []*requestsv1.MissionClaim{claimToProto(c)}})
	if bound := domain.ClaimSizeBound(c.MissionCode, c.Timezone) + 2*big.SizeBound(); got > bound {
		t.Errorf("claim encodes to %d bytes, bound %d", got, bound)
	}
}
