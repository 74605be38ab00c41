package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/internal/daemon"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/store"
	"github.com/ferry-sftp/ferry/store/password"
)

// userOptions are the flags every `ferry user` subcommand shares.
type userOptions struct {
	g    *globalOptions
	json bool
}

func newUserCmd(g *globalOptions) *cobra.Command {
	o := &userOptions{g: g}
	cmd := &cobra.Command{
		Use:   "user",
		Short: "manage accounts, their keys and policy in the account store",
		Long: `Manage the accounts in ferry's account store (--database, default
sqlite:///<data-dir>/ferry.db). Changes take effect at the next login on
every server using the store; no restart or reload is needed.`,
	}
	cmd.PersistentFlags().BoolVar(&o.json, "json", false, "print JSON instead of a table (for scripts)")
	cmd.AddCommand(
		o.addCmd(), o.listCmd(), o.showCmd(), o.deleteCmd(), o.passwdCmd(),
		o.enableCmd(true), o.enableCmd(false), o.setCmd(), o.keyCmd(), o.importCmd(), o.recountCmd(),
	)
	return cmd
}

// open opens the configured store; the caller closes it.
func (o *userOptions) open(ctx context.Context) (store.Store, error) {
	u := o.g.database
	if u == "" {
		u = store.DefaultURL(o.g.dataDir)
	}
	return store.Open(ctx, u, store.Options{})
}

// checkHome refuses a home that is, or holds, the data directory or the
// SQLite database. ferry serves a home's files as the user it runs as, who
// can read everything there: such an account could download the host
// private keys and every account's password hash, and reach every default
// home ("/" or the directory above the data directory, given by mistake).
func (o *userOptions) checkHome(name, home string) error {
	if home == "" {
		return nil
	}
	protected := []string{o.g.dataDir, filepath.Join(o.g.dataDir, "home")}
	if o.g.database == "" {
		protected = append(protected, filepath.Join(o.g.dataDir, "ferry.db"))
	} else if p, ok := store.SQLitePath(o.g.database); ok {
		protected = append(protected, p)
	}
	if err := daemon.CheckHomeHolds(home, protected); err != nil {
		return fmt.Errorf("account %s: %w", name, err)
	}
	return nil
}

// warnHomePath warns when the server will refuse sessions in home, which
// the user commands accept (they may run as another user than the
// server, so the server decides): a home under a directory others can
// write was accepted and every login to it then failed.
func (o *userOptions) warnHomePath(cmd *cobra.Command, name, home string) {
	if home == "" {
		return
	}
	if err := daemon.HomePathProblem(home, o.g.dataDir); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: account %s: the server will refuse its sessions: %v\n", name, err)
	}
}

// withStore runs fn with an open store.
func (o *userOptions) withStore(cmd *cobra.Command, fn func(ctx context.Context, s store.Store) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}

func (o *userOptions) printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// accountJSON is an account as `--json` prints it: the password hash is
// never printed, only whether there is one.
type accountJSON struct {
	*store.Account
	HasPassword bool                   `json:"has_password"`
	Keys        []*store.AuthorizedKey `json:"keys"`
}

func toJSON(a *store.Account, keys []*store.AuthorizedKey) accountJSON {
	if keys == nil {
		keys = []*store.AuthorizedKey{}
	}
	c := *a
	if c.AllowFrom == nil {
		c.AllowFrom = []netip.Prefix{} // [] rather than null for scripts
	}
	return accountJSON{Account: &c, HasPassword: a.HasPassword(), Keys: keys}
}

// accountFlags are the settings `user add` and `user set` share. Only
// flags given on the command line are applied, so `set` changes just those.
type accountFlags struct {
	home           string
	passwordStdin  bool
	readOnly       bool
	uploadOnly     bool
	noDelete       bool
	noOverwrite    bool
	symlinks       bool
	shell          bool
	forwarding     bool
	quotaBytes     string
	quotaFiles     string
	maxSessions    int
	maxConnections int
	allowFrom      []string
	expires        string
	disabled       bool
	authMethods    string
	uid, gid       string
	forceCommand   string
	authorizedKeys []string
	authorizedFile string
	clearPassword  bool
	clearAllowFrom bool
	passwordHash   string // of the --password-stdin password, read by readPassword
	forSet         bool
	flags          *pflag.FlagSet
}

