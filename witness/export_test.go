package witness

// HoldTurn takes the turn of s that requests wait for, as a slow request
// would hold it, and returns what gives it back.
func HoldTurn(s *Server) func() {
	s.turn <- struct{}{}
	return func() { <-s.turn }
}
