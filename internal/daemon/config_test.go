package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-sftp/ferry/transport"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	loaded, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, c) {
		t.Errorf("LoadConfig(\"\") differs from Default():\n%+v\n%+v", loaded, c)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, []string{"0.0.0.0:2222", "[::]:2222"}},
		{"data_dir", c.DataDir, "./ferry-data"},
		{"database", c.Database, ""},
		{"host_keys", c.HostKeys, []string(nil)},
		{"kex", c.KexAlgorithms, transport.DefaultAlgorithms(transport.KindKex)},
		{"ciphers", c.Ciphers, transport.DefaultAlgorithms(transport.KindCipher)},
		{"macs", c.MACs, transport.DefaultAlgorithms(transport.KindMAC)},
		{"host key algs", c.HostKeyAlgorithms, transport.DefaultAlgorithms(transport.KindHostKey)},
		{"compression", c.Compressions, []string{"none", "zlib@openssh.com"}},
		{"rekey", c.RekeyLimit, RekeyLimit{}},
		{"max_auth_tries", c.MaxAuthTries, 6},
		{"required_rsa_size", c.RequiredRSASize, 2048},
		{"login_grace_time", c.LoginGraceTime, 120 * time.Second},
		{"max_startups", c.MaxStartups, MaxStartups{10, 30, 100}},
		{"per_source_max_startups", c.PerSourceMaxStartups, 0},
		{"net block", c.PerSourceNetBlockSize, NetBlockSize{32, 128}},
		{"max_sessions", c.MaxSessions, 10},
		{"client_alive_interval", c.ClientAliveInterval, time.Duration(0)},
		{"client_alive_count_max", c.ClientAliveCountMax, 3},
		{"password", c.PasswordAuthentication, true},
		{"pubkey", c.PubkeyAuthentication, true},
		{"kbd", c.KbdInteractiveAuthentication, true},
		{"authentication_methods", c.AuthenticationMethods, [][]string(nil)},
		{"banner", c.Banner, ""},
		{"forwarding", c.AllowTCPForwarding, ForwardingNo},
		{"gateway_ports", c.GatewayPorts, false},
		{"permit_open", c.PermitOpen, PermitOpen{Any: true}},
		{"accept_env", c.AcceptEnv, []string{"LANG", "LC_*"}},
		{"proxy_protocol", c.ProxyProtocol, false},
		{"sftp", c.SFTP, SFTPConfig{AtomicUploads: true, KeepInterruptedUploads: true, Umask: 0o022, MaxHandles: 256}},
		{"log", c.Log, LogConfig{Level: slog.LevelInfo, Format: "text", TransferLog: true}},
		{"metrics", c.Metrics, MetricsConfig{}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	// Legacy public key algorithms are off by default.
	for _, legacy := range []string{"ssh-rsa", "ssh-dss", "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com"} {
		if slices.Contains(c.PubkeyAcceptedAlgorithms, legacy) {
			t.Errorf("default pubkey_accepted_algorithms contains %s", legacy)
		}
	}
	for _, want := range []string{"ssh-ed25519", "rsa-sha2-256", "rsa-sha2-512-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com"} {
		if !slices.Contains(c.PubkeyAcceptedAlgorithms, want) {
			t.Errorf("default pubkey_accepted_algorithms lacks %s", want)
		}
	}
	if c.DSAEnabled() {
		t.Errorf("DSA enabled by default")
	}

	abs, err := filepath.Abs("ferry-data")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.DatabaseURL(); err != nil || u != "sqlite://"+abs+"/ferry.db" {
		t.Errorf("DatabaseURL() = %q, %v; want sqlite://%s/ferry.db", u, err, abs)
	}
	if h, err := c.HomeRoot(); err != nil || h != abs+"/home" {
		t.Errorf("HomeRoot() = %q, %v", h, err)
	}
	// Defaults are fresh values: changing one Config leaves the next alone.
	c.Listen[0] = "changed:1"
	c.Ciphers[0] = "changed"
	if d := Default(); d.Listen[0] != "0.0.0.0:2222" || d.Ciphers[0] == "changed" {
		t.Errorf("Default() shares slices between calls")
	}
}

