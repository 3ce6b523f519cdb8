// Package app holds the Notifier's use cases: contacts and subscriptions
// (their secrets sealed with the keyset), and the delivery log's reads and
// RetryDelivery. Handlers validate input into domain types and call it.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
	"github.com/slotwatch/slotwatch/services/notifier/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

// Applicants says whether Requests knows an applicant. An error means
// Requests could not be asked (wrap ErrRequestsUnavailable).
type Applicants interface {
	ApplicantExists(ctx context.Context, id uuid.UUID) (bool, error)
}

// ErrRequestsUnavailable: Requests did not answer a question the call
// depends on.
var ErrRequestsUnavailable = errors.New("requests service unavailable")

// App is the Notifier's use cases.
type App struct {
	store      *store.Store
	keys       *secrets.Keyset
	now        func() time.Time
	applicants Applicants
}

// New returns the app.
func New(st *store.Store, keys *secrets.Keyset, now func() time.Time, applicants Applicants) *App {
	if now == nil {
		now = time.Now
	}
	return &App{store: st, keys: keys, now: now, applicants: applicants}
}

func (a *App) seal(t store.Table, id uuid.UUID, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	return a.keys.Encrypt([]byte(secret), store.SecretAD(t, id))
}

// OpenSecrets opens the sealed webhook secrets a claimed delivery carries:
// the current one, then the previous one during a rotation.
func (a *App) OpenSecrets(d domain.Delivery) ([][]byte, error) {
	var out [][]byte
	for _, ct := range d.Secrets {
		pt, err := a.keys.Decrypt(ct, store.SecretAD(TableOf(d), d.RecipientID()))
		if err != nil {
			return nil, fmt.Errorf("open webhook secret: %w", err)
		}
		out = append(out, pt)
	}
	return out, nil
}

// CreateContact adds a contact for an applicant Requests knows.
func (a *App) CreateContact(ctx context.Context, applicant uuid.UUID, in domain.TargetInput) (domain.Contact, error) {
	ok, err := a.applicants.ApplicantExists(ctx, applicant)
	if err != nil {
		return domain.Contact{}, err
	}
	if !ok {
		return domain.Contact{}, domain.ErrApplicantNotFound
	}
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Contact{}, err
	}
	sealed, err := a.seal(store.Contacts, id, in.WebhookSecret)
	if err != nil {
		return domain.Contact{}, err
	}
	c := domain.Contact{ID: id, ApplicantID: applicant, Target: domain.Target{Kind: in.Kind, Address: in.Address, Language: in.Language},
		CreatedAt: a.now()}
	return a.store.CreateContact(ctx, c, sealed)
}

// GetContact returns a contact.
func (a *App) GetContact(ctx context.Context, id uuid.UUID) (domain.Contact, error) {
	return a.store.GetContact(ctx, id)
}

// ListContacts pages contacts.
func (a *App) ListContacts(ctx context.Context, applicant uuid.UUID, pos *store.Position, limit int) ([]domain.Contact, bool, error) {
	return a.store.ListContacts(ctx, applicant, pos, limit)
}

// UpdateContact changes a contact; the update is checked against its kind.
func (a *App) UpdateContact(ctx context.Context, id uuid.UUID, u domain.TargetUpdate) (domain.Contact, error) {
	return a.store.UpdateContact(ctx, id, a.now(), func(c *domain.Contact, sec *store.Secrets) error {
		return a.applyTarget(&c.Target, sec, store.Contacts, id, u)
	})
}

func (a *App) applyTarget(t *domain.Target, sec *store.Secrets, table store.Table, id uuid.UUID, u domain.TargetUpdate) error {
	var v apirule.FieldErrors
	u.Check(&v, t.Kind)
	if err := v.Err(); err != nil {
		return err
	}
	if u.Address != nil {
		t.Address = *u.Address
	}
	if u.Language != nil {
		t.Language = *u.Language
	}
	if u.EndRotation {
		sec.Prev = nil
	}
	if u.WebhookSecret != nil {
		sealed, err := a.seal(table, id, *u.WebhookSecret)
		if err != nil {
			return err
		}
		sec.Prev, sec.Current = sec.Current, sealed
	}
	return nil
}

// DeleteContact deletes a contact.
func (a *App) DeleteContact(ctx context.Context, id uuid.UUID) error {
	return a.store.DeleteContact(ctx, id)
}

// CreateSubscription adds an operator subscription.
func (a *App) CreateSubscription(ctx context.Context, missions []string, types []domain.EventType, in domain.TargetInput) (domain.Subscription, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Subscription{}, err
	}
	sealed, err := a.seal(store.Subscriptions, id, in.WebhookSecret)
	if err != nil {
		return domain.Subscription{}, err
	}
	sub := domain.Subscription{ID: id, MissionCodes: missions, EventTypes: types,
		Target: domain.Target{Kind: in.Kind, Address: in.Address, Language: in.Language}, CreatedAt: a.now()}
	return a.store.CreateSubscription(ctx, sub, sealed)
}

// GetSubscription returns a subscription.
func (a *App) GetSubscription(ctx context.Context, id uuid.UUID) (domain.Subscription, error) {
	return a.store.GetSubscription(ctx, id)
}

// ListSubscriptions pages subscriptions.
func (a *App) ListSubscriptions(ctx context.Context, mission string, pos *store.Position, limit int) ([]domain.Subscription, bool, error) {
	return a.store.ListSubscriptions(ctx, mission, pos, limit)
}

// UpdateSubscription changes a subscription; nil missions or types stay.
func (a *App) UpdateSubscription(ctx context.Context, id uuid.UUID, missions []string, types []domain.EventType, u domain.TargetUpdate) (domain.Subscription, error) {
	return a.store.UpdateSubscription(ctx, id, a.now(), func(sub *domain.Subscription, sec *store.Secrets) error {
		if missions != nil {
			sub.MissionCodes = missions
		}
		if types != nil {
			sub.EventTypes = types
		}
		return a.applyTarget(&sub.Target, sec, store.Subscriptions, id, u)
	})
}

// DeleteSubscription deletes a subscription.
func (a *App) DeleteSubscription(ctx context.Context, id uuid.UUID) error {
	return a.store.DeleteSubscription(ctx, id)
}

// ListDeliveries pages the delivery log, newest first.
func (a *App) ListDeliveries(ctx context.Context, f store.DeliveryFilter, before int64, limit int) ([]domain.Delivery, bool, error) {
	return a.store.ListDeliveries(ctx, f, before, limit)
}

// RetryDelivery queues a DEAD delivery again.
func (a *App) RetryDelivery(ctx context.Context, id int64) (domain.Delivery, error) {
	return a.store.RetryDelivery(ctx, id, a.now())
}

// TableOf is the table a delivery's recipient lives in.
func TableOf(d domain.Delivery) store.Table {
	if d.ContactID != uuid.Nil {
		return store.Contacts
	}
	return store.Subscriptions
}
