package witness

// HoldTurn takes the turn of s that requests wait for, as a slow request
// would hold it, and returns what gives it back.
func HoldTurn(s *Server) func() {
	s.turn <- struct{}{}
	return func() { <-s.turn }
}

// SetMaxLogs sets how many logs s keeps of a --log entry whose origin ends
// in "*" (maxLogsPerEntry), so that a test need not make ten thousand.
func SetMaxLogs(s *Server, n int) { s.maxLogs = n }