func TestDefaultPerSourcePenaltiesMatchSSHD(t *testing.T) {
	want := PerSourcePenalties{
		Enabled: true, Crash: 90 * time.Second, AuthFail: 5 * time.Second, InvalidUser: 5 * time.Second,
		NoAuth: time.Second, GraceExceeded: 10 * time.Second, RefuseConnection: 10 * time.Second,
		Max: 10 * time.Minute, Min: 15 * time.Second, MaxSources4: 65536, MaxSources6: 65536,
		Overflow: OverflowPermissive, Overflow6: OverflowPermissive,
	}
	if got := Default().PerSourcePenalties; got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func u32(v uint32) *uint32 { return &v }

func TestFullExample(t *testing.T) {
	c, err := LoadConfig("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = "testdata/full.toml"
	want.Listen = []string{"127.0.0.1:2022", "[::1]:2022"}
	want.DataDir = "/var/lib/ferry"
	want.Database = "postgres://ferry@db/ferry"
	want.HostKeys = []string{"/etc/ferry/ssh_host_ed25519_key", "/etc/ferry/ssh_host_rsa_key"}
	want.KexAlgorithms = []string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org"}
	want.Ciphers = append(transport.DefaultAlgorithms(transport.KindCipher), "aes128-cbc", "3des-cbc")
	want.MACs = []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"}
	want.HostKeyAlgorithms = []string{"ecdsa-sha2-nistp256", "ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}
	want.PubkeyAcceptedAlgorithms = []string{"ssh-ed25519", "rsa-sha2-512"}
	want.Compression = false
	want.Compressions = []string{"none"}
	want.RekeyLimit = RekeyLimit{Bytes: 512 << 20, Interval: 30 * time.Minute}
	want.MaxAuthTries = 3
	want.RequiredRSASize = 3072
	want.LoginGraceTime = 30 * time.Second
	want.MaxStartups = MaxStartups{5, 50, 20}
	want.PerSourceMaxStartups = 4
	want.PerSourcePenalties = PerSourcePenalties{
		Enabled: true, Crash: 2 * time.Minute, AuthFail: 10 * time.Second, InvalidUser: 5 * time.Second,
		NoAuth: 2 * time.Second, GraceExceeded: 20 * time.Second, RefuseConnection: 10 * time.Second,
		Max: time.Hour, Min: 30 * time.Second, MaxSources4: 1024, MaxSources6: 2048,
		Overflow: OverflowDenyAll, Overflow6: OverflowDenyAll,
	}
	want.PerSourcePenaltyExemptList = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.7/32"),
	}
	want.PerSourceNetBlockSize = NetBlockSize{24, 64}
	want.MaxSessions = 4
	want.ClientAliveInterval = 15 * time.Second
	want.ClientAliveCountMax = 5
	want.PasswordAuthentication = false
	want.KbdInteractiveAuthentication = false
	want.AuthenticationMethods = [][]string{{"publickey"}}
	want.TrustedUserCAKeys = "testdata/user_ca.pub"
	want.RevokedKeys = "testdata/revoked.pub"
	want.Banner = "testdata/banner.txt"
	want.AllowTCPForwarding = ForwardingLocal
	want.GatewayPorts = true
	want.PermitOpen = PermitOpen{Targets: []PermitTarget{{"db.internal", 5432}, {"2001:db8::10", 0}, {"*", 443}}}
	want.AcceptEnv = []string{"LANG"}
	want.ProxyProtocol = true
	want.AllowedCommands = []string{"rsync --server", "git-upload-pack", "md5sum"}
	want.RunAs = "ferry"
	want.ShellUID = u32(2000)
	want.ShellGID = u32(2000)
	want.SFTP = SFTPConfig{AtomicUploads: false, KeepInterruptedUploads: false, Umask: 0o027, MaxHandles: 64, ReadLimit: 10 << 20, WriteLimit: 1 << 20}
	want.Log = LogConfig{Level: slog.LevelDebug, Format: "json", TransferLog: false}
	want.Metrics = MetricsConfig{Listen: "127.0.0.1:9122"}

	// Field by field, so a failure names the field.
	gv, wv := reflect.ValueOf(c).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s = %+v, want %+v", gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
	if u, _ := c.DatabaseURL(); u != "postgres://ferry@db/ferry" {
		t.Errorf("DatabaseURL() = %q", u)
	}
	if !c.PermitOpen.Allows("db.internal", 5432) || !c.PermitOpen.Allows("2001:db8::10", 22) ||
		!c.PermitOpen.Allows("example.com", 443) || c.PermitOpen.Allows("db.internal", 22) {
		t.Errorf("PermitOpen.Allows disagrees with %+v", c.PermitOpen)
	}
	if !c.AllowTCPForwarding.AllowsLocal() || c.AllowTCPForwarding.AllowsRemote() {
		t.Errorf("forwarding local: AllowsLocal/AllowsRemote wrong")
	}
}

// The shipped example documents every key with its default, all commented
// out, so it must load to exactly the defaults.
func TestContribExample(t *testing.T) {
	const example = "../../contrib/ferry.toml.example"
	data, err := os.ReadFile(example)
	if err != nil {
		t.Skipf("no example yet: %v", err)
	}
	c, err := LoadConfig(example)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = example
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example does not load to the defaults:\n%+v\n%+v", c, want)
	}
	// Uncommenting every "# key = value" line gives defaults too, so the
	// documented values are the real defaults.
	uncommented := regexp.MustCompile(`(?m)^#\s?([a-z_]+ = .*)$`).ReplaceAll(data, []byte("$1"))
	uncommented = regexp.MustCompile(`(?m)^#\s?(\[[a-z]+\])$`).ReplaceAll(uncommented, []byte("$1"))
	c, err = ParseConfig("uncommented", uncommented)
	if err != nil {
		t.Fatalf("uncommented example: %v\n%s", err, uncommented)
	}
	want.Path = "uncommented"
	gv, wv := reflect.ValueOf(c).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("uncommented example: %s = %+v, want %+v", gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
	for k := range topLevelKeys {
		re := `(?m)^#\s?` + k + ` = `
		if k == "shell_uid" || k == "shell_gid" {
			re = `(?m)^#\s+` + k + ` = ` // no default; shown as an example
		}
		if !regexp.MustCompile(re).Match(data) {
			t.Errorf("example does not document %s", k)
		}
	}
	for sec, m := range sectionKeys {
		if !strings.Contains(string(data), "["+sec+"]") {
			t.Errorf("example does not document [%s]", sec)
		}
		for k := range m {
			if !regexp.MustCompile(`(?m)^#\s?` + k + ` = `).Match(data) {
				t.Errorf("example does not document %s.%s", sec, k)
			}
		}
	}
}

func TestApplyOverrides(t *testing.T) {
	c := Default()
	if err := c.ApplyOverrides(Overrides{DataDir: "/env/data", Database: "sqlite:///env.db"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:22", "[::1]:22"}, DataDir: "/flag/data"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Listen, []string{"127.0.0.1:22", "[::1]:22"}) {
		t.Errorf("listen = %v", c.Listen)
	}
	if c.DataDir != "/flag/data" || c.Database != "sqlite:///env.db" {
		t.Errorf("data_dir = %q, database = %q", c.DataDir, c.Database)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Database = ""
	if u, _ := c.DatabaseURL(); u != "sqlite:///flag/data/ferry.db" {
		t.Errorf("DatabaseURL() = %q", u)
	}

	err := c.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1"}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "listen" || !strings.Contains(err.Error(), "missing port") {
		t.Fatalf("bad --listen: err = %v", err)
	}
	if !slices.Equal(c.Listen, []string{"127.0.0.1:22", "[::1]:22"}) {
		t.Errorf("a rejected override changed listen to %v", c.Listen)
	}
	// An override replaces the file's list; Validate catches duplicates.
	c.ApplyOverrides(Overrides{Listen: []string{"127.0.0.1:22", "127.0.0.1:22"}})
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate listen: %v", err)
	}
}

// One case per class of mistake: the error names the key and its line.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		key  string
		line int
		msg  string
	}{
		{"unknown key", "listen = [\"127.0.0.1:22\"]\n\nport = 22\n", "port", 3, "unknown key"},
		{"sshd spelling", "# comment\nMaxAuthTries = 3\n", "MaxAuthTries", 2, `unknown key (did you mean "max_auth_tries"?)`},
		{"typo", "max_auth_tires = 3\n", "max_auth_tires", 1, `did you mean "max_auth_tries"?`},
		{"unknown key in section", "[sftp]\numask = \"022\"\nmax_handle = 5\n", "sftp.max_handle", 3, `unknown key (did you mean "max_handles"?)`},
		{"unknown section", "data_dir = \"/x\"\n[ssh]\nport = 22\n", "ssh", 2, "unknown key"},
		{"unknown dotted key", "\nfoo.bar = 1\n", "foo.bar", 2, "unknown key"},
		{"section not a table", "\nsftp = 5\n", "sftp", 2, "wrong type: want a table ([sftp]), got integer"},
		{"value made a table", "listen.x = 1\n", "listen", 1, "listen is a value, not a table"},
		{"nested too deep", "[sftp.limits]\nx = 1\n", "sftp.limits", 1, "unknown key"},
		{"wrong type string", "data_dir = 5\n", "data_dir", 1, "wrong type: want a string, got integer"},
		{"wrong type int", "\n\nmax_sessions = \"ten\"\n", "max_sessions", 3, "wrong type: want an integer, got string"},
		{"wrong type bool", "proxy_protocol = 1\n", "proxy_protocol", 1, "wrong type: want a boolean, got integer"},
		{"wrong type array element", "listen = [\"127.0.0.1:22\", 2222]\n", "listen", 1, "wrong type: element 2: want a string, got integer"},
		{"wrong type array", "accept_env = \"LANG\"\n", "accept_env", 1, "wrong type: want an array of strings, got string"},
		{"bad bool word", "password_authentication = \"maybe\"\n", "password_authentication", 1, `bad value "maybe"`},
		{"bad duration", "max_sessions = 3\nlogin_grace_time = \"2 minutes\"\n", "login_grace_time", 2, `bad duration "2 minutes"`},
		{"negative duration", "client_alive_interval = \"-5s\"\n", "client_alive_interval", 1, "must not be negative"},
		{"negative seconds", "login_grace_time = -1\n", "login_grace_time", 1, "must not be negative (got -1)"},
		{"bad size", "[sftp]\n\nread_limit = \"10Q\"\n", "sftp.read_limit", 3, `bad size "10Q"`},
		{"negative size", "[sftp]\nwrite_limit = -1\n", "sftp.write_limit", 2, "must not be negative (got -1)"},
		{"bad rekey_limit", "rekey_limit = \"1G 1h 5\"\n", "rekey_limit", 1, `bad rekey limit "1G 1h 5"`},
		{"rekey too small", "rekey_limit = \"8\"\n", "rekey_limit", 1, "at least 16 bytes"},
		{"bad algorithm", "\nciphers = \"+aes128-cbc,rot13\"\n", "ciphers", 2, `cipher: unknown algorithm "rot13"`},
		{"bad algorithm in array", "macs = [\"hmac-sha2-256\", \"hmac-sha3\"]\n", "macs", 1, `mac: unknown algorithm "hmac-sha3"`},
		{"empty algorithm array", "kex_algorithms = []\n", "kex_algorithms", 1, "empty algorithm list"},
		{"remove everything", "host_key_algorithms = \"-*\"\n", "host_key_algorithms", 1, "leaves no algorithm"},
		{"bad pubkey algorithm", "pubkey_accepted_algorithms = \"+ssh-rsa,ssh-foo\"\n", "pubkey_accepted_algorithms", 1, `pubkey: unknown algorithm "ssh-foo"`},
		{"bad compression", "compression = \"zlib\"\n", "compression", 1, `bad value "zlib"`},
		{"bad max_startups", "max_startups = \"10:30\"\n", "max_startups", 1, `bad max_startups "10:30": want 1 or 3 fields`},
		{"max_startups start > full", "max_startups = \"50:30:10\"\n", "max_startups", 1, "start exceeds full"},
		{"max_startups rate", "max_startups = \"10:0:100\"\n", "max_startups", 1, "rate must be between 1 and 100"},
		{"max_startups int", "max_startups = 0\n", "max_startups", 1, "must be positive"},
		{"per_source_max_startups word", "per_source_max_startups = \"some\"\n", "per_source_max_startups", 1, `want an integer or "none"`},
		{"bad penalty", "per_source_penalties = \"authfail:5s crash\"\n", "per_source_penalties", 1, `unknown setting "crash"`},
		{"bad penalty time", "per_source_penalties = \"authfail:soon\"\n", "per_source_penalties", 1, `authfail: bad duration "soon"`},
		{"penalty yes not alone", "per_source_penalties = \"yes max:1m\"\n", "per_source_penalties", 1, `"yes" must appear alone`},
		{"bad CIDR", "per_source_penalty_exempt_list = [\"10.0.0.0/33\"]\n", "per_source_penalty_exempt_list", 1, `bad CIDR "10.0.0.0/33"`},
		{"CIDR host bits", "per_source_penalty_exempt_list = \"10.0.0.1/8\"\n", "per_source_penalty_exempt_list", 1, "host bits set (did you mean 10.0.0.0/8?)"},
		{"bad net block", "per_source_net_block_size = \"33:128\"\n", "per_source_net_block_size", 1, "IPv4 bits must be 0-32"},
		{"bad permit_open", "permit_open = [\"db.internal\"]\n", "permit_open", 1, `bad permit_open entry "db.internal"`},
		{"bad permit_open port", "permit_open = [\"db:70000\"]\n", "permit_open", 1, "bad port number"},
		{"permit_open any not alone", "permit_open = [\"any\", \"db:5432\"]\n", "permit_open", 1, `"any" must appear alone`},
		{"bad octal umask", "[sftp]\numask = \"089\"\n", "sftp.umask", 2, `bad octal umask "089"`},
		{"umask too big", "[sftp]\numask = 0o7777\n", "sftp.umask", 2, "only permission bits"},
		{"negative number", "\nmax_auth_tries = -1\n", "max_auth_tries", 2, "must not be negative (got -1)"},
		{"zero where positive", "max_auth_tries = 0\n", "max_auth_tries", 1, "out of range: 0 is not between 1 and 1000"},
		{"negative in section", "[sftp]\nmax_handles = -3\n", "sftp.max_handles", 2, "must not be negative (got -3)"},
		{"root uid", "shell_uid = 0\n", "shell_uid", 1, "out of range: 0"},
		{"uid without gid", "shell_uid = 2000\n", "shell_uid", 1, "set shell_gid too"},
		{"listen without port", "listen = [\n  \"0.0.0.0:2222\",\n  \"[::]\",\n]\n", "listen", 1, "missing port"},
		{"listen bad port", "listen = [\"127.0.0.1:ssh\"]\n", "listen", 1, "port must be a number"},
		{"duplicate listen", "listen = [\"127.0.0.1:22\", \"127.0.0.1:22\"]\n", "listen", 1, "duplicate address"},
		{"metrics without port", "[log]\nlevel = \"info\"\n[metrics]\nlisten = \"localhost\"\n", "metrics.listen", 4, "missing port"},
		{"bad log level", "[log]\nlevel = \"verbose\"\n", "log.level", 2, `bad log level "verbose"`},
		{"bad log format", "[log]\nformat = \"xml\"\n", "log.format", 2, `want "text" or "json"`},
		{"bad auth method", "authentication_methods = \"publickey,hostbased\"\n", "authentication_methods", 1, `unknown method "hostbased"`},
		{"unsatisfiable auth", "password_authentication = false\nauthentication_methods = \"publickey,password\"\n", "authentication_methods", 2, "no list can be satisfied"},
		{"no auth at all", "password_authentication = false\npubkey_authentication = false\nkbd_interactive_authentication = false\n", "pubkey_authentication", 2, "every authentication method is disabled"},
		{"banner missing", "\nbanner = \"testdata/no-such-banner\"\n", "banner", 2, "no such file"},
		{"bad forwarding", "allow_tcp_forwarding = \"both\"\n", "allow_tcp_forwarding", 1, `bad value "both"`},
		{"bad accept_env", "accept_env = [\"A=B\"]\n", "accept_env", 1, `bad environment name pattern "A=B"`},
		{"bad run_as", "run_as = \"fer ry\"\n", "run_as", 1, `bad user name "fer ry"`},
		{"bad database URL", "\ndatabase = \"postgres://ferry:s3cr%zzet@db/ferry\"\n", "database", 2, "not a valid URL"},
		{"database password with slash", "database = \"postgres://ferry:s3cr/et@db/ferry\"\n", "database", 1, "percent-encode"},
		{"database scheme", "database = \"mysql://ferry@db/ferry\"\n", "database", 1, `unsupported scheme "mysql"`},
		{"toml syntax", "data_dir = \"/x\"\nlisten = [\"a:1\"\n", "listen", 2, "expected a comma"},
		{"toml duplicate key", "max_sessions = 1\nmax_sessions = 2\n", "max_sessions", 2, "already been defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("t.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			if ce.File != "t.toml" || ce.Key != tc.key || ce.Line != tc.line {
				t.Errorf("error at %s:%d key %q, want t.toml:%d key %q (%v)", ce.File, ce.Line, ce.Key, tc.line, tc.key, err)
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("error %q repeats the database password", err)
			}
			prefix := fmt.Sprintf("t.toml:%d: %s: ", tc.line, tc.key)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want prefix %q containing %q", err, prefix, tc.msg)
			}
		})
	}
}

