package server

import (
	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Policy says which roles may call each RPC: admins manage, readers list.
// Admin may call all of them; an RPC missing here is denied to everyone.
var Policy = auth.Policy{
	notifierv1.NotifierService_GetContact_FullMethodName:        {auth.RoleReader},
	notifierv1.NotifierService_ListContacts_FullMethodName:      {auth.RoleReader},
	notifierv1.NotifierService_GetSubscription_FullMethodName:   {auth.RoleReader},
	notifierv1.NotifierService_ListSubscriptions_FullMethodName: {auth.RoleReader},
	notifierv1.NotifierService_ListDeliveries_FullMethodName:    {auth.RoleReader},

	notifierv1.NotifierService_CreateContact_FullMethodName:      {auth.RoleAdmin},
	notifierv1.NotifierService_UpdateContact_FullMethodName:      {auth.RoleAdmin},
	notifierv1.NotifierService_DeleteContact_FullMethodName:      {auth.RoleAdmin},
	notifierv1.NotifierService_CreateSubscription_FullMethodName: {auth.RoleAdmin},
	notifierv1.NotifierService_UpdateSubscription_FullMethodName: {auth.RoleAdmin},
	notifierv1.NotifierService_DeleteSubscription_FullMethodName: {auth.RoleAdmin},
	notifierv1.NotifierService_RetryDelivery_FullMethodName:      {auth.RoleAdmin},
}
