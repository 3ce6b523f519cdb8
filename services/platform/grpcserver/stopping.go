package grpcserver

// Stopping is closed when the graceful stop begins, just before the
// stream contexts are cancelled. A stream handler whose context ends can
// look at it to tell a stopping server (answer UNAVAILABLE, so the client
// resumes on another replica) from a client that went away.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }
