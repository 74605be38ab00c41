package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxAuthorizedKeyLine bounds one authorized_keys line. A 16384-bit RSA key
// is about 2.8 KiB of base64 and a certificate-authority line with options
// rarely exceeds a few KiB; OpenSSH reads lines of any length, but ours come
// from a database and a customer upload, so we bound them.
const MaxAuthorizedKeyLine = 32 * 1024

// MaxAuthorizedKeys bounds the keys in one authorized_keys file (ours:
// far beyond what a customer account uses, small enough that a hostile
// upload cannot make every login scan megabytes).
const MaxAuthorizedKeys = 4096

// MaxPermitEntries bounds permitopen/permitlisten entries per key; it is
// OpenSSH's SSH_AUTHOPT_PERMIT_MAX.
const MaxPermitEntries = 4096

// maxKeyOptions bounds the options of one line (ours; every option sshd
// knows fits many times over).
const maxKeyOptions = 256

// AuthorizedKey is one line of an authorized_keys file (sshd(8)
// AUTHORIZED_KEYS FILE FORMAT): options, key, comment.
type AuthorizedKey struct {
	Key     PublicKey
	Comment string
	Options KeyOptions
}

// KeyOptions are the options of an authorized_keys line. The No* fields are
// the effective restrictions: "restrict" sets them all, and a later "pty",
// "port-forwarding", ... clears one again, exactly as sshd evaluates the
// line. Use the *Allowed methods to consume them.
type KeyOptions struct {
	Restrict          bool // "restrict" was given
	NoPTY             bool
	NoPortForwarding  bool
	NoAgentForwarding bool
	NoX11Forwarding   bool
	NoUserRC          bool

	Command      string   // command="..."; never "" when given (refused)
	From         []string // from="pattern-list", split at commas
	PermitOpen   []string // permitopen="host:port", repeatable
	PermitListen []string // permitlisten="[host:]port", repeatable
	Environment  []string // environment="NAME=value", repeatable; first value of a NAME wins
	// ExpiryTime is the expiry-time="YYYYMMDD[HHMM[SS]][Z|UTC]" deadline
	// (sshd: local time of the server unless suffixed Z or UTC); zero if
	// absent. When given more than once, the earliest wins, like sshd.
	ExpiryTime    time.Time
	CertAuthority bool
	Principals    []string // principals="a,b" (only with cert-authority)
	Tunnel        string   // tunnel="n"

	NoTouchRequired bool // no-touch-required
	VerifyRequired  bool // verify-required
}

// PTYAllowed reports whether a pty may be allocated.
func (o *KeyOptions) PTYAllowed() bool { return !o.NoPTY }

// PortForwardingAllowed reports whether TCP forwarding is allowed.
func (o *KeyOptions) PortForwardingAllowed() bool { return !o.NoPortForwarding }

// AgentForwardingAllowed reports whether agent forwarding is allowed.
func (o *KeyOptions) AgentForwardingAllowed() bool { return !o.NoAgentForwarding }

// X11ForwardingAllowed reports whether X11 forwarding is allowed.
func (o *KeyOptions) X11ForwardingAllowed() bool { return !o.NoX11Forwarding }

// UserRCAllowed reports whether ~/.ssh/rc may run.
func (o *KeyOptions) UserRCAllowed() bool { return !o.NoUserRC }

// Expired reports whether expiry-time has passed at now.
func (o *KeyOptions) Expired(now time.Time) bool {
	return !o.ExpiryTime.IsZero() && !now.Before(o.ExpiryTime)
}

// IsZero reports whether the options neither restrict nor grant anything:
// the line had none, or only ones that cancel out ("no-pty,pty").
func (o *KeyOptions) IsZero() bool { return len(o.canonical()) == 0 }

// String returns the options as an authorized_keys options field in
// canonical form (as String of AuthorizedKey writes them), "" for none.
func (o *KeyOptions) String() string { return strings.Join(o.canonical(), ",") }

// SKPolicy returns the security key policy the options ask for.
func (o *KeyOptions) SKPolicy() SKPolicy {
	return SKPolicy{NoTouchRequired: o.NoTouchRequired, VerifyRequired: o.VerifyRequired}
}

// isKeyTypeName reports whether s names a key format. Certificate formats
// are included: the same line syntax is used for -cert.pub files. In
// authorized_keys such a line authorizes nothing, in sshd as in ferry: a
// presented certificate is matched by its CA against cert-authority lines,
// and a CA is a plain key (store's key parser refuses to add one).
func isKeyTypeName(s string) bool {
	_, ok := signatureAlgorithms[s]
	return ok
}