func (f *accountFlags) register(fs *pflag.FlagSet, forSet bool) {
	f.flags, f.forSet = fs, forSet
	fs.StringVar(&f.home, "home", "", "absolute home directory (default <data-dir>/home/NAME)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fs.BoolVar(&f.readOnly, "readonly", false, "no writes at all")
	fs.BoolVar(&f.uploadOnly, "upload-only", false, "writes only: no downloads or listings of file contents")
	fs.BoolVar(&f.noDelete, "no-delete", false, "no removing or renaming over files")
	fs.BoolVar(&f.noOverwrite, "no-overwrite", false, "no overwriting existing files")
	fs.BoolVar(&f.symlinks, "symlinks", false, "allow creating symbolic and hard links")
	fs.BoolVar(&f.shell, "shell", false, "allow shell and exec sessions")
	fs.BoolVar(&f.forwarding, "forwarding", false, "allow TCP port forwarding")
	fs.StringVar(&f.quotaBytes, "quota-bytes", "", "disk quota, e.g. 500M, 10G (binary units; 0 = unlimited)")
	fs.StringVar(&f.quotaFiles, "quota-files", "", "file count quota (0 = unlimited)")
	fs.IntVar(&f.maxSessions, "max-sessions", 0, "concurrent sessions across the account's connections (0 = no per-account limit; each connection still has max_sessions)")
	fs.IntVar(&f.maxConnections, "max-connections", 0, "concurrent authenticated connections on each server (0 = the server's max_connections_per_account, unlimited by default)")
	fs.StringArrayVar(&f.allowFrom, "allow-from", nil, "allow logins only from this CIDR or address (repeatable)")
	fs.StringVar(&f.expires, "expires", "", `expiry: YYYY-MM-DD (00:00 UTC that day), RFC 3339 time, or "never"`)
	fs.BoolVar(&f.disabled, "disabled", false, "account cannot log in")
	fs.StringVar(&f.authMethods, "auth-methods", "", `required methods, sshd AuthenticationMethods syntax ("publickey,password publickey"); "" = server default`)
	fs.StringVar(&f.uid, "uid", "", `system uid for shell sessions ("" = none)`)
	fs.StringVar(&f.gid, "gid", "", `system gid for shell sessions ("" = none)`)
	fs.StringVar(&f.forceCommand, "force-command", "", "command run instead of any the client asks for")
	if forSet {
		fs.BoolVar(&f.clearPassword, "clear-password", false, "remove the password (public key logins only)")
		fs.BoolVar(&f.clearAllowFrom, "clear-allow-from", false, "allow logins from anywhere")
	} else {
		fs.StringArrayVar(&f.authorizedKeys, "authorized-key", nil, "authorized_keys line (repeatable)")
		fs.StringVar(&f.authorizedFile, "authorized-keys-file", "", "file of authorized_keys lines")
	}
}

// readPassword reads and hashes the --password-stdin password, before the
// store is opened: apply runs while `user set` holds the account locked.
func (f *accountFlags) readPassword(in io.Reader) error {
	if f.clearPassword && f.passwordStdin {
		return errors.New("--clear-password and --password-stdin exclude each other")
	}
	if !f.passwordStdin {
		return nil
	}
	h, err := readPasswordHash(in)
	if err != nil {
		return err
	}
	f.passwordHash = h
	return nil
}

// apply sets the given flags on a (with the password readPassword read).
func (f *accountFlags) apply(a *store.Account) error {
	ch := f.flags.Changed
	if ch("home") {
		if f.home != "" && !filepath.IsAbs(f.home) {
			return fmt.Errorf("--home %q: must be an absolute path", f.home)
		}
		a.Home = filepath.Clean(f.home)
		if f.home == "" {
			a.Home = ""
		}
	}
	p := &a.Permissions
	for name, dst := range map[string]*bool{"readonly": &p.ReadOnly, "upload-only": &p.UploadOnly, "no-delete": &p.NoDelete,
		"no-overwrite": &p.NoOverwrite, "symlinks": &p.AllowSymlinks, "shell": &p.AllowShell, "forwarding": &p.AllowForwarding} {
		if ch(name) {
			v, _ := f.flags.GetBool(name)
			*dst = v
		}
	}
	if p.ReadOnly && p.UploadOnly {
		return errors.New("--readonly and --upload-only exclude each other")
	}
	if ch("quota-bytes") {
		n, err := parseSize(f.quotaBytes)
		if err != nil {
			return fmt.Errorf("--quota-bytes %q: %v", f.quotaBytes, err)
		}
		a.QuotaBytes = n
	}
	if ch("quota-files") {
		n, err := parseSize(f.quotaFiles)
		if err != nil {
			return fmt.Errorf("--quota-files %q: %v", f.quotaFiles, err)
		}
		a.QuotaFiles = n
	}
	if ch("max-sessions") {
		if f.maxSessions < 0 {
			return fmt.Errorf("--max-sessions %d: must be 0 or more", f.maxSessions)
		}
		a.MaxSessions = f.maxSessions
	}
	if ch("max-connections") {
		if f.maxConnections < 0 {
			return fmt.Errorf("--max-connections %d: must be 0 or more", f.maxConnections)
		}
		a.MaxConnections = f.maxConnections
	}
	if f.clearAllowFrom {
		a.AllowFrom = nil
	}
	if ch("allow-from") {
		a.AllowFrom = nil
		for _, s := range f.allowFrom {
			pfx, err := store.ParseAllowFrom(s)
			if err != nil {
				return fmt.Errorf("--allow-from %q: not a CIDR or IP address", s)
			}
			a.AllowFrom = append(a.AllowFrom, pfx)
		}
	}
	if ch("expires") {
		t, err := parseExpiry(f.expires)
		if err != nil {
			return fmt.Errorf("--expires %q: %v", f.expires, err)
		}
		a.ExpiresAt = t
	}
	if ch("disabled") {
		a.Enabled = !f.disabled
	}
	if ch("auth-methods") {
		if err := store.ValidateAuthMethods(f.authMethods); err != nil {
			return fmt.Errorf("--auth-methods: %v", err)
		}
		a.AuthMethods = strings.Join(strings.Fields(f.authMethods), " ")
	}
	for name, dst := range map[string]**uint32{"uid": &a.UID, "gid": &a.GID} {
		if !ch(name) {
			continue
		}
		v, _ := f.flags.GetString(name)
		if v == "" {
			*dst = nil
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("--%s %q: not a number", name, v)
		}
		id := uint32(n)
		*dst = &id
	}
	if ch("force-command") {
		a.ForceCommand = f.forceCommand
	}
	if f.clearPassword {
		a.PasswordHash = ""
	}
	if f.passwordStdin {
		a.PasswordHash = f.passwordHash
	}
	return nil
}

// keyLines collects --authorized-key and --authorized-keys-file.
func (f *accountFlags) keyLines() ([]string, error) {
	var lines []string
	for _, k := range f.authorizedKeys {
		more, err := store.SplitAuthorizedKeysText(k)
		if err != nil {
			return nil, fmt.Errorf("--authorized-key: %v", err)
		}
		lines = append(lines, more...)
	}
	if f.authorizedFile != "" {
		more, err := store.ReadAuthorizedKeysFile(f.authorizedFile)
		if err != nil {
			return nil, fmt.Errorf("--authorized-keys-file: %v", err)
		}
		lines = append(lines, more...)
	}
	return lines, nil
}

// maxPasswordInput bounds what is read from standard input for a password.
const maxPasswordInput = password.MaxPasswordLength + 2

// readPasswordHash reads one line from in and hashes it.
func readPasswordHash(in io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(in, maxPasswordInput), maxPasswordInput).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password from standard input: %v", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("empty password on standard input")
	}
	if len(pw) > password.MaxPasswordLength {
		return "", fmt.Errorf("password longer than %d bytes", password.MaxPasswordLength)
	}
	return password.Hash(pw)
}

