package grpcserver

import "time"

// SetHTTPTimeouts shortens s's HTTP timeouts (before Serve), so a test can
// see them cut a slow client without waiting half a minute.
func SetHTTPTimeouts(s *Server, read, write time.Duration) {
	s.httpTimeouts = httpTimeouts{readHeader: read, read: read, write: write, idle: read}
}

// SetMemoryLimit is LoadEdge's memory step.
var SetMemoryLimit = setMemoryLimit
