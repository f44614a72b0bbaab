package sqliteuri

import "testing"

func TestFile(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/var/lib/openpca/openpca.db", "file:/var/lib/openpca/openpca.db"},
		{"data/openpca.db", "file:data/openpca.db"},
		{"//tmp/x.db", "file:/tmp/x.db"},
		{"/t/a?b#c%41 d/x.db", "file:/t/a%3fb%23c%2541 d/x.db"},
	} {
		if got := File(tc.path); got != tc.want {
			t.Errorf("File(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
