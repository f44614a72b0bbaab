package witness

import "context"

// HoldTurn takes the turn of s that requests wait for, as a slow request
// would hold it, and returns what gives it back.
func HoldTurn(s *Server) func() {
	s.turn <- struct{}{}
	return func() { <-s.turn }
}

// SetMaxLogs sets how many logs s keeps of a --log entry whose origin ends
// in "*" (maxLogsPerEntry), so that a test need not make ten thousand.
func SetMaxLogs(s *Server, n int) { s.maxLogs = n }

// AddCheckpoint is what s does with a request's body.
func AddCheckpoint(ctx context.Context, s *Server, body []byte) error {
	_, err := s.addCheckpoint(ctx, body)
	return err
}