func TestCheckNesting(t *testing.T) {
	// Brackets and dots in strings and comments do not count, and
	// multi-line strings keep the line count right.
	stringsAndComments := "a = \"" + strings.Repeat("[.", 40) + "\"\n" + // 1
		"b = '" + strings.Repeat("{.", 40) + "'\n" + // 2
		"# " + strings.Repeat("[", 40) + "\n" + // 3
		"c = \"\"\"\n" + // 4
		strings.Repeat("[", 40) + "\n" + // 5
		"\\\"\"\"\"\n" + // 6: escaped quote, then the closing """
		"d = '''\n" + // 7
		"]]]\n" + // 8
		"'''\n" + // 9
		"e = [" + strings.Repeat("[", 20) // 10
	for _, tc := range []struct {
		doc  string
		line int
		msg  string
	}{
		{"a = " + strings.Repeat("[", 17), 1, "nested deeper than 16"},
		{"x = 1\na = [\n" + strings.Repeat("[\n", 16), 18, "nested deeper than 16"},
		{"\n" + strings.Repeat("a.", 17) + "b = 1", 2, "more than 16 dots"},
		{"a = { b = " + strings.Repeat("{c=", 16) + "1", 1, "nested deeper than 16"},
		{stringsAndComments, 10, "nested deeper than 16"},
	} {
		c, err := ParseConfig("t.toml", []byte(tc.doc))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%.60q: err = %v (config %v), want line %d %q", tc.doc, err, c, tc.line, tc.msg)
		}
	}
	// Ordinary files pass.
	for _, f := range []string{"testdata/full.toml", "../../contrib/ferry.toml.example"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if line, err := checkNesting(data); err != nil {
			t.Errorf("%s:%d: %v", f, line, err)
		}
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, make([]byte, maxConfigFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	// The line reported for a file error counts from the top of the file.
	p := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(p, []byte("# ferry\n\n[sftp]\n# comment\numask = \"9\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(p)
	if err == nil || err.Error() != p+`:5: sftp.umask: bad octal umask "9": want octal digits, e.g. "022"` {
		t.Errorf("err = %v", err)
	}
}

func TestAlgorithmListSyntax(t *testing.T) {
	defCiphers := transport.DefaultAlgorithms(transport.KindCipher)
	defPubkey := defaultPubkeyAlgorithms()
	for _, tc := range []struct {
		doc   string
		field func(*Config) []string
		want  []string
	}{
		{`ciphers = "+aes128-cbc,3des-cbc"`, func(c *Config) []string { return c.Ciphers }, append(slices.Clone(defCiphers), "aes128-cbc", "3des-cbc")},
		{`ciphers = "-aes128-ctr,aes192-ctr"`, func(c *Config) []string { return c.Ciphers },
			slices.DeleteFunc(slices.Clone(defCiphers), func(s string) bool { return s == "aes128-ctr" || s == "aes192-ctr" })},
		{`ciphers = "^aes256-gcm@openssh.com"`, func(c *Config) []string { return c.Ciphers },
			append([]string{"aes256-gcm@openssh.com"}, slices.DeleteFunc(slices.Clone(defCiphers), func(s string) bool { return s == "aes256-gcm@openssh.com" })...)},
		{`ciphers = "aes256-ctr,aes128-ctr"`, func(c *Config) []string { return c.Ciphers }, []string{"aes256-ctr", "aes128-ctr"}},
		{`ciphers = ["aes128-cbc"]`, func(c *Config) []string { return c.Ciphers }, []string{"aes128-cbc"}},
		{`macs = "-*sha2-512*"`, func(c *Config) []string { return c.MACs }, []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"}},
		{`host_key_algorithms = "+ssh-dss"`, func(c *Config) []string { return c.HostKeyAlgorithms }, append(transport.DefaultAlgorithms(transport.KindHostKey), "ssh-dss")},
		{`kex_algorithms = "curve25519-sha256"`, func(c *Config) []string { return c.KexAlgorithms }, []string{"curve25519-sha256"}},
		{`pubkey_accepted_algorithms = "+ssh-rsa"`, func(c *Config) []string { return c.PubkeyAcceptedAlgorithms }, append(slices.Clone(defPubkey), "ssh-rsa")},
		{`pubkey_accepted_algorithms = "-*-cert-v01@openssh.com,sk-*"`, func(c *Config) []string { return c.PubkeyAcceptedAlgorithms },
			[]string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"}},
		{`pubkey_accepted_algorithms = "^rsa-sha2-256"`, func(c *Config) []string { return c.PubkeyAcceptedAlgorithms },
			append([]string{"rsa-sha2-256"}, slices.DeleteFunc(slices.Clone(defPubkey), func(s string) bool { return s == "rsa-sha2-256" })...)},
		{`pubkey_accepted_algorithms = "ssh-ed25519*"`, func(c *Config) []string { return c.PubkeyAcceptedAlgorithms },
			[]string{"ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"}},
		{`pubkey_accepted_algorithms = ["ssh-dss", "ssh-ed25519"]`, func(c *Config) []string { return c.PubkeyAcceptedAlgorithms }, []string{"ssh-dss", "ssh-ed25519"}},
	} {
		c, err := ParseConfig("t.toml", []byte(tc.doc))
		if err != nil {
			t.Errorf("%s: %v", tc.doc, err)
			continue
		}
		if got := tc.field(c); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.doc, got, tc.want)
		}
	}

	for _, bad := range []string{"", ",", "ssh-ed25519,,rsa-sha2-256", "-nope", "+x*y", "-*"} {
		if l, err := ParsePubkeyAlgorithms(bad); err == nil {
			t.Errorf("ParsePubkeyAlgorithms(%q) = %v, want error", bad, l)
		}
	}
	c, err := ParseConfig("t.toml", []byte(`host_key_algorithms = "+ssh-dss"`))
	if err != nil || !c.DSAEnabled() {
		t.Errorf("+ssh-dss: DSAEnabled false (%v)", err)
	}
}

func TestCompressionAndForwardingValues(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want []string
	}{{"true", []string{"none", "zlib@openssh.com"}}, {`"yes"`, []string{"none", "zlib@openssh.com"}},
		{`"delayed"`, []string{"none", "zlib@openssh.com"}}, {"false", []string{"none"}}, {`"no"`, []string{"none"}}} {
		c, err := ParseConfig("t", []byte("compression = "+tc.v))
		if err != nil || !slices.Equal(c.Compressions, tc.want) {
			t.Errorf("compression = %s: %v, %v", tc.v, c, err)
		}
	}
	for _, tc := range []struct {
		v    string
		want Forwarding
	}{{"true", ForwardingYes}, {`"yes"`, ForwardingYes}, {"false", ForwardingNo}, {`"no"`, ForwardingNo},
		{`"local"`, ForwardingLocal}, {`"remote"`, ForwardingRemote}} {
		c, err := ParseConfig("t", []byte("allow_tcp_forwarding = "+tc.v))
		if err != nil || c.AllowTCPForwarding != tc.want {
			t.Errorf("allow_tcp_forwarding = %s: %v, %v", tc.v, c, err)
		}
	}
	for _, tc := range []struct {
		doc  string
		want PermitOpen
	}{
		{`permit_open = "any"`, PermitOpen{Any: true}},
		{`permit_open = ["none"]`, PermitOpen{}},
		{`permit_open = "a:1 b:*"`, PermitOpen{Targets: []PermitTarget{{"a", 1}, {"b", 0}}}},
	} {
		c, err := ParseConfig("t", []byte(tc.doc))
		if err != nil || !reflect.DeepEqual(c.PermitOpen, tc.want) {
			t.Errorf("%s: %+v, %v", tc.doc, c, err)
		}
	}
	if (PermitOpen{}).Allows("a", 1) {
		t.Errorf("permit_open none allows a:1")
	}
	for _, tc := range []struct {
		v    string
		want fs.FileMode
	}{{`"022"`, 0o22}, {`"0o077"`, 0o77}, {"0o027", 0o27}, {"18", 0o22}, {`"0"`, 0}} {
		c, err := ParseConfig("t", []byte("[sftp]\numask = "+tc.v))
		if err != nil || c.SFTP.Umask != tc.want {
			t.Errorf("umask = %s: %v, %v", tc.v, c, err)
		}
	}
	c, err := ParseConfig("t", []byte("per_source_max_startups = \"none\"\nlogin_grace_time = 0\nshell_gid = 100\nshell_uid = 1000\n"))
	if err != nil || c.PerSourceMaxStartups != 0 || c.LoginGraceTime != 0 || c.ShellGID == nil || *c.ShellGID != 100 || *c.ShellUID != 1000 {
		t.Errorf("%+v %v", c, err)
	}
	c, err = ParseConfig("t", []byte("banner = \"none\"\ntrusted_user_ca_keys = \"none\"\nauthentication_methods = \"any\"\n"))
	if err != nil || c.Banner != "" || c.TrustedUserCAKeys != "" || c.AuthenticationMethods != nil {
		t.Errorf("%+v %v", c, err)
	}
}

func TestParsePerSourcePenalties(t *testing.T) {
	def := DefaultPerSourcePenalties()
	off := def
	off.Enabled = false
	custom := def
	custom.AuthFail, custom.Max, custom.Overflow, custom.Overflow6, custom.MaxSources6 = 30*time.Second, time.Hour, OverflowDenyAll, OverflowDenyAll, 100
	split := def
	split.Overflow6 = OverflowDenyAll
	fractional := def
	fractional.NoAuth = 1500 * time.Millisecond
	for _, tc := range []struct {
		in   string
		want PerSourcePenalties
		err  string
	}{
		{"yes", def, ""},
		{"YES", def, ""},
		{"no", off, ""},
		{"authfail:30s max:1h overflow:deny-all max-sources6:100", custom, ""},
		{"overflow6:deny-all", split, ""},
		{"noauth:1.5s", fractional, ""},
		{"crash:90 authfail:5 noauth:1 grace-exceeded:10 max:600 min:15", def, ""},
		{"", def, "empty"},
		{"no crash:1s", def, `"no" must appear alone`},
		{"crash", def, `unknown setting "crash"`},
		{"bogus:1s", def, `unknown setting "bogus:1s"`},
		{"max:-1s", def, "must not be negative"},
		{"max-sources4:0", def, "between 1 and"},
		{"max-sources4:many", def, "between 1 and"},
		{"overflow:drop", def, `want "permissive" or "deny-all"`},
	} {
		got, err := ParsePerSourcePenalties(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q:\n got %+v (%v)\nwant %+v", tc.in, got, err, tc.want)
		}
	}
	// Setting any value turns penalties on, as in sshd.
	c, err := ParseConfig("t", []byte(`per_source_penalties = false`))
	if err != nil || c.PerSourcePenalties.Enabled {
		t.Errorf("false: %+v %v", c.PerSourcePenalties, err)
	}
}

func TestParseMaxStartups(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MaxStartups
		ok   bool
	}{
		{"10:30:100", MaxStartups{10, 30, 100}, true},
		{"1:100:1", MaxStartups{1, 100, 1}, true},
		{"20", MaxStartups{20, 100, 20}, true},
		{" 5:10:50 ", MaxStartups{5, 10, 50}, true},
		{"10:30", MaxStartups{}, false},
		{"10:30:100:5", MaxStartups{}, false},
		{"a:b:c", MaxStartups{}, false},
		{"0", MaxStartups{}, false},
		{"-1:30:100", MaxStartups{}, false},
		{"10:101:100", MaxStartups{}, false},
		{"101:30:100", MaxStartups{}, false},
		{"10:30:99999999", MaxStartups{}, false},
		{"", MaxStartups{}, false},
	} {
		got, err := ParseMaxStartups(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseMaxStartups(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "bad max_startups") {
			t.Errorf("ParseMaxStartups(%q): message %q does not say bad max_startups", tc.in, err)
		}
	}
	c, err := ParseConfig("t", []byte("max_startups = 7"))
	if err != nil || c.MaxStartups != (MaxStartups{7, 100, 7}) {
		t.Errorf("max_startups = 7: %+v %v", c, err)
	}
}

func TestParseRekeyLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RekeyLimit
		ok   bool
	}{
		{"1G 1h", RekeyLimit{1 << 30, time.Hour}, true},
		{"default none", RekeyLimit{0, RekeyNever}, true},
		{"512M", RekeyLimit{512 << 20, 0}, true},
		{"default", RekeyLimit{}, true},
		{"4096k 90", RekeyLimit{4 << 20, 90 * time.Second}, true},
		{"2T 1d", RekeyLimit{2 << 40, 24 * time.Hour}, true},
		{"16", RekeyLimit{16, 0}, true},
		{"0 30m", RekeyLimit{0, 30 * time.Minute}, true},
		{"15", RekeyLimit{}, false},
		{"1X", RekeyLimit{}, false},
		{"1G soon", RekeyLimit{}, false},
		{"1G 1h extra", RekeyLimit{}, false},
		{"", RekeyLimit{}, false},
		{"-1G", RekeyLimit{}, false},
		{"99999999999999999999", RekeyLimit{}, false},
		{"17179869184G", RekeyLimit{}, false},
	} {
		got, err := ParseRekeyLimit(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRekeyLimit(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"2m", 2 * time.Minute, true},
		{"90", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"1w2d", 9 * 24 * time.Hour, true},
		{"10M", 10 * time.Minute, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1.5h", 90 * time.Minute, true},
		{"0", 0, true},
		{"", 0, false},
		{"-5s", 0, false},
		{"5 s", 0, false},
		{"5x", 0, false},
		{"1000w", 0, false},
		{"9999999999", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseNetBlockSizeAndAuthMethods(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NetBlockSize
		ok   bool
	}{
		{"32:128", NetBlockSize{32, 128}, true},
		{"24", NetBlockSize{24, 128}, true},
		{"0:0", NetBlockSize{0, 0}, true},
		{"33", NetBlockSize{}, false},
		{"24:129", NetBlockSize{}, false},
		{"24:", NetBlockSize{}, false},
		{"x", NetBlockSize{}, false},
	} {
		got, err := ParseNetBlockSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseNetBlockSize(%q) = %+v, %v", tc.in, got, err)
		}
	}
	got, err := ParseAuthenticationMethods("publickey,password publickey,keyboard-interactive")
	if err != nil || !reflect.DeepEqual(got, [][]string{{"publickey", "password"}, {"publickey", "keyboard-interactive"}}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "any publickey", "publickey,,password", "gssapi-with-mic"} {
		if got, err := ParseAuthenticationMethods(bad); err == nil {
			t.Errorf("ParseAuthenticationMethods(%q) = %v, want error", bad, got)
		}
	}
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		key  string
	}{
		{"no listen", func(c *Config) { c.Listen = nil }, "listen"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"unknown cipher", func(c *Config) { c.Ciphers = []string{"rot13"} }, "ciphers"},
		{"empty pubkey list", func(c *Config) { c.PubkeyAcceptedAlgorithms = nil }, "pubkey_accepted_algorithms"},
		{"negative grace", func(c *Config) { c.LoginGraceTime = -time.Second }, "login_grace_time"},
		{"bad startups", func(c *Config) { c.MaxStartups = MaxStartups{} }, "max_startups"},
		{"negative sessions", func(c *Config) { c.MaxSessions = -1 }, "max_sessions"},
		{"umask", func(c *Config) { c.SFTP.Umask = 0o1000 }, "sftp.umask"},
		{"negative rate", func(c *Config) { c.SFTP.ReadLimit = -1 }, "sftp.read_limit"},
		{"penalty sources", func(c *Config) { c.PerSourcePenalties.MaxSources4 = 0 }, "per_source_penalties"},
		{"metrics on ssh port", func(c *Config) { c.Metrics.Listen = c.Listen[0] }, "metrics.listen"},
		{"bad command", func(c *Config) { c.AllowedCommands = []string{"ls\nrm -rf /"} }, "allowed_commands"},
	} {
		c := Default()
		tc.mod(c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || ce.File != "" || ce.Line != 0 {
			t.Errorf("%s: err = %v, want a *ConfigError for %s", tc.name, err, tc.key)
		}
	}
}

func TestHomeDirAndRedactedDatabaseURL(t *testing.T) {
	c := Default()
	c.DataDir = "/srv/ferry"
	if h, err := c.HomeDir("alice"); err != nil || h != "/srv/ferry/home/alice" {
		t.Errorf("HomeDir(alice) = %q, %v", h, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../root", "a\x00b", `a\b`} {
		if h, err := c.HomeDir(bad); err == nil {
			t.Errorf("HomeDir(%q) = %q, want error", bad, h)
		}
	}
	if got := c.RedactedDatabaseURL(); got != "sqlite:///srv/ferry/ferry.db" {
		t.Errorf("RedactedDatabaseURL() = %q", got)
	}
	c.Database = "postgres://ferry:s3cret@db.internal:5432/ferry?sslmode=verify-full"
	if got := c.RedactedDatabaseURL(); strings.Contains(got, "s3cret") || !strings.Contains(got, "db.internal:5432") {
		t.Errorf("RedactedDatabaseURL() = %q", got)
	}
	// The password as a query parameter, as libpq and pgx accept it: it
	// was printed in "ferry started" and the store's error messages.
	c.Database = "postgres://ferry@db.internal/ferry?sslmode=verify-full&password=s3cret&sslpassword=k3ypass&PassWord=x9"
	got := c.RedactedDatabaseURL()
	for _, secret := range []string{"s3cret", "k3ypass", "x9"} {
		if strings.Contains(got, secret) {
			t.Errorf("RedactedDatabaseURL() = %q shows %q", got, secret)
		}
	}
	if !strings.Contains(got, "sslmode=verify-full") || !strings.Contains(got, "db.internal") {
		t.Errorf("RedactedDatabaseURL() = %q lost what is not secret", got)
	}
}

func TestSnakeCaseAndCloseTo(t *testing.T) {
	for in, want := range map[string]string{
		"MaxAuthTries": "max_auth_tries", "PubkeyAcceptedAlgorithms": "pubkey_accepted_algorithms",
		"KbdInteractiveAuthentication": "kbd_interactive_authentication", "TCPKeepAlive": "tcp_keep_alive",
		"listen": "listen",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"listen", "listen", true}, {"lsiten", "listen", true}, {"listn", "listen", true}, {"listenx", "listen", true},
		{"lxsten", "listen", true}, {"lstn", "listen", false}, {"banner", "listen", false}} {
		if got := closeTo(tc.a, tc.b); got != tc.want {
			t.Errorf("closeTo(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"listen = [\"127.0.0.1:22\"]\n[sftp]\numask = \"022\"\n",
		"ciphers = \"+aes128-cbc\"\nmacs = [\"hmac-sha2-256\"]\n",
		"per_source_penalties = \"crash:90s authfail:5s max:10m\"\nmax_startups = \"10:30:100\"\n",
		"rekey_limit = \"1G 1h\"\nlogin_grace_time = 30\n",
		"sftp.umask = 0o22\n[log]\nlevel = \"debug\"\n[metrics]\nlisten = \"127.0.0.1:9100\"\n",
		"[[sftp]]\nx = 1\n",
		"a.b.c.d = 1\n",
		"permit_open = [\"[::1]:*\"]\nper_source_penalty_exempt_list = \"10.0.0.0/8,::1\"\n",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("testdata/full.toml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.toml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			if lines := strings.Count(string(data), "\n") + 1; ce.Line < 0 || ce.Line > lines {
				t.Fatalf("line %d outside a %d-line file: %v", ce.Line, lines, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config Validate rejects: %v", err)
		}
	})
}

// TestBannerTooLarge: a banner file over maxBannerBytes is refused at
// load (ferry serve --check and SIGHUP say so, naming key and line). It
// was sent whole in one packet to every client, and one over 256 KiB
// failed every connection ("payload of 405273 bytes exceeds 261888")
// with only that per-connection line in the log.
func TestBannerTooLarge(t *testing.T) {
	dir := t.TempDir()
	banner := filepath.Join(dir, "banner")
	if err := os.WriteFile(banner, bytes.Repeat([]byte("x"), maxBannerBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(conf, []byte("\nbanner = \""+banner+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(conf)
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "ferry.toml:2: banner:") || !strings.Contains(err.Error(), "at most 65536") {
		t.Errorf("banner of %d bytes: %v", maxBannerBytes+1, err)
	}
	if err := os.Truncate(banner, maxBannerBytes); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(conf); err != nil {
		t.Error(err)
	} else if err := c.Validate(); err != nil {
		t.Errorf("banner of %d bytes: %v", maxBannerBytes, err)
	}
}
