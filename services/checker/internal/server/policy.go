package server

import (
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Policy says which roles may call each RPC (admin may call all of them).
// Running a session leases accounts and loads the portal: operators only.
var Policy = auth.Policy{
	checkerv1.CheckerService_GetStatus_FullMethodName:  {auth.RoleReader},
	checkerv1.CheckerService_RunSession_FullMethodName: {auth.RoleAdmin},
}
