package console

import "testing"

// TestSearchSlots: an account searches by text once at a time, and the
// server twice, so that searches leave the read connections to the rest.
func TestSearchSlots(t *testing.T) {
	s := searchSlots{byAccount: map[string]int{}}
	steps := []struct {
		take    bool // else give
		account string
		want    bool
	}{
		{true, "a", true},
		{true, "a", false}, // a's second at once
		{true, "b", true},
		{true, "c", false}, // the server's third
		{false, "a", true},
		{true, "c", true},
		{true, "a", false},
		{false, "b", true},
		{true, "a", true},
	}
	for i, st := range steps {
		if !st.take {
			s.give(st.account)
			continue
		}
		if got := s.take(st.account); got != st.want {
			t.Fatalf("step %d: %s may search: %v, want %v", i, st.account, got, st.want)
		}
	}
	s.give("a")
	s.give("c")
	if s.total != 0 || len(s.byAccount) != 0 {
		t.Errorf("after every search ended: %d under way, %v", s.total, s.byAccount)
	}
}

// TestSearchSlotDuringItsQuery: a slot is held while its query runs, and
// free once it returns, before the page is written; a query that panics
// gives it back too.
func TestSearchSlotDuringItsQuery(t *testing.T) {
	s := searchSlots{byAccount: map[string]int{}}
	ran := s.during("a", func() {
		if s.take("a") {
			t.Error("a second search of the account while the first's query runs")
		}
	})
	if !ran || !s.take("a") {
		t.Fatalf("the slot after the query: ran %v, free %v", ran, s.total == 0)
	}
	s.give("a")
	func() {
		defer func() { recover() }()
		s.during("a", func() { panic("the query") })
	}()
	if s.total != 0 || len(s.byAccount) != 0 {
		t.Errorf("after a query that panicked: %d under way, %v", s.total, s.byAccount)
	}
}
