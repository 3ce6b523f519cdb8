// Package server is the gRPC edge of the Notifier: handlers turn protobuf
// into domain input (collecting field violations), call the app, and turn
// the answer or the error back. Errors map to codes in one function,
// errorStatus.
package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

// Server implements notifierv1.NotifierServiceServer.
type Server struct {
	notifierv1.UnimplementedNotifierServiceServer
	app    *app.App
	logger *slog.Logger
}

// New returns the server.
func New(a *app.App, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{app: a, logger: logger}
}

// Register registers s on gs.
func (s *Server) Register(gs *grpc.Server) { notifierv1.RegisterNotifierServiceServer(gs, s) }

// errorStatus is the one place domain errors become gRPC codes. An error
// nobody expected is logged here and reaches the caller only as "internal
// error".
func (s *Server) errorStatus(ctx context.Context, method string, err error) error {
	var fieldErrs apirule.FieldErrors
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fieldErrs):
		return apierr.Invalid(fieldErrs)
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, domain.ErrApplicantNotFound):
		return status.Error(codes.FailedPrecondition, "applicant_id names no applicant in Requests")
	case errors.Is(err, domain.ErrNotDead):
		return status.Error(codes.FailedPrecondition, "only a DEAD delivery can be retried")
	case errors.Is(err, app.ErrRequestsUnavailable):
		return status.Error(codes.Unavailable, "the Requests service did not answer: retry later")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case pgdb.Unavailable(err):
		s.logger.WarnContext(ctx, "database unavailable", "method", method, "error", err)
		return status.Error(codes.Unavailable, "database unavailable: retry")
	}
	s.logger.ErrorContext(ctx, "request failed", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}

func targetInput(kind notifierv1.ContactKind, address, language, secret string) domain.TargetInput {
	return domain.TargetInput{Kind: kinds[kind], Address: address, Language: language, WebhookSecret: secret}
}

// CreateContact adds a contact.
func (s *Server) CreateContact(ctx context.Context, req *notifierv1.CreateContactRequest) (*notifierv1.CreateContactResponse, error) {
	var v apirule.FieldErrors
	applicant := v.UUID("applicant_id", req.GetApplicantId())
	in := targetInput(req.GetKind(), req.GetAddress(), req.GetLanguage(), req.GetWebhookSecret()).Check(&v)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "CreateContact", err)
	}
	c, err := s.app.CreateContact(ctx, applicant, in)
	if err != nil {
		return nil, s.errorStatus(ctx, "CreateContact", err)
	}
	return &notifierv1.CreateContactResponse{Contact: contactToProto(c)}, nil
}

// GetContact returns a contact.
func (s *Server) GetContact(ctx context.Context, req *notifierv1.GetContactRequest) (*notifierv1.GetContactResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetContact", err)
	}
	c, err := s.app.GetContact(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "GetContact", err)
	}
	return &notifierv1.GetContactResponse{Contact: contactToProto(c)}, nil
}

// ListContacts pages contacts.
func (s *Server) ListContacts(ctx context.Context, req *notifierv1.ListContactsRequest) (*notifierv1.ListContactsResponse, error) {
	var v apirule.FieldErrors
	n, pos := page.Args[store.Position](&v, req.GetPageSize(), req.GetPageToken())
	var applicant uuid.UUID
	if req.GetApplicantId() != "" {
		applicant = v.UUID("applicant_id", req.GetApplicantId())
	}
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListContacts", err)
	}
	cs, more, err := s.app.ListContacts(ctx, applicant, pos, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListContacts", err)
	}
	resp := &notifierv1.ListContactsResponse{}
	for _, c := range cs {
		resp.Contacts = append(resp.Contacts, contactToProto(c))
	}
	if more {
		last := cs[len(cs)-1]
		resp.NextPageToken = page.Encode(store.Position{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return resp, nil
}

func targetUpdate(address, language, secret *string, end bool) domain.TargetUpdate {
	return domain.TargetUpdate{Address: address, Language: language, WebhookSecret: secret, EndRotation: end}
}

// UpdateContact changes a contact.
func (s *Server) UpdateContact(ctx context.Context, req *notifierv1.UpdateContactRequest) (*notifierv1.UpdateContactResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "UpdateContact", err)
	}
	c, err := s.app.UpdateContact(ctx, id, targetUpdate(req.Address, req.Language, req.WebhookSecret, req.GetEndWebhookSecretRotation()))
	if err != nil {
		return nil, s.errorStatus(ctx, "UpdateContact", err)
	}
	return &notifierv1.UpdateContactResponse{Contact: contactToProto(c)}, nil
}

