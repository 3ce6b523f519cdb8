package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sethvargo/go-retry"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

// reconnectDelay is how long events follow waits before resuming a stream
// that a server ended (a rollout stops it with UNAVAILABLE).
var reconnectDelay = time.Second

func (a *app) eventsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Request events (created, slot_found, booked, watching_resumed, cancelled, expired, portal_paused, portal_resumed)"}
	var after int64
	follow := &cobra.Command{
		Use:   "follow [--after CURSOR]",
		Short: "Print request events as they happen, until interrupted",
		Long: `Print request events from the start (or after --after CURSOR), then live,
until interrupted. When the server ends the stream (a rollout), follow
reconnects and resumes after the last event it printed. With -o json each
event is one JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rq, err := a.requests()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cursor := after
			if !a.json() {
				fmt.Fprintf(a.io.Stdout, "%-8s  %-19s  %-10s  %-36s  %-8s  %s\n", "CURSOR", "TIME", "EVENT", "REQUEST", "MISSION", "STATUS")
			}
			// A stream the server ended is resumed after the last event
			// printed, reconnectDelay later; an interrupt ends the wait too.
			err = retry.Do(ctx, retry.NewConstant(reconnectDelay), func(ctx context.Context) error {
				stream, err := rq.WatchEvents(ctx, &rqv1.WatchEventsRequest{AfterCursor: cursor})
				if err == nil {
					for {
						var ev *rqv1.WatchEventsResponse
						if ev, err = stream.Recv(); err != nil {
							break
						}
						cursor = ev.GetCursor()
						if err := a.printEvent(ev); err != nil {
							return err
						}
					}
				}
				switch {
				case ctx.Err() != nil:
					return ctx.Err()
				case errors.Is(err, io.EOF), status.Code(err) == codes.Unavailable:
					fmt.Fprintf(a.io.Stderr, "slotctl: event stream ended (%s); resuming after cursor %d\n", oneLine(status.Convert(err).Message()), cursor)
					return retry.RetryableError(err)
				default:
					return err
				}
			})
			if ctx.Err() != nil {
				return nil // interrupted: that is how follow ends
			}
			return err
		},
	}
	follow.Flags().Int64Var(&after, "after", 0, "resume after this cursor (0: from the first event)")
	cmd.AddCommand(follow)
	return cmd
}

func (a *app) printEvent(ev *rqv1.WatchEventsResponse) error {
	if a.json() {
		b, err := jsonOpts.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.io.Stdout, "%s\n", b)
		return err
	}
	if p := ev.GetPortal(); p != nil {
		_, err := fmt.Fprintf(a.io.Stdout, "%-8d  %-19s  %-10s  portal %s  paused=%v until %s  %s\n", ev.GetCursor(), when(ev.GetOccurredAt()),
			enumWord(ev.GetType().String(), "EVENT_TYPE_"), p.GetName(), p.GetPaused(), when(p.GetPausedUntil()), oneLine(p.GetPauseReason()))
		return err
	}
	r := ev.GetRequest()
	_, err := fmt.Fprintf(a.io.Stdout, "%-8d  %-19s  %-10s  %-36s  %-8s  %s\n", ev.GetCursor(), when(ev.GetOccurredAt()),
		enumWord(ev.GetType().String(), "EVENT_TYPE_"), r.GetId(), r.GetMissionCode(), enumWord(r.GetStatus().String(), "REQUEST_STATUS_"))
	return err
}
