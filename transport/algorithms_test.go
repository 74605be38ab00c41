package transport

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAlgorithmList(t *testing.T) {
	def := DefaultAlgorithms(KindCipher)
	tests := []struct {
		spec    string
		want    []string
		wantErr string
	}{
		{spec: "aes128-ctr,aes256-ctr", want: []string{"aes128-ctr", "aes256-ctr"}},
		{spec: "+aes128-cbc,3des-cbc", want: append(slices.Clone(def), "aes128-cbc", "3des-cbc")},
		{spec: "-aes128-ctr", want: slices.DeleteFunc(slices.Clone(def), func(s string) bool { return s == "aes128-ctr" })},
		{spec: "-*-ctr", want: []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}},
		{spec: "^aes256-ctr", want: append([]string{"aes256-ctr"}, slices.DeleteFunc(slices.Clone(def), func(s string) bool { return s == "aes256-ctr" })...)},
		{spec: "+*-cbc", want: append(slices.Clone(def), "aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc", "cast128-cbc")},
		{spec: "aes128-ctr,rot13", wantErr: `unknown algorithm "rot13"`},
		{spec: "+rot13", wantErr: `unknown algorithm "rot13"`},
		{spec: "-rot13", wantErr: `unknown algorithm "rot13"`},
		{spec: "", wantErr: "empty algorithm list"},
		{spec: "aes128-ctr,,aes256-ctr", wantErr: "empty entry"},
		{spec: "-*", wantErr: "leaves no algorithm"},
		{spec: "x*", wantErr: "matches no algorithm"},
	}
	for _, tt := range tests {
		got, err := ParseAlgorithmList(KindCipher, tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAlgorithmList(%q) error = %v, want containing %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseAlgorithmList(%q) = %v, %v; want %v", tt.spec, got, err, tt.want)
		}
	}
}

func TestDefaultsHaveNoLegacy(t *testing.T) {
	for kind, table := range algorithmTable {
		for _, a := range table {
			if a.tier != TierDefault && slices.Contains(DefaultAlgorithms(kind), a.name) {
				t.Errorf("%s %s is tier %s but offered by default", kind, a.name, a.tier)
			}
		}
	}
	// Spot-check the broken set the issue lists as legacy.
	for _, n := range []string{"3des-cbc", "blowfish-cbc", "cast128-cbc", "aes128-cbc", "hmac-md5", "hmac-sha1-96", "diffie-hellman-group1-sha1", "ssh-rsa", "ssh-dss"} {
		found := false
		for _, table := range algorithmTable {
			for _, a := range table {
				if a.name == n {
					found = true
					if a.tier != TierLegacy {
						t.Errorf("%s is %s, want legacy", n, a.tier)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s missing from the table", n)
		}
	}
}

func TestDefaultKexOrder(t *testing.T) {
	want := []string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
		"diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512"}
	if got := DefaultAlgorithms(KindKex); !slices.Equal(got, want) {
		t.Errorf("default kex = %v, want %v", got, want)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		client, server []string
		want           string
		ok             bool
	}{
		{[]string{"a", "b"}, []string{"b", "a"}, "a", true}, // client preference wins
		{[]string{"x", "b"}, []string{"b", "a"}, "b", true},
		{[]string{"x"}, []string{"y"}, "", false},
		{nil, []string{"y"}, "", false},
	}
	for _, tt := range tests {
		got, ok := negotiate(tt.client, tt.server)
		if got != tt.want || ok != tt.ok {
			t.Errorf("negotiate(%v, %v) = %q, %v; want %q, %v", tt.client, tt.server, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNegotiateAllIgnoresPseudoAlgorithms(t *testing.T) {
	// A client naming the server's strict-kex marker must not get it
	// negotiated as a key exchange method.
	client := &kexInitMsg{
		KexAlgos:            []string{strictKexServer, "ext-info-c", "curve25519-sha256"},
		ServerHostKeyAlgos:  []string{"ssh-ed25519"},
		CiphersClientServer: []string{"aes128-gcm@openssh.com"}, CiphersServerClient: []string{"aes128-ctr"},
		MACsClientServer: []string{"hmac-sha2-256"}, MACsServerClient: []string{"hmac-sha2-512"},
		CompressionClientServer: []string{"none"}, CompressionServerClient: []string{"none"},
	}
	server := &kexInitMsg{
		KexAlgos:            []string{"curve25519-sha256", strictKexServer},
		ServerHostKeyAlgos:  []string{"ssh-ed25519"},
		CiphersClientServer: DefaultAlgorithms(KindCipher), CiphersServerClient: DefaultAlgorithms(KindCipher),
		MACsClientServer: DefaultAlgorithms(KindMAC), MACsServerClient: DefaultAlgorithms(KindMAC),
		CompressionClientServer: []string{"none"}, CompressionServerClient: []string{"none"},
	}
	a, err := negotiateAll(client, server)
	if err != nil {
		t.Fatal(err)
	}
	want := Algorithms{Kex: "curve25519-sha256", HostKey: "ssh-ed25519", CipherIn: "aes128-gcm@openssh.com",
		CipherOut: "aes128-ctr", MACIn: "<implicit>", MACOut: "hmac-sha2-512", CompressionIn: "none", CompressionOut: "none"}
	if a != want {
		t.Errorf("negotiateAll = %+v\nwant %+v", a, want)
	}
	client.KexAlgos = []string{strictKexServer}
	if _, err := negotiateAll(client, server); err == nil || !strings.Contains(err.Error(), "no matching key exchange") {
		t.Errorf("pseudo-only kex list: err = %v", err)
	}
}