// ParseAuthorizedKey parses one authorized_keys line. Leading whitespace and
// a trailing CR/LF are ignored; a blank or comment line is an error (use
// ParseAuthorizedKeys for files).
func ParseAuthorizedKey(line []byte) (*AuthorizedKey, error) {
	if len(line) > MaxAuthorizedKeyLine {
		return nil, fmt.Errorf("keys: authorized_keys line longer than %d bytes", MaxAuthorizedKeyLine)
	}
	s := strings.TrimRight(string(line), "\r\n")
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return nil, errors.New("keys: empty authorized_keys line")
	}
	a := &AuthorizedKey{}
	// sshd first tries the line as a bare key and only then as options
	// followed by a key; a known key type name can never be an option.
	first, _, _ := strings.Cut(s, " ")
	first, _, _ = strings.Cut(first, "\t")
	if !isKeyTypeName(first) {
		rest, err := parseKeyOptions(s, &a.Options)
		if err != nil {
			return nil, err
		}
		s = strings.TrimLeft(rest, " \t")
	}
	typ, rest := cutField(s)
	if typ == "" {
		return nil, errors.New("keys: missing key type")
	}
	if !isKeyTypeName(typ) {
		return nil, fmt.Errorf("keys: unknown key type %q", sanitize(typ))
	}
	b64, comment := cutField(rest)
	if b64 == "" {
		return nil, fmt.Errorf("keys: missing %s key data", typ)
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("keys: bad base64 key data: %v", err)
	}
	k, err := ParsePublicKey(blob)
	if err != nil {
		return nil, err
	}
	if k.Type() != typ {
		return nil, fmt.Errorf("keys: key type %s does not match key data of type %s", typ, k.Type())
	}
	a.Key = k
	a.Comment = strings.TrimSpace(comment)
	if !a.Options.CertAuthority && len(a.Options.Principals) > 0 {
		return nil, errors.New(`keys: "principals" option requires "cert-authority"`)
	}
	return a, nil
}

