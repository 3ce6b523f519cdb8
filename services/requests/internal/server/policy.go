package server

import (
	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// LargestRequestBytes is the largest request the server reads
// (grpcserver.Config.LargestRequestBytes): a ReportCheckResult whose slots
// take apirule.MaxReportSlotsBytes, and 64 KiB for the rest of it, more
// than the platform's default limit. A bigger message is
// RESOURCE_EXHAUSTED before it is decoded.
const LargestRequestBytes = apirule.MaxReportSlotsBytes + 64<<10

// Policy says which roles may call each RPC. Admin may call all of them;
// an RPC missing here is denied to everyone, and the server refuses to
// start with auth on while one is missing.
var Policy = auth.Policy{
	// The Checker's claim cycle.
	requestsv1.RequestsService_ClaimDueMissions_FullMethodName:  {auth.RoleChecker},
	requestsv1.RequestsService_ReportCheckResult_FullMethodName: {auth.RoleChecker},
	requestsv1.RequestsService_ConfirmClaim_FullMethodName:      {auth.RoleChecker},
	// Reads and the event stream (notifiers, dashboards, web front ends).
	// ListApplicants leaves passport numbers out; GetApplicant, which shows
	// them, is for admins only (below).
	requestsv1.RequestsService_ListApplicants_FullMethodName:          {auth.RoleReader},
	requestsv1.RequestsService_GetAppointmentRequest_FullMethodName:   {auth.RoleReader},
	requestsv1.RequestsService_ListAppointmentRequests_FullMethodName: {auth.RoleReader},
	requestsv1.RequestsService_WatchEvents_FullMethodName:             {auth.RoleReader},
	requestsv1.RequestsService_GetMission_FullMethodName:              {auth.RoleReader},
	requestsv1.RequestsService_ListMissions_FullMethodName:            {auth.RoleReader},
	requestsv1.RequestsService_GetPortal_FullMethodName:               {auth.RoleReader},
	requestsv1.RequestsService_ListPortals_FullMethodName:             {auth.RoleReader},
	requestsv1.RequestsService_GetPortalStatus_FullMethodName:         {auth.RoleReader},
	// Personal data, and changes.
	requestsv1.RequestsService_GetApplicant_FullMethodName:             {auth.RoleAdmin},
	requestsv1.RequestsService_CreateApplicant_FullMethodName:          {auth.RoleAdmin},
	requestsv1.RequestsService_UpdateApplicant_FullMethodName:          {auth.RoleAdmin},
	requestsv1.RequestsService_DeleteApplicant_FullMethodName:          {auth.RoleAdmin},
	requestsv1.RequestsService_CreateAppointmentRequest_FullMethodName: {auth.RoleAdmin},
	requestsv1.RequestsService_CancelAppointmentRequest_FullMethodName: {auth.RoleAdmin},
	requestsv1.RequestsService_ConfirmBooked_FullMethodName:            {auth.RoleAdmin},
	requestsv1.RequestsService_ResumeWatching_FullMethodName:           {auth.RoleAdmin},
	requestsv1.RequestsService_UpsertMission_FullMethodName:            {auth.RoleAdmin},
	requestsv1.RequestsService_SetPortal_FullMethodName:                {auth.RoleAdmin},
	requestsv1.RequestsService_ResumePortal_FullMethodName:             {auth.RoleAdmin},
}
