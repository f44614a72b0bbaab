package auditlog

// MaxLine is the longest line of a proof file ReadProof reads.
const MaxLine = maxLine

// Subtrees is how many subtrees' hashes h keeps.
func Subtrees(h *Hasher) int { return len(h.subtrees) }
