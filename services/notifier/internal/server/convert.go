package server

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	notifierv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
)

var kinds = map[notifierv1.ContactKind]channel.Kind{
	notifierv1.ContactKind_CONTACT_KIND_EMAIL:    channel.Email,
	notifierv1.ContactKind_CONTACT_KIND_TELEGRAM: channel.Telegram,
	notifierv1.ContactKind_CONTACT_KIND_WEBHOOK:  channel.Webhook,
}

func kindToProto(k channel.Kind) notifierv1.ContactKind {
	for p, d := range kinds {
		if d == k {
			return p
		}
	}
	return notifierv1.ContactKind_CONTACT_KIND_UNSPECIFIED
}

var eventTypes = map[notifierv1.EventType]domain.EventType{
	notifierv1.EventType_EVENT_TYPE_SLOT_FOUND: domain.SlotFound,
	notifierv1.EventType_EVENT_TYPE_EXPIRED:    domain.Expired,
	notifierv1.EventType_EVENT_TYPE_CANCELLED:  domain.Cancelled,
}

func eventTypeToProto(t domain.EventType) notifierv1.EventType {
	for p, d := range eventTypes {
		if d == t {
			return p
		}
	}
	return notifierv1.EventType_EVENT_TYPE_UNSPECIFIED
}

// eventTypesFromProto maps each type; an unknown one becomes "" for
// domain.EventTypes to name.
func eventTypesFromProto(in []notifierv1.EventType) []domain.EventType {
	out := make([]domain.EventType, len(in))
	for i, t := range in {
		out[i] = eventTypes[t]
	}
	return out
}

var states = map[notifierv1.DeliveryState]domain.DeliveryState{
	notifierv1.DeliveryState_DELIVERY_STATE_PENDING:   domain.Pending,
	notifierv1.DeliveryState_DELIVERY_STATE_DELIVERED: domain.Delivered,
	notifierv1.DeliveryState_DELIVERY_STATE_DEAD:      domain.Dead,
}

func stateToProto(s domain.DeliveryState) notifierv1.DeliveryState {
	for p, d := range states {
		if d == s {
			return p
		}
	}
	return notifierv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func idString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func contactToProto(c domain.Contact) *notifierv1.Contact {
	return &notifierv1.Contact{
		Id: c.ID.String(), ApplicantId: c.ApplicantID.String(), Kind: kindToProto(c.Kind), Address: c.Address, Language: c.Language,
		WebhookSecretSet: c.SecretSet, WebhookSecretRotating: c.Rotating, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt),
	}
}

func subscriptionToProto(s domain.Subscription) *notifierv1.Subscription {
	types := make([]notifierv1.EventType, len(s.EventTypes))
	for i, t := range s.EventTypes {
		types[i] = eventTypeToProto(t)
	}
	return &notifierv1.Subscription{
		Id: s.ID.String(), MissionCodes: s.MissionCodes, EventTypes: types, Kind: kindToProto(s.Kind), Address: s.Address,
		Language: s.Language, WebhookSecretSet: s.SecretSet, WebhookSecretRotating: s.Rotating,
		CreatedAt: ts(s.CreatedAt), UpdatedAt: ts(s.UpdatedAt),
	}
}

func deliveryToProto(d domain.Delivery) *notifierv1.Delivery {
	out := &notifierv1.Delivery{
		Id: d.ID, EventCursor: d.EventCursor, EventType: eventTypeToProto(d.EventType), RequestId: d.RequestID.String(),
		ContactId: idString(d.ContactID), SubscriptionId: idString(d.SubscriptionID), Kind: kindToProto(d.Kind), Address: d.Address,
		State: stateToProto(d.State), Attempts: int32(d.Attempts), LastError: d.LastError, IdempotencyKey: d.IdempotencyKey(),
		Subject: d.Subject, EventOccurredAt: ts(d.EventOccurredAt), CreatedAt: ts(d.CreatedAt), DeliveredAt: ts(d.DeliveredAt),
	}
	if d.State == domain.Pending {
		out.NextAttemptAt = ts(d.NextAttemptAt)
	}
	return out
}
