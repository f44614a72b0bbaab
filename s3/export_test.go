package s3

// SetPartLimits sets how many parts s uploads at most, and after how many
// it doubles their size.
func SetPartLimits(s *Store, max, perSize int32) { s.maxParts, s.partsPerSize = max, perSize }
