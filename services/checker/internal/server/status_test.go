package server

import (
	"context"
	"testing"
	"time"

	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
)

type idleRunner struct{}

func (idleRunner) RunSession(context.Context, int) (session.Summary, error) {
	return session.Summary{}, nil
}
func (idleRunner) Status() session.Status { return session.Status{CheckerID: "c1"} }

func TestStatusShowsEachProfilesLastUnknownPage(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	s := New(idleRunner{}, func() browser.Status { return browser.Status{} }, func() []portal.ProfileStatus {
		return []portal.ProfileStatus{
			{Profile: "vfs", LastUnknown: "/artifacts/x", LastUnknownAt: seen, LastUnknownStep: "login"},
			{Profile: "tls"},
		}
	}, nil)
	resp, err := s.GetStatus(t.Context(), &checkerv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetProfiles()
	if len(ps) != 2 || ps[0].GetLastUnknownArtifacts() != "/artifacts/x" || ps[0].GetLastUnknownStep() != "login" ||
		!ps[0].GetLastUnknownAt().AsTime().Equal(seen) {
		t.Fatalf("profiles = %v", ps)
	}
	if ps[1].GetProfile() != "tls" || ps[1].GetLastUnknownAt() != nil {
		t.Errorf("a profile without unknown pages = %v", ps[1])
	}
}

// recentRunner has one past session: a login, then a reused session.
type recentRunner struct{ idleRunner }

func (recentRunner) Status() session.Status {
	return session.Status{CheckerID: "c1", Recent: []session.Summary{{Number: 1, Results: []session.MissionResult{
		{Mission: "fra", Outcome: session.NoSlot, LoggedIn: true},
		{Mission: "bel", Outcome: session.NoSlot, SessionReused: true},
	}}}}
}

func TestStatusSaysWhichChecksReusedTheirSession(t *testing.T) {
	t.Parallel()
	s := New(recentRunner{}, func() browser.Status { return browser.Status{} }, func() []portal.ProfileStatus { return nil }, nil)
	resp, err := s.GetStatus(t.Context(), &checkerv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRecentSessions()) != 1 || len(resp.GetRecentSessions()[0].GetResults()) != 2 {
		t.Fatalf("recent = %v", resp.GetRecentSessions())
	}
	fra, bel := resp.GetRecentSessions()[0].GetResults()[0], resp.GetRecentSessions()[0].GetResults()[1]
	if !fra.GetLoggedIn() || fra.GetSessionReused() || bel.GetLoggedIn() || !bel.GetSessionReused() {
		t.Errorf("results = %v, %v; want fra logged in, bel on its reused session", fra, bel)
	}
}
