package consumer

import "time"

// SetLookupTimeout shortens l's LookupTimeout for a test.
func SetLookupTimeout(l *Lookup, d time.Duration) { l.timeout = d }
