package consumer

import (
	"context"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

// SetLookupTimeout shortens l's LookupTimeout for a test.
func SetLookupTimeout(l *Lookup, d time.Duration) { l.timeout = d }

// Prepare runs c's prepare over events already received and the error
// the stream ended with, and returns the last cursor of each batch it
// handed to record.
func Prepare(ctx context.Context, c *Consumer, events []*requestsv1.WatchEventsResponse, end error) ([]int64, error) {
	in := make(chan *requestsv1.WatchEventsResponse, len(events))
	for _, ev := range events {
		in <- ev
	}
	recvErr := make(chan error, 1)
	recvErr <- end
	ready := make(chan prepared, len(events)+1)
	_, err := c.prepare(ctx, in, recvErr, ready)
	close(ready)
	var lasts []int64
	for p := range ready {
		lasts = append(lasts, p.last)
	}
	return lasts, err
}