// DeleteContact deletes a contact.
func (s *Server) DeleteContact(ctx context.Context, req *notifierv1.DeleteContactRequest) (*notifierv1.DeleteContactResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "DeleteContact", err)
	}
	if err := s.app.DeleteContact(ctx, id); err != nil {
		return nil, s.errorStatus(ctx, "DeleteContact", err)
	}
	return &notifierv1.DeleteContactResponse{}, nil
}

// CreateSubscription adds a subscription.
func (s *Server) CreateSubscription(ctx context.Context, req *notifierv1.CreateSubscriptionRequest) (*notifierv1.CreateSubscriptionResponse, error) {
	var v apirule.FieldErrors
	missions := domain.MissionCodes(&v, "mission_codes", req.GetMissionCodes())
	types := domain.EventTypes(&v, "event_types", eventTypesFromProto(req.GetEventTypes()))
	in := targetInput(req.GetKind(), req.GetAddress(), req.GetLanguage(), req.GetWebhookSecret()).Check(&v)
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "CreateSubscription", err)
	}
	sub, err := s.app.CreateSubscription(ctx, missions, types, in)
	if err != nil {
		return nil, s.errorStatus(ctx, "CreateSubscription", err)
	}
	return &notifierv1.CreateSubscriptionResponse{Subscription: subscriptionToProto(sub)}, nil
}

// GetSubscription returns a subscription.
func (s *Server) GetSubscription(ctx context.Context, req *notifierv1.GetSubscriptionRequest) (*notifierv1.GetSubscriptionResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "GetSubscription", err)
	}
	sub, err := s.app.GetSubscription(ctx, id)
	if err != nil {
		return nil, s.errorStatus(ctx, "GetSubscription", err)
	}
	return &notifierv1.GetSubscriptionResponse{Subscription: subscriptionToProto(sub)}, nil
}

// ListSubscriptions pages subscriptions.
func (s *Server) ListSubscriptions(ctx context.Context, req *notifierv1.ListSubscriptionsRequest) (*notifierv1.ListSubscriptionsResponse, error) {
	var v apirule.FieldErrors
	n, pos := page.Args[store.Position](&v, req.GetPageSize(), req.GetPageToken())
	if req.GetMissionCode() != "" {
		v.MissionCode("mission_code", req.GetMissionCode())
	}
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListSubscriptions", err)
	}
	subs, more, err := s.app.ListSubscriptions(ctx, req.GetMissionCode(), pos, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListSubscriptions", err)
	}
	resp := &notifierv1.ListSubscriptionsResponse{}
	for _, sub := range subs {
		resp.Subscriptions = append(resp.Subscriptions, subscriptionToProto(sub))
	}
	if more {
		last := subs[len(subs)-1]
		resp.NextPageToken = page.Encode(store.Position{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return resp, nil
}

// UpdateSubscription changes a subscription.
func (s *Server) UpdateSubscription(ctx context.Context, req *notifierv1.UpdateSubscriptionRequest) (*notifierv1.UpdateSubscriptionResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	var missions []string
	if req.GetSetMissionCodes() {
		missions = domain.MissionCodes(&v, "mission_codes", req.GetMissionCodes())
	} else if len(req.GetMissionCodes()) > 0 {
		v.Add("mission_codes", "is applied only with set_mission_codes")
	}
	var types []domain.EventType
	if req.GetSetEventTypes() {
		types = domain.EventTypes(&v, "event_types", eventTypesFromProto(req.GetEventTypes()))
	} else if len(req.GetEventTypes()) > 0 {
		v.Add("event_types", "is applied only with set_event_types")
	}
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "UpdateSubscription", err)
	}
	sub, err := s.app.UpdateSubscription(ctx, id, missions, types,
		targetUpdate(req.Address, req.Language, req.WebhookSecret, req.GetEndWebhookSecretRotation()))
	if err != nil {
		return nil, s.errorStatus(ctx, "UpdateSubscription", err)
	}
	return &notifierv1.UpdateSubscriptionResponse{Subscription: subscriptionToProto(sub)}, nil
}