// promptPasswordHash asks for a new password twice on the controlling
// terminal without echo and hashes it.
func promptPasswordHash(cmd *cobra.Command) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: give the password with --password-stdin (e.g. printf '%s\\n' \"$PW\" | ferry user passwd NAME --password-stdin)")
	}
	read := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := read("New password: ")
	if err != nil {
		return "", err
	}
	again, err := read("Retype new password: ")
	if err != nil {
		return "", err
	}
	switch {
	case pw != again:
		return "", errors.New("passwords do not match")
	case pw == "":
		return "", errors.New("empty password")
	case len(pw) > password.MaxPasswordLength:
		return "", fmt.Errorf("password longer than %d bytes", password.MaxPasswordLength)
	}
	return password.Hash(pw)
}

// parseSize parses a byte count with an optional binary suffix
// (K, M, G, T, P; "KB"/"KiB" spellings too).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(t), "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGTP", t[n-1]); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a number with an optional K, M, G, T or P suffix")
	}
	if n > store.MaxQuota>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}

func parseExpiry(s string) (time.Time, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "never", "none":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errors.New(`want YYYY-MM-DD, an RFC 3339 time, or "never"`)
}

func (o *userOptions) addCmd() *cobra.Command {
	var f accountFlags
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "create an account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a := &store.Account{Name: args[0], Enabled: true}
			if err := store.ValidateName(a.Name); err != nil {
				return err
			}
			if err := f.readPassword(cmd.InOrStdin()); err != nil {
				return err
			}
			if err := f.apply(a); err != nil {
				return err
			}
			if err := o.checkHome(a.Name, a.Home); err != nil {
				return err
			}
			o.warnHomePath(cmd, a.Name, a.Home)
			keys, err := f.keyLines()
			if err != nil {
				return err
			}
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				if err := s.CreateAccount(ctx, a, keys); err != nil {
					return err
				}
				// The home may be there already (a re-created account, a
				// directory given with --home): charge what it holds.
				if err := o.recountIfQuota(ctx, s, a); err != nil {
					return fmt.Errorf("created account %s, but %w", a.Name, err)
				}
				stored, err := s.AuthorizedKeys(ctx, a.Name)
				if err != nil {
					return err
				}
				warnUnusableKeys(cmd.ErrOrStderr(), stored, time.Now())
				if o.json {
					return o.printJSON(cmd, toJSON(a, stored))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created account %s (id %d, %d keys, password %s)\n", a.Name, a.ID, len(stored), yesNo(a.HasPassword(), "set", "none"))
				return nil
			})
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func (o *userOptions) setCmd() *cobra.Command {
	var f accountFlags
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "change an account's settings (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := 0
			cmd.LocalNonPersistentFlags().VisitAll(func(fl *pflag.Flag) {
				if fl.Changed {
					changed++
				}
			})
			if changed == 0 {
				return errors.New("nothing to change: give at least one flag (see ferry user set --help)")
			}
			if err := f.readPassword(cmd.InOrStdin()); err != nil {
				return err
			}
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				// Read, change and write in one transaction: a `user
				// disable` or `user passwd` running at the same time
				// must not be undone by writing back what was read.
				a, err := s.ModifyAccount(ctx, args[0], func(a *store.Account) error {
					if err := f.apply(a); err != nil {
						return err
					}
					if f.flags.Changed("home") {
						if err := o.checkHome(a.Name, a.Home); err != nil {
							return err
						}
						o.warnHomePath(cmd, a.Name, a.Home)
					}
					return nil
				})
				if err != nil {
					return err
				}
				// A quota given to an account that has files, or a home
				// moved, starts from what the home holds; the counters
				// are only kept while a quota is set.
				if f.flags.Changed("quota-bytes") || f.flags.Changed("quota-files") || f.flags.Changed("home") {
					if err := o.recountIfQuota(ctx, s, a); err != nil {
						return fmt.Errorf("updated account %s, but %w", a.Name, err)
					}
				}
				if o.json {
					keys, err := s.AuthorizedKeys(ctx, a.Name)
					if err != nil {
						return err
					}
					return o.printJSON(cmd, toJSON(a, keys))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "updated account %s\n", a.Name)
				return nil
			})
		},
	}
	f.register(cmd.Flags(), true)
	return cmd
}