// cutField splits off the first space/tab separated field.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// ParseAuthorizedKeys parses a whole authorized_keys file, skipping blank
// lines and # comments. Any bad line fails the whole file, with its line
// number, so a typo is reported when the file is stored rather than
// silently ignored at login as sshd does.
func ParseAuthorizedKeys(data []byte) ([]*AuthorizedKey, error) {
	var out []*AuthorizedKey
	n := 0
	for len(data) > 0 {
		n++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		t := bytes.TrimLeft(bytes.TrimRight(line, "\r"), " \t")
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if len(out) == MaxAuthorizedKeys {
			return nil, fmt.Errorf("keys: line %d: more than %d keys", n, MaxAuthorizedKeys)
		}
		a, err := ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// flagOptions are the options sshd accepts with a "no-" prefix; "restrict"
// turns all the forwarding ones off. The table maps the positive name to
// the KeyOptions field setter.
var flagOptions = map[string]func(o *KeyOptions, on bool){
	"port-forwarding":  func(o *KeyOptions, on bool) { o.NoPortForwarding = !on },
	"agent-forwarding": func(o *KeyOptions, on bool) { o.NoAgentForwarding = !on },
	"x11-forwarding":   func(o *KeyOptions, on bool) { o.NoX11Forwarding = !on },
	"pty":              func(o *KeyOptions, on bool) { o.NoPTY = !on },
	"user-rc":          func(o *KeyOptions, on bool) { o.NoUserRC = !on },
	"touch-required":   func(o *KeyOptions, on bool) { o.NoTouchRequired = !on },
	"verify-required":  func(o *KeyOptions, on bool) { o.VerifyRequired = on },
}

// parseKeyOptions parses the comma-separated options at the start of s
// (sshd auth-options.c: names are case-insensitive, values are "quoted" with
// \" as the only escape, and options end at the first unquoted space or
// tab). It returns the rest of the line.
func parseKeyOptions(s string, o *KeyOptions) (string, error) {
	count := 0
	for {
		if count == maxKeyOptions {
			return "", fmt.Errorf("keys: more than %d options", maxKeyOptions)
		}
		count++
		switch {
		case s == "":
			return "", errors.New("keys: missing key after options")
		case s[0] == ' ' || s[0] == '\t':
			// "no-pty, ssh-ed25519 ...": sshd's option loop stops at
			// the blank after a trailing comma.
			return s, nil
		case s[0] == ',':
			// An empty option ("a,,b", a leading comma) matches nothing
			// in sshd's sshauthopt_parse and is passed over.
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		name := strings.ToLower(s[:i])
		if name == "" {
			return "", errors.New("keys: empty option")
		}
		s = s[i:]
		var value string
		hasValue := len(s) > 0 && s[0] == '='
		if hasValue {
			if len(s) < 2 || s[1] != '"' {
				return "", fmt.Errorf("keys: option %q: missing start quote", sanitize(name))
			}
			var b strings.Builder
			j := 2
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return "", fmt.Errorf("keys: option %q: missing end quote", sanitize(name))
			}
			value = b.String()
			s = s[j+1:]
		}
		if err := applyOption(o, name, value, hasValue); err != nil {
			return "", err
		}
		if s == "" {
			return "", errors.New("keys: missing key after options")
		}
		if s[0] == ' ' || s[0] == '\t' {
			return s, nil
		}
		if s[0] != ',' {
			return "", fmt.Errorf("keys: option %q: unexpected %q after option", sanitize(name), s[0])
		}
		s = s[1:]
	}
}

func applyOption(o *KeyOptions, name, value string, hasValue bool) error {
	flag := func() error {
		if hasValue {
			return fmt.Errorf("keys: option %q takes no value", name)
		}
		return nil
	}
	need := func() error {
		if !hasValue {
			return fmt.Errorf("keys: option %q needs a value", name)
		}
		return nil
	}
	switch name {
	case "restrict":
		if err := flag(); err != nil {
			return err
		}
		o.Restrict = true
		o.NoPTY, o.NoPortForwarding, o.NoAgentForwarding, o.NoX11Forwarding, o.NoUserRC = true, true, true, true, true
	case "cert-authority":
		if err := flag(); err != nil {
			return err
		}
		o.CertAuthority = true
	case "command":
		if err := need(); err != nil {
			return err
		}
		if o.Command != "" {
			return errors.New(`keys: multiple "command" clauses`)
		}
		if value == "" {
			// sshd forces the empty command, so the key can run nothing;
			// Command "" means no forced command, which would instead
			// let the key run anything.
			return errors.New(`keys: empty "command" (sshd would run nothing with this key; remove the key or name a command)`)
		}
		o.Command = value
	case "principals":
		if err := need(); err != nil {
			return err
		}
		if o.Principals != nil {
			return errors.New(`keys: multiple "principals" clauses`)
		}
		o.Principals = strings.Split(value, ",")
	case "from":
		if err := need(); err != nil {
			return err
		}
		if o.From != nil {
			return errors.New(`keys: multiple "from" clauses`)
		}
		o.From = strings.Split(value, ",")
	case "expiry-time":
		if err := need(); err != nil {
			return err
		}
		t, err := ParseTime(value)
		if err == nil && t.Unix() == 0 {
			err = errors.New("time 0") // sshd: "invalid expires time"
		}
		if err != nil {
			return fmt.Errorf("keys: invalid expiry-time: %w", err)
		}
		if o.ExpiryTime.IsZero() || t.Before(o.ExpiryTime) {
			o.ExpiryTime = t
		}
	case "environment":
		if err := need(); err != nil {
			return err
		}
		n, _, ok := strings.Cut(value, "=")
		if !ok || n == "" || !isEnvName(n) {
			return fmt.Errorf("keys: invalid environment string %q", sanitize(value))
		}
		if len(o.Environment) == MaxPermitEntries {
			return errors.New("keys: too many environment options")
		}
		// sshd 9.x keeps the first value of a repeated name and ignores
		// the others (auth-options.c: "ignore duplicate: first wins").
		if slices.ContainsFunc(o.Environment, func(e string) bool { return strings.HasPrefix(e, n+"=") }) {
			break
		}
		o.Environment = append(o.Environment, value)
	case "permitopen", "permitlisten":
		if err := need(); err != nil {
			return err
		}
		if err := checkPermit(name, value); err != nil {
			return err
		}
		list := &o.PermitOpen
		if name == "permitlisten" {
			list = &o.PermitListen
		}
		if len(*list) == MaxPermitEntries {
			return fmt.Errorf("keys: too many %s options", name)
		}
		*list = append(*list, value)
	case "tunnel":
		if err := need(); err != nil {
			return err
		}
		if strings.EqualFold(value, "any") {
			value = "any" // sshd's a2tun ignores case
		} else if _, err := strconv.ParseUint(value, 10, 31); err != nil {
			return fmt.Errorf("keys: invalid tunnel device %q", sanitize(value))
		}
		o.Tunnel = value
	default:
		on := true
		base := name
		if strings.HasPrefix(name, "no-") {
			on, base = false, name[3:]
		}
		set, ok := flagOptions[base]
		if !ok {
			return fmt.Errorf("keys: unsupported option %q", sanitize(name))
		}
		if err := flag(); err != nil {
			return err
		}
		set(o, on)
	}
	return nil
}

func isEnvName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkPermit validates permitopen="host:port" and
// permitlisten="[host:]port" as sshd does: port is a number or "*", an IPv6
// host is in brackets.
func checkPermit(name, v string) error {
	host, port := "", v
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		} else if strings.Contains(host, ":") {
			// "::1:22": sshd refuses the line (its host ends at the first
			// colon); stored as it was, it matched no request.
			return fmt.Errorf("keys: invalid %s %q: an IPv6 address goes in brackets ([::1]:22)", name, sanitize(v))
		}
		if host == "" {
			return fmt.Errorf("keys: invalid %s %q: empty host", name, sanitize(v))
		}
	} else if name == "permitopen" {
		return fmt.Errorf("keys: invalid %s %q: want host:port", name, sanitize(v))
	}
	if port != "*" {
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && name == "permitopen") {
			return fmt.Errorf("keys: invalid %s %q: bad port", name, sanitize(v))
		}
	}
	return nil
}

