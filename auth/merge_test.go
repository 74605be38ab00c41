package auth

import (
	"slices"
	"testing"
)

// TestMergePermissionsPermitOpen: with AuthenticationMethods
// "publickey,publickey" each key's permitopen=/permitlisten= holds. The
// second key's list used to replace the first's, so a target only the
// second allowed was opened and one only the first allowed was refused.
func TestMergePermissionsPermitOpen(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, next []string
		listen      bool
		want        []string
	}{
		{"first only", []string{"db:5432"}, nil, false, []string{"db:5432"}},
		{"next only", nil, []string{"db:5432"}, false, []string{"db:5432"}},
		{"disjoint", []string{"127.0.0.1:22301"}, []string{"127.0.0.1:22"}, false, []string{permitNothing}},
		{"common entry", []string{"a:1", "b:2"}, []string{"b:2", "c:3"}, false, []string{"b:2"}},
		{"wildcards meet", []string{"*:443", "db:*"}, []string{"db:*"}, false, []string{"db:443", "db:*"}},
		{"ipv6", []string{"[::1]:*"}, []string{"*:8080"}, false, []string{"[::1]:8080"}},
		{"listen bare port is localhost", []string{"8080"}, []string{"localhost:*"}, true, []string{"localhost:8080"}},
		{"listen disjoint", []string{"8080"}, []string{"0.0.0.0:8080"}, true, []string{permitNothing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := &Permissions{}, &Permissions{}
			if tc.listen {
				prev.PermitListen, next.PermitListen = tc.first, tc.next
			} else {
				prev.PermitOpen, next.PermitOpen = tc.first, tc.next
			}
			m, err := mergePermissions(prev, next)
			if err != nil {
				t.Fatal(err)
			}
			got, other := m.PermitOpen, m.PermitListen
			if tc.listen {
				got, other = other, got
			}
			if !slices.Equal(got, tc.want) || len(other) != 0 {
				t.Errorf("merged %q and %q: got %q (other list %q), want %q", tc.first, tc.next, got, other, tc.want)
			}
		})
	}
}
