package server

import (
	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Policy says which roles may call each RPC. Admin may call all of them;
// an RPC missing here is denied to everyone, and the server refuses to
// start with auth on while one is missing.
var Policy = auth.Policy{
	// The Checker's lease cycle.
	apv1.AccountPoolService_Acquire_FullMethodName: {auth.RoleChecker},
	apv1.AccountPoolService_Renew_FullMethodName:   {auth.RoleChecker},
	apv1.AccountPoolService_Release_FullMethodName: {auth.RoleChecker},
	// Dashboards and read-only operators: never a password.
	apv1.AccountPoolService_GetAccount_FullMethodName:    {auth.RoleReader},
	apv1.AccountPoolService_ListAccounts_FullMethodName:  {auth.RoleReader},
	apv1.AccountPoolService_GetPoolStatus_FullMethodName: {auth.RoleReader},
	apv1.AccountPoolService_ListUsage_FullMethodName:     {auth.RoleReader},
	apv1.AccountPoolService_GetUsageStats_FullMethodName: {auth.RoleReader},
	// Changes to the pool.
	apv1.AccountPoolService_CreateAccount_FullMethodName:      {auth.RoleAdmin},
	apv1.AccountPoolService_ImportAccounts_FullMethodName:     {auth.RoleAdmin},
	apv1.AccountPoolService_UpdateAccount_FullMethodName:      {auth.RoleAdmin},
	apv1.AccountPoolService_ResetAccount_FullMethodName:       {auth.RoleAdmin},
	apv1.AccountPoolService_ReencryptPasswords_FullMethodName: {auth.RoleAdmin},
}
