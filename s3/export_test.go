package s3

// SetMaxParts sets how many parts s uploads at most.
func SetMaxParts(s *Store, max int32) { s.maxParts = max }