// ParseTime parses an expiry-time / ssh-keygen -V absolute time:
// YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, in the server's local time, or
// in UTC when followed by "Z" or "UTC" (any case), as sshd's misc.c
// parse_absolute_time. Like its strptime and mktime, fields are checked
// against their ranges (month 1-12, day 1-31, hour 0-23, minute 0-59,
// second 0-61) and an overflowing day is carried into the next month
// ("20300231" is 3 March); times before 1970 are refused.
func ParseTime(s string) (time.Time, error) {
	in := s
	loc := time.Local
	switch n := len(s); {
	case n > 1 && (s[n-1] == 'Z' || s[n-1] == 'z'):
		loc, s = time.UTC, s[:n-1]
	case n > 3 && strings.EqualFold(s[n-3:], "UTC"):
		loc, s = time.UTC, s[:n-3]
	}
	if len(s) != 8 && len(s) != 12 && len(s) != 14 {
		return time.Time{}, fmt.Errorf("bad time %q: want YYYYMMDD[HHMM[SS]][Z|UTC]", sanitize(in))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, fmt.Errorf("bad time %q", sanitize(in))
		}
	}
	field := func(i, w int) int {
		if i+w > len(s) {
			return 0
		}
		v, _ := strconv.Atoi(s[i : i+w])
		return v
	}
	year, month, day := field(0, 4), field(4, 2), field(6, 2)
	hour, minute, sec := field(8, 2), field(10, 2), field(12, 2)
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 61 {
		return time.Time{}, fmt.Errorf("bad time %q", sanitize(in))
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, loc)
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("bad time %q: before 1970", sanitize(in))
	}
	return t, nil
}

// String returns the canonical authorized_keys line (no newline): the
// effective options in a fixed order, values quoted with " escaped, then the
// key and comment. Parsing the result gives back the same AuthorizedKey.
func (a *AuthorizedKey) String() string {
	var b strings.Builder
	opts := a.Options.canonical()
	if len(opts) > 0 {
		b.WriteString(strings.Join(opts, ","))
		b.WriteByte(' ')
	}
	b.Write(bytes.TrimSuffix(MarshalAuthorizedKey(a.Key), []byte("\n")))
	if a.Comment != "" {
		b.WriteByte(' ')
		b.WriteString(a.Comment)
	}
	return b.String()
}

func quoteOption(name, v string) string {
	return name + `="` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}

