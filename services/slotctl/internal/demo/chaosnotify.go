package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The Notifier's part of the chaos suite: one webhook subscription for
// every mission, so each SLOT_FOUND event of the run yields one delivery
// to the suite's HookReceiver.

// chaosRecipients is how many recipients each SLOT_FOUND reaches: the
// receiver's subscription (the suite makes no contacts).
const chaosRecipients = 1

// notifierInvariant: every SLOT_FOUND event in requests.events has one row
// per recipient in notifier.deliveries, each delivered, and the receiver
// accepted each delivery's idempotency key at least once. It waits up to
// notifierGrace for this to hold; a DEAD delivery breaks it at once.
func (s *chaosSystem) notifierInvariant(ctx context.Context) invariant {
	inv := invariant{name: "notifier"}
	deadline := time.Now().Add(notifierGrace)
	for {
		problem, final := s.notifierProblem(ctx)
		if problem == "" {
			return inv
		}
		if final || time.Now().After(deadline) || sleep(ctx, 500*time.Millisecond) != nil {
			inv.problem = problem
			return inv
		}
	}
}

// notifierProblem says what does not hold yet (empty: all of it), and
// whether it never will (a DEAD delivery, a query that failed).
func (s *chaosSystem) notifierProblem(ctx context.Context) (problem string, final bool) {
	var events, wrong int
	if err := s.admin.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE rows <> $1) FROM (
			SELECT (SELECT count(*) FROM notifier.deliveries d WHERE d.event_cursor = e.id) AS rows
			FROM requests.events e WHERE e.type = 'slot_found') x`, chaosRecipients).Scan(&events, &wrong); err != nil {
		return "query: " + err.Error(), true
	}
	rows, err := s.admin.Query(ctx, `SELECT event_cursor, recipient_id::text, state FROM notifier.deliveries`)
	if err != nil {
		return "query: " + err.Error(), true
	}
	type row struct {
		cursor           int64
		recipient, state string
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var d row
		return d, r.Scan(&d.cursor, &d.recipient, &d.state)
	})
	if err != nil {
		return "query: " + err.Error(), true
	}
	keys, _ := s.hooks.Accepted()
	pending, dead, unseen := 0, 0, 0
	for _, d := range ds {
		switch d.state {
		case "pending":
			pending++
		case "dead":
			dead++
		default:
			if keys[fmt.Sprintf("slotwatch-%d-%s", d.cursor, d.recipient)] == 0 {
				unseen++
			}
		}
	}
	if wrong == 0 && pending == 0 && dead == 0 && unseen == 0 {
		return "", false
	}
	return fmt.Sprintf("of %d SLOT_FOUND events %d without exactly %d delivery row(s); %d deliveries pending, %d dead, %d delivered but not seen by the receiver",
		events, wrong, chaosRecipients, pending, dead, unseen), dead > 0
}

// notifierSummary is the run's line about the webhooks.
func (s *chaosSystem) notifierSummary(ctx context.Context) string {
	keys, failed := s.hooks.Accepted()
	again := 0
	for _, n := range keys {
		if n > 1 {
			again++
		}
	}
	var rows, attempts int
	if err := s.admin.QueryRow(ctx, `SELECT count(*), coalesce(sum(attempts), 0) FROM notifier.deliveries`).Scan(&rows, &attempts); err != nil {
		return "Notifier: " + err.Error()
	}
	return fmt.Sprintf("Notifier: %d deliveries in the log (%d attempts); the receiver accepted %d idempotency keys, %d of them more than once (at least once, by design), and answered %d webhooks 500",
		rows, attempts, len(keys), again, failed)
}
