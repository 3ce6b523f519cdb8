package server

import (
	"testing"

	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

func TestPolicyCoversEveryRPC(t *testing.T) {
	t.Parallel()
	if err := Policy.Covers(&checkerv1.CheckerService_ServiceDesc); err != nil {
		t.Fatal(err)
	}
}

func TestOnlyAdminsRunSessions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role   auth.Role
		method string
		want   bool
	}{
		{auth.RoleReader, checkerv1.CheckerService_GetStatus_FullMethodName, true},
		{auth.RoleReader, checkerv1.CheckerService_RunSession_FullMethodName, false},
		{auth.RoleChecker, checkerv1.CheckerService_RunSession_FullMethodName, false},
		{auth.RoleChecker, checkerv1.CheckerService_GetStatus_FullMethodName, false},
		{auth.RoleAdmin, checkerv1.CheckerService_RunSession_FullMethodName, true},
		{auth.RoleAdmin, checkerv1.CheckerService_GetStatus_FullMethodName, true},
	} {
		if got := Policy.Allows(tc.role, tc.method); got != tc.want {
			t.Errorf("%s may call %s: %v, want %v", tc.role, tc.method, got, tc.want)
		}
	}
}