func (o *userOptions) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				accts, err := s.ListAccounts(ctx)
				if err != nil {
					return err
				}
				keys, err := s.AllAuthorizedKeys(ctx)
				if err != nil {
					return err
				}
				out := make([]accountJSON, 0, len(accts))
				for _, a := range accts {
					out = append(out, toJSON(a, keys[a.Name]))
				}
				if o.json {
					return o.printJSON(cmd, out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tENABLED\tPASSWORD\tKEYS\tQUOTA\tUSED\tEXPIRES\tLAST LOGIN")
				for _, a := range out {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", a.Name, enabledText(a.Account), yesNo(a.HasPassword, "yes", "no"),
						len(a.Keys), quotaText(a.QuotaBytes), formatSize(a.UsedBytes), dateText(a.ExpiresAt, "never"), dateText(a.LastLoginAt, "never"))
				}
				return tw.Flush()
			})
		},
	}
}

func (o *userOptions) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "show one account with its keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				a, err := s.LookupAccount(ctx, args[0])
				if err != nil {
					return err
				}
				keys, err := s.AuthorizedKeys(ctx, a.Name)
				if err != nil {
					return err
				}
				if o.json {
					return o.printJSON(cmd, toJSON(a, keys))
				}
				w := cmd.OutOrStdout()
				tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
				p := a.Permissions
				home := a.Home
				if home == "" {
					home = a.HomeDir(o.g.dataDir) + " (default)"
				}
				rows := [][2]string{
					{"name", a.Name},
					{"id", strconv.FormatInt(a.ID, 10)},
					{"enabled", enabledText(a)},
					{"password", passwordText(a)},
					{"home", home},
					{"expires", dateText(a.ExpiresAt, "never")},
					{"auth methods", or(a.AuthMethods, "server default")},
					{"permissions", permissionsText(p)},
					{"quota", fmt.Sprintf("%s used of %s, %d files of %s", formatSize(a.UsedBytes), quotaText(a.QuotaBytes), a.UsedFiles, countText(a.QuotaFiles))},
					{"max sessions", countTextInt(a.MaxSessions, "server default")},
					{"max connections", countTextInt(a.MaxConnections, "server default")},
					{"allow from", or(strings.Join(prefixStrings(a), ", "), "anywhere")},
					{"uid/gid", idText(a.UID) + "/" + idText(a.GID)},
					{"force command", or(a.ForceCommand, "none")},
					{"created", a.CreatedAt.Format(time.RFC3339)},
					{"updated", a.UpdatedAt.Format(time.RFC3339)},
					{"last login", dateText(a.LastLoginAt, "never")},
				}
				for _, r := range rows {
					fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
				}
				fmt.Fprintf(tw, "keys:\t%d\n", len(keys))
				if err := tw.Flush(); err != nil {
					return err
				}
				return printKeys(w, keys, "  ")
			})
		},
	}
}

func (o *userOptions) deleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "delete an account and its keys (files in its home are left alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				if err := s.DeleteAccount(ctx, args[0]); err != nil {
					return err
				}
				return o.done(cmd, "deleted", args[0])
			})
		},
	}
}