// canonical renders the options. Flag options are rendered from the
// effective state relative to "restrict" when it was given, so a
// KeyOptions built in code prints its restrictions too.
func (o *KeyOptions) canonical() []string {
	var out []string
	if o.Restrict {
		out = append(out, "restrict")
		if !o.NoPTY {
			out = append(out, "pty")
		}
		if !o.NoPortForwarding {
			out = append(out, "port-forwarding")
		}
		if !o.NoAgentForwarding {
			out = append(out, "agent-forwarding")
		}
		if !o.NoX11Forwarding {
			out = append(out, "x11-forwarding")
		}
		if !o.NoUserRC {
			out = append(out, "user-rc")
		}
	} else {
		if o.NoPTY {
			out = append(out, "no-pty")
		}
		if o.NoPortForwarding {
			out = append(out, "no-port-forwarding")
		}
		if o.NoAgentForwarding {
			out = append(out, "no-agent-forwarding")
		}
		if o.NoX11Forwarding {
			out = append(out, "no-x11-forwarding")
		}
		if o.NoUserRC {
			out = append(out, "no-user-rc")
		}
	}
	if o.CertAuthority {
		out = append(out, "cert-authority")
	}
	if o.NoTouchRequired {
		out = append(out, "no-touch-required")
	}
	if o.VerifyRequired {
		out = append(out, "verify-required")
	}
	if o.Command != "" {
		out = append(out, quoteOption("command", o.Command))
	}
	if o.From != nil {
		out = append(out, quoteOption("from", strings.Join(o.From, ",")))
	}
	if o.Principals != nil {
		out = append(out, quoteOption("principals", strings.Join(o.Principals, ",")))
	}
	if !o.ExpiryTime.IsZero() {
		// Keep the zone the line was written in: UTC with "Z", anything
		// else as the server's local time, which is how sshd reads it.
		if o.ExpiryTime.Location() == time.UTC {
			out = append(out, quoteOption("expiry-time", o.ExpiryTime.Format("20060102150405")+"Z"))
		} else {
			out = append(out, quoteOption("expiry-time", o.ExpiryTime.In(time.Local).Format("20060102150405")))
		}
	}
	for _, v := range o.Environment {
		out = append(out, quoteOption("environment", v))
	}
	for _, v := range o.PermitOpen {
		out = append(out, quoteOption("permitopen", v))
	}
	for _, v := range o.PermitListen {
		out = append(out, quoteOption("permitlisten", v))
	}
	if o.Tunnel != "" {
		out = append(out, quoteOption("tunnel", o.Tunnel))
	}
	return out
}

// MatchFrom implements sshd's from="pattern-list" check
// (match_host_and_ip): each pattern is matched against the client address
// as a CIDR block or a */? wildcard over its text form, and against
// remoteHost (the client's name, or "" when names are not resolved, in
// which case the address text is used) as a case-insensitive wildcard. A
// pattern prefixed "!" that matches denies, whatever else matches. A list
// sshd calls invalid denies: an empty entry ("a,,b", a trailing comma, a
// bare "!"), or a CIDR block with host bits set or a mask longer than its
// address (addr_match_list returns -2 for both).
func MatchFrom(patterns []string, remoteIP net.IP, remoteHost string) bool {
	if remoteIP == nil {
		return false
	}
	addr := remoteIP.String()
	if remoteHost == "" {
		remoteHost = addr
	}
	host := strings.ToLower(remoteHost)
	positive := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if p == "" {
			return false
		}
		var match bool
		if n, err := parseCIDR(p); err == nil {
			match = n.Contains(remoteIP)
		} else if errors.Is(err, errInconsistentMask) {
			return false
		} else {
			match = wildcardMatch(addr, p)
		}
		if !match {
			match = wildcardMatch(host, strings.ToLower(p))
		}
		if match {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

var errInconsistentMask = errors.New("inconsistent mask length")

// parseCIDR parses an address or address/len as sshd's addr_pton_cidr
// does: a mask is decimal digits up to 128, or the entry is not an address
// at all; a mask longer than the address family allows, or host bits set
// under it, is errInconsistentMask.
func parseCIDR(s string) (*net.IPNet, error) {
	addr, bits, hasLen := strings.Cut(s, "/")
	n := -1
	if hasLen {
		v, err := strconv.ParseUint(bits, 10, 64)
		if err != nil || bits[0] < '0' || bits[0] > '9' || v > 128 {
			return nil, fmt.Errorf("invalid mask length %q", sanitize(bits))
		}
		n = int(v)
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, fmt.Errorf("invalid address %q", sanitize(addr))
	}
	max := 128
	if ip4 := ip.To4(); ip4 != nil && !strings.Contains(addr, ":") {
		ip, max = ip4, 32
	}
	if n < 0 {
		n = max
	}
	if n > max {
		return nil, errInconsistentMask
	}
	mask := net.CIDRMask(n, max)
	if !ip.Mask(mask).Equal(ip) {
		return nil, errInconsistentMask
	}
	return &net.IPNet{IP: ip, Mask: mask}, nil
}

// wildcardMatch matches s against a pattern with * (any run) and ? (any one
// byte), as OpenSSH's match_pattern. Iterative with one backtrack point, so
// it runs in O(len(s)*len(p)) at worst.
func wildcardMatch(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