// DeleteSubscription deletes a subscription.
func (s *Server) DeleteSubscription(ctx context.Context, req *notifierv1.DeleteSubscriptionRequest) (*notifierv1.DeleteSubscriptionResponse, error) {
	var v apirule.FieldErrors
	id := v.UUID("id", req.GetId())
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "DeleteSubscription", err)
	}
	if err := s.app.DeleteSubscription(ctx, id); err != nil {
		return nil, s.errorStatus(ctx, "DeleteSubscription", err)
	}
	return &notifierv1.DeleteSubscriptionResponse{}, nil
}

// deliveryPosition is ListDeliveries' page token: the last id served.
type deliveryPosition struct {
	ID int64 `json:"id"`
}

// ListDeliveries pages the delivery log, newest first.
func (s *Server) ListDeliveries(ctx context.Context, req *notifierv1.ListDeliveriesRequest) (*notifierv1.ListDeliveriesResponse, error) {
	var v apirule.FieldErrors
	n := page.Size(&v, "page_size", req.GetPageSize())
	var pos deliveryPosition
	page.Decode(&v, "page_token", req.GetPageToken(), &pos)
	var f store.DeliveryFilter
	if st := req.GetState(); st != notifierv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED {
		var ok bool
		if f.State, ok = states[st]; !ok {
			v.Add("state", "must be DELIVERY_STATE_PENDING, DELIVERY_STATE_DELIVERED or DELIVERY_STATE_DEAD")
		}
	}
	if req.GetContactId() != "" {
		f.ContactID = v.UUID("contact_id", req.GetContactId())
	}
	if req.GetSubscriptionId() != "" {
		f.SubscriptionID = v.UUID("subscription_id", req.GetSubscriptionId())
	}
	if err := v.Err(); err != nil {
		return nil, s.errorStatus(ctx, "ListDeliveries", err)
	}
	ds, more, err := s.app.ListDeliveries(ctx, f, pos.ID, n)
	if err != nil {
		return nil, s.errorStatus(ctx, "ListDeliveries", err)
	}
	resp := &notifierv1.ListDeliveriesResponse{}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	if more {
		resp.NextPageToken = page.Encode(deliveryPosition{ID: ds[len(ds)-1].ID})
	}
	return resp, nil
}

// RetryDelivery queues a DEAD delivery again.
func (s *Server) RetryDelivery(ctx context.Context, req *notifierv1.RetryDeliveryRequest) (*notifierv1.RetryDeliveryResponse, error) {
	if req.GetId() <= 0 {
		var v apirule.FieldErrors
		v.Add("id", "must be a delivery id (a positive integer)")
		return nil, s.errorStatus(ctx, "RetryDelivery", v.Err())
	}
	d, err := s.app.RetryDelivery(ctx, req.GetId())
	if err != nil {
		return nil, s.errorStatus(ctx, "RetryDelivery", err)
	}
	return &notifierv1.RetryDeliveryResponse{Delivery: deliveryToProto(d)}, nil
}
