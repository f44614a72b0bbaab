package authority

import "context"

// HoldOCSPSigners takes every one of s's OCSP slots of its processors, as
// signings under way would, until the returned function gives them back.
func HoldOCSPSigners(s *Service) (release func()) {
	var releases []func()
	for range s.ocspSlots.processors {
		releases = append(releases, HoldOCSPStoreSigner(s, "", ""))
	}
	return func() {
		for _, release := range releases {
			release()
		}
	}
}

// HoldOCSPStoreSigner takes one of the OCSP slots of the key store named
// store, for the CA of id caID, as a signing under way would, until the
// returned function gives it back; store "" takes one of the processors'.
func HoldOCSPStoreSigner(s *Service, store, caID string) (release func()) {
	release, err := s.ocspSlots.take(context.Background(), store, caID, 0)
	if err != nil {
		panic(err)
	}
	return release
}
