package domain

// MaxAnswerBytes bounds the answers that carry many requests
// (ClaimDueMissions, ReportCheckResult, ListAppointmentRequests) well below
// the 4 MB a gRPC client receives by default (the Checker's and slotctl's
// clients keep that default): an answer that passed it would fail at the
// client after the server had committed it. Each answer stops adding
// requests (and claims) before the sum of their SizeBound passes it; at
// least one is always returned (a request is a few kilobytes at most).
const MaxAnswerBytes = 3 << 20

// Overheads of the protobuf encoding, generous: the tags, the lengths (up
// to 3 bytes each, enough for any field here), ids, dates, timestamps (up
// to 19 bytes each) and integers (up to 11), and the tag and length that
// embed a message in a list.
const (
	requestSizeOverhead = 256
	slotSizeOverhead    = 32
	// claimSizeOverhead is a claim's, but for its requests, its mission
	// code and its zone's name (ClaimSizeBound).
	claimSizeOverhead = 96
)

// SizeBound is an upper bound on the bytes s takes in an answer.
func (s Slot) SizeBound() int {
	return slotSizeOverhead + len(s.Centre) + len(s.VisaCategory) + len(s.Time)
}

// SizeBound is an upper bound on the bytes r takes in an answer (the
// protobuf encoding of an AppointmentRequest, embedded in a list). The
// server's tests hold its encoding to it.
func (r Request) SizeBound() int {
	n := requestSizeOverhead + len(r.MissionCode) + len(r.Centre) + len(r.VisaCategory)
	for _, s := range r.MatchedSlots {
		n += s.SizeBound()
	}
	for _, s := range r.AnsweredMissedSlots() {
		n += s.SizeBound()
	}
	return n
}

// ClaimSizeBound is an upper bound on the bytes a claim of mission takes in
// an answer, but for its requests.
func ClaimSizeBound(mission, timezone string) int {
	return claimSizeOverhead + len(mission) + len(timezone)
}

// FitAnswer is how many of reqs, from the first, fit in budget bytes
// (SizeBound each): at least one when reqs is not empty.
func FitAnswer(reqs []Request, budget int) int {
	used := 0
	for i, r := range reqs {
		used += r.SizeBound()
		if used > budget && i > 0 {
			return i
		}
	}
	return len(reqs)
}
