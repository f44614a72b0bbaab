package authority

// HoldOCSPSigners takes every one of s's OCSP signers, as signings under
// way would, until the returned function gives them back.
func HoldOCSPSigners(s *Service) (release func()) {
	for range cap(s.ocspSigners) {
		s.ocspSigners <- struct{}{}
	}
	return func() {
		for range cap(s.ocspSigners) {
			<-s.ocspSigners
		}
	}
}