// done reports a simple action.
func (o *userOptions) done(cmd *cobra.Command, what, name string) error {
	if o.json {
		return o.printJSON(cmd, map[string]string{"account": name, "result": what})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s account %s\n", what, name)
	return nil
}

func (o *userOptions) passwdCmd() *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "set an account's password (argon2id)",
		Long: `Set an account's password. On a terminal ferry asks for it twice without
echo; with --password-stdin it reads the first line of standard input (for scripts).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				// Before asking: a mistyped name should not cost the
				// administrator the new password typed twice.
				if _, err := s.LookupAccount(ctx, args[0]); err != nil {
					return err
				}
				var hash string
				var err error
				if stdin {
					hash, err = readPasswordHash(cmd.InOrStdin())
				} else {
					hash, err = promptPasswordHash(cmd)
				}
				if err != nil {
					return err
				}
				if err := s.SetPasswordHash(ctx, args[0], hash); err != nil {
					return err
				}
				return o.done(cmd, "set password of", args[0])
			})
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func (o *userOptions) enableCmd(enable bool) *cobra.Command {
	use, short, what := "disable NAME", "stop an account from logging in", "disabled"
	if enable {
		use, short, what = "enable NAME", "allow a disabled account to log in again", "enabled"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				if err := s.SetEnabled(ctx, args[0], enable); err != nil {
					return err
				}
				return o.done(cmd, what, args[0])
			})
		},
	}
}

func (o *userOptions) keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "manage an account's authorized keys"}
	var file string
	add := &cobra.Command{
		Use:   "add NAME [LINE]",
		Short: "add an authorized_keys line (or every line of --file)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var lines []string
			switch {
			case len(args) == 2 && file != "":
				return errors.New("give a key line or --file, not both")
			case len(args) == 2:
				// A pasted PuTTYgen public key spans lines.
				var err error
				if lines, err = store.SplitAuthorizedKeysText(args[1]); err != nil {
					return err
				}
				if len(lines) == 0 {
					return errors.New("no key in the line given")
				}
			case file != "":
				var err error
				if lines, err = store.ReadAuthorizedKeysFile(file); err != nil {
					return fmt.Errorf("--file: %v", err)
				}
				if len(lines) == 0 {
					return fmt.Errorf("--file %s: no keys in it", file)
				}
			default:
				return errors.New("give a key line or --file FILE")
			}
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				// Check every line, and against the stored keys, before
				// adding any, so bad input changes nothing.
				existing, err := s.AuthorizedKeys(ctx, args[0])
				if err != nil {
					return err
				}
				if _, err := s.LookupAccount(ctx, args[0]); err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, k := range existing {
					seen[k.Fingerprint] = true
				}
				for i, l := range lines {
					pk, err := store.DefaultKeyParser(l)
					if err != nil {
						return fmt.Errorf("key %d: %v", i+1, err)
					}
					if seen[pk.Fingerprint] {
						return fmt.Errorf("key %d (%s): %w", i+1, pk.Fingerprint, store.ErrExists)
					}
					seen[pk.Fingerprint] = true
				}
				var added []*store.AuthorizedKey
				for _, l := range lines {
					k, err := s.AddAuthorizedKey(ctx, args[0], l)
					if err != nil {
						return err
					}
					added = append(added, k)
				}
				warnUnusableKeys(cmd.ErrOrStderr(), added, time.Now())
				if o.json {
					return o.printJSON(cmd, added)
				}
				for _, k := range added {
					fmt.Fprintf(cmd.OutOrStdout(), "added key %d %s %s to %s\n", k.ID, k.Type, k.Fingerprint, args[0])
				}
				return nil
			})
		},
	}
	add.Flags().StringVar(&file, "file", "", "authorized_keys or public key file (.pub, PuTTYgen/RFC 4716) to add every key from")
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "list an account's authorized keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				if _, err := s.LookupAccount(ctx, args[0]); err != nil {
					return err
				}
				keys, err := s.AuthorizedKeys(ctx, args[0])
				if err != nil {
					return err
				}
				if o.json {
					if keys == nil {
						keys = []*store.AuthorizedKey{}
					}
					return o.printJSON(cmd, keys)
				}
				return printKeys(cmd.OutOrStdout(), keys, "")
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME FINGERPRINT|ID",
		Short: "remove an authorized key by SHA256 fingerprint or id",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				if err := s.DeleteAuthorizedKey(ctx, args[0], args[1]); err != nil {
					return err
				}
				if o.json {
					return o.printJSON(cmd, map[string]string{"account": args[0], "key": args[1], "result": "deleted"})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted key %s of %s\n", args[1], args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, del)
	return cmd
}

func (o *userOptions) importCmd() *cobra.Command {
	var (
		passwdFile, shadowFile, keysDir, csvFile string
		minUID                                   uint32
		skipUnsupported, skipExisting            bool
	)
	cmd := &cobra.Command{
		Use:   "import (--passwd FILE [--shadow FILE] [--authorized-keys-dir DIR] | --csv FILE)",
		Short: "create accounts from passwd/shadow files or CSV, all or nothing",
		Long: `Create accounts in one transaction: if any entry is bad, nothing is imported,
and every bad entry is listed (the first 50, and how many in all).

--passwd reads passwd(5) lines (name:x:uid:gid:gecos:home:shell); password
hashes come from --shadow (argon2id, bcrypt, SHA-crypt $5$/$6$, md5crypt $1$,
Apache's $apr1$, also behind a Dovecot {SCHEME} prefix; locked and empty ones
give no password). Keys come from
--authorized-keys-dir/NAME if given, else from HOME/.ssh/authorized_keys
when readable. The passwd home becomes the account's home. pure-ftpd's
pureftpd.passwd is read as it is (hash in the second field; its per-user
connection limit, quotas and allowed client IPs are kept, and settings
ferry lacks, such as bandwidth or refused IPs, are named in warnings).

--csv reads a header "name,password_hash,home,authorized_keys" and one
account per row; authorized_keys is a quoted field of key lines separated
by newlines; an empty home means the default. Further columns named after
user add's flags, with _ for - (quota_bytes, quota_files, readonly,
upload_only, no_delete, no_overwrite, symlinks, shell, forwarding,
max_sessions, max_connections, allow_from, expires, disabled, auth_methods,
uid, gid, force_command), set them; an empty cell keeps the default,
switches take yes/no, and allow_from lists addresses separated by spaces
or commas.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				accts    []store.NewAccount
				warnings []string
				err      error
			)
			switch {
			case (passwdFile == "") == (csvFile == ""):
				return errors.New("give exactly one of --passwd FILE or --csv FILE")
			case csvFile != "":
				if shadowFile != "" || keysDir != "" {
					return errors.New("--shadow and --authorized-keys-dir go with --passwd, not --csv")
				}
				accts, warnings, err = readCSVImport(csvFile, store.CSVImportOptions{SkipUnsupportedHashes: skipUnsupported,
					SettingColumns: csvSettingColumns, Settings: applyCSVSettings})
			default:
				accts, warnings, err = importPasswd(passwdFile, shadowFile, keysDir, store.PasswdImportOptions{MinUID: minUID, SkipUnsupportedHashes: skipUnsupported})
			}
			if err != nil {
				return err
			}
			for _, a := range accts {
				if err := o.checkHome(a.Account.Name, a.Account.Home); err != nil {
					if passwdFile != "" {
						// Typically a system account (systemd-network,
						// RHEL's nobody) whose home is "/".
						return fmt.Errorf("nothing imported: %w (skip system accounts with --min-uid, or leave the entry out of the file)", err)
					}
					return fmt.Errorf("nothing imported: %w", err)
				}
			}
			refusedHomes := 0
			for _, a := range accts {
				if a.Account.Home == "" {
					continue
				}
				if err := daemon.HomePathProblem(a.Account.Home, o.g.dataDir); err != nil {
					if refusedHomes++; refusedHomes <= 20 {
						warnings = append(warnings, fmt.Sprintf("account %s: the server will refuse its sessions: %v", a.Account.Name, err))
					}
				}
			}
			if refusedHomes > 20 {
				warnings = append(warnings, fmt.Sprintf("%d accounts in all have homes the server will refuse", refusedHomes))
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				skipped := 0
				if skipExisting {
					// A migration runs the import again for the
					// customers the old server gained meanwhile.
					existing, err := s.ListAccounts(ctx)
					if err != nil {
						return err
					}
					taken := make(map[string]bool, len(existing))
					for _, a := range existing {
						taken[a.Name] = true
					}
					fresh := accts[:0]
					for _, a := range accts {
						if taken[a.Account.Name] {
							skipped++
							continue
						}
						fresh = append(fresh, a)
					}
					accts = fresh
				}
				if err := s.ImportAccounts(ctx, accts); err != nil {
					return fmt.Errorf("import failed, nothing imported: %w", err)
				}
				for _, a := range accts {
					if err := o.recountIfQuota(ctx, s, a.Account); err != nil {
						return fmt.Errorf("imported every account, but %w", err)
					}
				}
				nkeys, npw := 0, 0
				for _, a := range accts {
					nkeys += len(a.Keys)
					if a.Account.HasPassword() {
						npw++
					}
				}
				if o.json {
					names := make([]string, len(accts))
					for i, a := range accts {
						names[i] = a.Account.Name
					}
					return o.printJSON(cmd, map[string]any{"imported": names, "accounts": len(accts), "keys": nkeys, "passwords": npw,
						"warnings": len(warnings), "skipped_existing": skipped})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %d accounts (%d with a password, %d keys, %d warnings)\n", len(accts), npw, nkeys, len(warnings))
				if skipExisting {
					fmt.Fprintf(cmd.OutOrStdout(), "skipped %d accounts that already existed (unchanged)\n", skipped)
				}
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&passwdFile, "passwd", "", "passwd(5)-style file, or pure-ftpd's pureftpd.passwd")
	fs.StringVar(&shadowFile, "shadow", "", "shadow(5)-style file with the password hashes")
	fs.StringVar(&keysDir, "authorized-keys-dir", "", "directory of authorized_keys files named after the accounts")
	fs.Uint32Var(&minUID, "min-uid", 0, "skip passwd entries with a lower uid (e.g. 1000 for system accounts)")
	fs.BoolVar(&skipUnsupported, "skip-unsupported-hashes", false, "import accounts whose hash ferry cannot verify (yescrypt, DES) without a password, with a warning each")
	fs.StringVar(&csvFile, "csv", "", "CSV file: name,password_hash,home,authorized_keys[,setting columns]")
	fs.BoolVar(&skipExisting, "skip-existing", false, "leave accounts that already exist as they are and import the others (to import a newer export again)")
	return cmd
}

