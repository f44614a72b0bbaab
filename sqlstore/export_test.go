package sqlstore

// HotPrepared is how many hot queries db's write pool has prepared.
func HotPrepared(db *DB) int { return len(db.w.hot) }
