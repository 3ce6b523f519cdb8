package app

import (
	"context"
	"fmt"

	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// SetPortal creates a portal's settings or changes the fields that are
// set. Callers validate the fields first (domain.PortalFields.Apply on a
// scratch portal); what still fails against the stored portal (quiet
// hours' rate above the stored cap) is returned as field errors and
// nothing is written.
func (a *App) SetPortal(ctx context.Context, name string, f domain.PortalFields) (domain.Portal, error) {
	now := a.Now()
	return a.store.SetPortal(ctx, name, now, func(p *domain.Portal) error {
		var bad apirule.FieldErrors
		f.Apply(&bad, p)
		if err := bad.Err(); err != nil {
			return err
		}
		p.UpdatedAt = now
		return nil
	})
}

// GetPortal returns one portal's settings.
func (a *App) GetPortal(ctx context.Context, name string) (domain.Portal, error) {
	return a.store.GetPortal(ctx, name)
}

// ListPortals pages portals by name, after the name after.
func (a *App) ListPortals(ctx context.Context, after string, limit int) ([]domain.Portal, bool, error) {
	return a.store.ListPortals(ctx, after, limit)
}

// PortalStatus is a portal's pause, recent walls and checks now.
func (a *App) PortalStatus(ctx context.Context, name string) (domain.PortalStatus, error) {
	return a.store.PortalStatus(ctx, name, a.Now(), a.cfg.Walls)
}

// ResumePortal lifts a portal's pause now (an operator's call); a portal
// that is not paused is returned as it is.
func (a *App) ResumePortal(ctx context.Context, name string) (domain.PortalStatus, error) {
	st, err := a.store.ResumePortal(ctx, name, a.Now(), a.cfg.Walls)
	if err != nil {
		return st, fmt.Errorf("resume portal %s: %w", name, err)
	}
	return st, nil
}

// PausedPortals is the slotwatch_requests_portal_paused gauge's query.
func (a *App) PausedPortals(ctx context.Context) (map[string]string, error) {
	return a.store.PausedPortals(ctx, a.Now())
}
