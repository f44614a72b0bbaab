package authority

import (
	"context"
	"time"
)

// HoldOCSPSigners takes every one of s's OCSP slots of its processors, as
// signings under way would, until the returned function gives them back.
func HoldOCSPSigners(s *Service) (release func()) {
	var releases []func()
	for range cap(s.ocspSlots.processors) {
		release, err := s.ocspSlots.processor(context.Background(), time.Second)
		if err != nil {
			panic(err)
		}
		releases = append(releases, release)
	}
	return func() {
		for _, release := range releases {
			release()
		}
	}
}

// HoldOCSPStoreSigner takes one of the OCSP slots of the key store named
// store, for the CA of id caID, as a signing under way would, until the
// returned function gives it back.
func HoldOCSPStoreSigner(s *Service, store, caID string) (release func()) {
	release, err := s.ocspSlots.store(context.Background(), store, caID, time.Second)
	if err != nil {
		panic(err)
	}
	return release
}

// HoldOCSPKeySlot takes s's slot of the responders' keys, as a key being
// made would, until the returned function gives it back.
func HoldOCSPKeySlot(s *Service) (release func()) {
	release, err := s.ocspSlots.key(context.Background(), time.Second)
	if err != nil {
		panic(err)
	}
	return release
}

// CheckDestruction is checkDestruction, and ErrNotYet its errNotYet.
var CheckDestruction, ErrNotYet = checkDestruction, errNotYet