// recountIfQuota sets the usage counters of an account with a quota to
// what its home holds (daemon.CountHome).
func (o *userOptions) recountIfQuota(ctx context.Context, s store.Store, a *store.Account) error {
	if a.QuotaBytes == 0 && a.QuotaFiles == 0 {
		return nil
	}
	u, err := daemon.RecountHome(ctx, s, a.Name, a.HomeDir(o.g.dataDir))
	if err != nil {
		return fmt.Errorf("its usage was not recounted (retry with ferry user recount %s): %w", a.Name, err)
	}
	a.UsedBytes, a.UsedFiles = u.Bytes, u.Files
	return nil
}

func (o *userOptions) recountCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "recount (NAME | --all)",
		Short: "set an account's quota usage to what its home holds",
		Long: `Count the regular files in an account's home (not following symbolic links;
a file with several hard links once) and store their total size and number
as the account's usage, which its quota is checked against. Run it after
changing a home outside ferry while the server runs; the server itself
recounts each account with a quota at its first session after starting.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) || len(args) > 1 {
				return errors.New("give exactly one of NAME or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withStore(cmd, func(ctx context.Context, s store.Store) error {
				var accts []*store.Account
				if all {
					var err error
					if accts, err = s.ListAccounts(ctx); err != nil {
						return err
					}
				} else {
					a, err := s.LookupAccount(ctx, args[0])
					if err != nil {
						return err
					}
					accts = []*store.Account{a}
				}
				type result struct {
					Account   string `json:"account"`
					UsedBytes int64  `json:"used_bytes"`
					UsedFiles int64  `json:"used_files"`
				}
				results := []result{}
				// One home that cannot be counted (a file where the
				// directory should be, a tree past MaxRecountEntries, an
				// imported home ferry's user may not read) must not stop
				// --all before the thousands of homes after it: each
				// failure is reported, the rest recounted, and the exit
				// status tells that some failed.
				failed := 0
				for _, a := range accts {
					u, err := daemon.RecountHome(ctx, s, a.Name, a.HomeDir(o.g.dataDir))
					if err != nil {
						if !all || ctx.Err() != nil {
							return fmt.Errorf("account %s: %w", a.Name, err)
						}
						failed++
						fmt.Fprintf(cmd.ErrOrStderr(), "error: account %s: %v\n", a.Name, err)
						continue
					}
					results = append(results, result{a.Name, u.Bytes, u.Files})
				}
				if o.json {
					if err := o.printJSON(cmd, results); err != nil {
						return err
					}
				} else {
					for _, r := range results {
						fmt.Fprintf(cmd.OutOrStdout(), "recounted account %s: %s in %d files\n", r.Account, formatSize(r.UsedBytes), r.UsedFiles)
					}
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d accounts not recounted (see the errors above); their usage is unchanged", failed, len(accts))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "recount every account")
	return cmd
}

// csvSettingColumns are the account settings a CSV import may carry
// besides name, password_hash, home and authorized_keys: `user add`'s
// flags, with "_" for "-", applied as the flags would be. allow_from takes
// addresses separated by spaces or commas; the switches take true/false,
// yes/no, 1/0 or x; an empty cell leaves the default.
var csvSettingColumns = []string{"readonly", "upload_only", "no_delete", "no_overwrite", "symlinks", "shell",
	"forwarding", "quota_bytes", "quota_files", "max_sessions", "max_connections", "allow_from", "expires",
	"disabled", "auth_methods", "uid", "gid", "force_command"}

// applyCSVSettings sets a CSV row's setting columns on a through the
// flags of `user add`, so that a column means exactly what its flag does.
func applyCSVSettings(a *store.Account, values map[string]string) error {
	var f accountFlags
	fs := pflag.NewFlagSet("csv", pflag.ContinueOnError)
	f.register(fs, false)
	for _, col := range csvSettingColumns {
		v, ok := values[col]
		if !ok {
			continue
		}
		name := strings.ReplaceAll(col, "_", "-")
		if fl := fs.Lookup(name); fl != nil && fl.Value.Type() == "bool" {
			switch strings.ToLower(v) {
			case "yes", "y", "x", "true", "t", "1":
				v = "true"
			case "no", "n", "false", "f", "0":
				v = "false"
			default:
				return fmt.Errorf("column %s %q: want yes or no", col, v)
			}
		}
		vals := []string{v}
		if col == "allow_from" {
			vals = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		}
		for _, v := range vals {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("column %s %q: %v", col, v, err)
			}
		}
	}
	if err := f.apply(a); err != nil {
		// apply names flags; the file has columns.
		msg := err.Error()
		for _, col := range csvSettingColumns {
			msg = strings.ReplaceAll(msg, "--"+strings.ReplaceAll(col, "_", "-"), "column "+col)
		}
		return errors.New(msg)
	}
	return nil
}

func readCSVImport(name string, opts store.CSVImportOptions) ([]store.NewAccount, []string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	accts, warnings, err := store.ParseCSVImport(f, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return accts, warnings, nil
}

func importPasswd(passwdFile, shadowFile, keysDir string, opts store.PasswdImportOptions) ([]store.NewAccount, []string, error) {
	pf, err := os.Open(passwdFile)
	if err != nil {
		return nil, nil, err
	}
	defer pf.Close()
	var shadow io.Reader
	if shadowFile != "" {
		sf, err := os.Open(shadowFile)
		if err != nil {
			return nil, nil, err
		}
		defer sf.Close()
		shadow = sf
	}
	accts, warnings, err := store.ParsePasswdImport(pf, shadow, opts)
	if err != nil {
		return nil, nil, err
	}
	for i := range accts {
		a := accts[i].Account
		var keyFile string
		if keysDir != "" {
			keyFile = filepath.Join(keysDir, a.Name)
		} else if a.Home != "" {
			keyFile = filepath.Join(a.Home, ".ssh", "authorized_keys")
		}
		if keyFile == "" {
			continue
		}
		lines, err := store.ReadAuthorizedKeysFile(keyFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("account %q: %v", a.Name, err)
		}
		accts[i].Keys = lines
	}
	return accts, warnings, nil
}

func printKeys(w io.Writer, keys []*store.AuthorizedKey, indent string) error {
	if len(keys) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%sID\tTYPE\tFINGERPRINT\tCOMMENT\tADDED\tOPTIONS\n", indent)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s%d\t%s\t%s\t%s\t%s\t%s\n", indent, k.ID, k.Type, k.Fingerprint, printable(k.Comment), k.CreatedAt.Format(time.DateOnly), printable(keyOptions(k.Line)))
	}
	return tw.Flush()
}

// warnUnusableKeys warns about stored keys that the default configuration
// refuses at every login, which sshd would take just as silently: a
// customer's old 1024-bit RSA or DSA key, or a line whose expiry-time has
// passed. They are kept (the server's configuration may allow them).
func warnUnusableKeys(w io.Writer, stored []*store.AuthorizedKey, now time.Time) {
	for _, k := range stored {
		ak, err := keys.ParseAuthorizedKey([]byte(k.Line))
		if err != nil {
			continue
		}
		var why string
		r, isRSA := ak.Key.(*keys.RSAPublicKey)
		switch {
		case isRSA && r.Bits() < auth.DefaultMinRSABits:
			why = fmt.Sprintf("%d-bit RSA keys are refused unless required_rsa_size allows them (default %d)", r.Bits(), auth.DefaultMinRSABits)
		case ak.Key.Type() == keys.KeyDSA:
			why = "DSA keys are refused unless pubkey_accepted_algorithms lists ssh-dss"
		case ak.Options.Expired(now):
			why = "its expiry-time has passed"
		default:
			continue
		}
		fmt.Fprintf(w, "warning: key %d %s: %s\n", k.ID, k.Fingerprint, why)
	}
}

// keyOptions is the options field of an authorized_keys line, so that a
// listing tells a cert-authority line (which trusts every certificate its
// CA signs) and a key limited by from= or command= from a plain key.
func keyOptions(line string) string {
	ak, err := keys.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return ak.Options.String()
}

// printable escapes the control characters (C0, DEL, C1) and invalid UTF-8
// of s as \xNN, and format characters (bidirectional overrides, zero
// width) as \uNNNN. A key's comment is whatever the customer who
// added it wrote, and "\x1b]0;...\a" or "\x1b[2J" in it would otherwise
// act on the administrator's terminal when the keys are listed; a tab would
// break the table's columns.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func enabledText(a *store.Account) string {
	switch {
	case !a.Enabled:
		return "no"
	case a.Expired(time.Now()):
		return "expired"
	}
	return "yes"
}

func passwordText(a *store.Account) string {
	if !a.HasPassword() {
		return "none"
	}
	if password.NeedsRehash(a.PasswordHash) {
		return "set (imported format, upgraded to argon2id at next login)"
	}
	return "set (argon2id)"
}

func permissionsText(p store.Permissions) string {
	var s []string
	for _, f := range []struct {
		on   bool
		name string
	}{{p.ReadOnly, "read-only"}, {p.UploadOnly, "upload-only"}, {p.NoDelete, "no-delete"}, {p.NoOverwrite, "no-overwrite"},
		{p.AllowSymlinks, "symlinks"}, {p.AllowShell, "shell"}, {p.AllowForwarding, "forwarding"}} {
		if f.on {
			s = append(s, f.name)
		}
	}
	return or(strings.Join(s, ", "), "default (read-write file transfer only)")
}

func prefixStrings(a *store.Account) []string {
	s := make([]string, len(a.AllowFrom))
	for i, p := range a.AllowFrom {
		s[i] = p.String()
	}
	return s
}

func idText(v *uint32) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(uint64(*v), 10)
}

func dateText(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

func quotaText(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return formatSize(n)
}

func countText(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func countTextInt(n int, zero string) string {
	if n == 0 {
		return zero
	}
	return strconv.Itoa(n)
}

// formatSize prints a byte count in binary units, exactly when it is a
// whole number of them (what parseSize accepts back).
func formatSize(n int64) string {
	for i, unit := range []string{"P", "T", "G", "M", "K"} {
		shift := 10 * (5 - i)
		if n >= 1<<shift && n%(1<<shift) == 0 {
			return strconv.FormatInt(n>>shift, 10) + unit
		}
	}
	return strconv.FormatInt(n, 10)
}
