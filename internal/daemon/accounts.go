package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/sftp"
	"github.com/ferry-sftp/ferry/store"
)

// extAccount is the Permissions.Extensions key carrying the account name
// from authentication to the session handlers, which read the account
// afresh (a change made in the database applies to the next session).
const extAccount = "ferry-account"

// accountAuthenticator implements auth.Authenticator over the account
// store. Every login reads the database: no cache shared between
// connections, so a control panel's change applies to the very next login
// (one connection's repeated reads of its account go through memo).
type accountAuthenticator struct {
	st   store.Store
	memo *accountMemo
	pv   store.PasswordVerifier
	now  func() time.Time
	log  *slog.Logger
	// onAttempt, if set, observes each decision (metrics).
	onAttempt func(method string, ok bool)
	// trustedCAs are trusted_user_ca_keys: their certificates log in to
	// any account whose name they list, without an authorized_keys line
	// (sshd TrustedUserCAKeys).
	trustedCAs []keys.PublicKey
	// revoked are revoked_keys (sshd RevokedKeys): refused as keys, as
	// the keys of certificates and as the CAs that signed them.
	revoked revokedKeys
}

func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// lookup reads the account of meta's user, once per connection within
// accountMemoTTL.
func (a *accountAuthenticator) lookup(ctx context.Context, meta auth.ConnMetadata) (*store.Account, error) {
	if a.memo == nil {
		return a.st.LookupAccount(ctx, meta.User())
	}
	return a.memo.lookup(ctx, a.st, meta.SessionID(), meta.User(), a.now())
}

// login is lookup with the account's authorized keys (one read for both:
// a client that queries a key before signing with it, and tries several,
// costs no more reads).
func (a *accountAuthenticator) login(ctx context.Context, meta auth.ConnMetadata) (*store.Account, []*store.AuthorizedKey, error) {
	if a.memo == nil {
		return a.st.LookupLogin(ctx, meta.User())
	}
	return a.memo.login(ctx, a.st, meta.SessionID(), meta.User(), a.now())
}

func (a *accountAuthenticator) observe(method string, ok bool) {
	if a.onAttempt != nil {
		a.onAttempt(method, ok)
	}
}

// observeKey counts a public key decision: a refused key whether queried
// or signed, an accepted one only when signed, since a client queries
// before signing and a login would otherwise count twice.
func (a *accountAuthenticator) observeKey(ctx context.Context, ok bool) {
	if ok && auth.IsKeyQuery(ctx) {
		return
	}
	a.observe("publickey", ok)
}

// errDeniedUnknownUser refuses a user with no account. The auth layer
// and the client see plain ErrDenied; the server notes ErrUnknownUser in
// ConnInfo.UnknownUser for the invaliduser penalty.
var errDeniedUnknownUser = fmt.Errorf("%w: %w", auth.ErrDenied, server.ErrUnknownUser)

// errDeniedUnavailable refuses a login the account store could not
// decide. The client sees plain ErrDenied; the server notes
// ErrAuthUnavailable so that the authfail penalty does not fall on the
// client: a PostgreSQL restart, or a fleet that ran it out of connections,
// penalised every address that tried to log in meanwhile: four refused
// connections (a client retrying) left the address refused after the
// database came back, for up to the penalty's max (10 minutes).
var errDeniedUnavailable = fmt.Errorf("%w: %w", auth.ErrDenied, server.ErrAuthUnavailable)

// denied is the refusal for a failed lookup or check: err is the
// store's answer, and an ErrNotFound there means the user is unknown.
func denied(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errDeniedUnknownUser
	}
	if storeFailure(err) {
		return errDeniedUnavailable
	}
	return auth.ErrDenied
}

// storeFailure reports whether err is the account store's failure to
// answer. Unknown users, refused names and clients that left are not.
func storeFailure(err error) bool {
	return err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) &&
		!errors.Is(err, context.Canceled)
}

// storeFailed logs a lookup the account store could not answer (the
// database down, locked, or slower than login_grace_time): the login is
// refused like any failed one, and "authentication failed" alone told
// the admin nothing of the database.
func (a *accountAuthenticator) storeFailed(meta auth.ConnMetadata, err error) {
	if a.log == nil || !storeFailure(err) {
		return
	}
	a.log.Warn("account store failed; login refused", "user", meta.User(),
		"remote", meta.RemoteAddr().String(), "error", err)
}

// Password checks the password; store.PasswordLogin costs one argon2id
// run whether or not the account exists (CVE-2018-15473 class).
func (a *accountAuthenticator) Password(ctx context.Context, meta auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	// PasswordLogin's error does not say whether the account exists
	// (only that the login failed); the lookup it makes does.
	st := &lookupNotingStore{Store: a.st}
	acct, err := store.PasswordLogin(ctx, st, a.pv, meta.User(), string(pw), a.now())
	method := "password"
	if auth.IsPasswordPrompt(ctx) {
		// The method the client used, which the log names too.
		method = "keyboard-interactive"
	}
	if err != nil || !acct.AllowsSource(remoteIP(meta.RemoteAddr())) {
		a.observe(method, false)
		a.storeFailed(meta, st.lookupErr)
		return nil, denied(st.lookupErr)
	}
	a.observe(method, true)
	// The last login is recorded when authentication completes
	// (Daemon.recordLogin): this may be the first of several methods.
	return accountPermissions(acct, nil), nil
}

// PublicKey allows key if it is one of the account's authorized keys and
// its options (from=, expiry-time=) admit this connection. Unknown users
// run the same query and get the same answer as a key mismatch.
func (a *accountAuthenticator) PublicKey(ctx context.Context, meta auth.ConnMetadata, key keys.PublicKey) (*auth.Permissions, error) {
	acct, lines, err := a.login(ctx, meta)
	if err != nil || !acct.CanLogin(a.now()) || !acct.AllowsSource(remoteIP(meta.RemoteAddr())) {
		a.observeKey(ctx, false)
		a.storeFailed(meta, err)
		return nil, denied(err)
	}
	if a.revoked.revokes(key) {
		// As sshd: a revoked key is refused whatever authorizes it, and
		// the refusal is worth the administrator's attention.
		a.log.Info("revoked key refused", "user", meta.User(), "remote", meta.RemoteAddr().String(), "key", keys.FingerprintSHA256(key))
		a.observeKey(ctx, false)
		return nil, auth.ErrDenied
	}
	cert, isCert := key.(*keys.Certificate)
	if isCert && a.isTrustedCA(cert.SignatureKey) && cert.ListsUserPrincipal([]string{meta.User()}) {
		// sshd tries TrustedUserCAKeys before authorized_keys; the auth
		// layer has checked the certificate's validity and principal.
		a.observeKey(ctx, true)
		return accountPermissions(acct, &keys.KeyOptions{}), nil
	}
	for _, l := range lines {
		ak, err := keys.ParseAuthorizedKey([]byte(l.Line))
		if err != nil {
			a.unreadableKey(meta, key, l, err)
			continue
		}
		if isCert {
			// A certificate authorizes through a cert-authority line for
			// its CA whose principals it satisfies (the auth layer already
			// checked validity, and checks the principals again against
			// Permissions.CertPrincipals). Lines are tried in turn as
			// sshd does: one whose principals= the certificate misses
			// does not hide a later line for the same CA.
			if !ak.Options.CertAuthority || !keys.Equal(ak.Key, cert.SignatureKey) ||
				!certHasLinePrincipal(cert, &ak.Options, meta.User()) {
				continue
			}
		} else if ak.Options.CertAuthority || !keys.Equal(ak.Key, key) {
			continue
		}
		if !keyOptionsAdmit(&ak.Options, meta, a.now()) {
			continue
		}
		a.observeKey(ctx, true)
		return accountPermissions(acct, &ak.Options), nil
	}
	a.observeKey(ctx, false)
	return nil, auth.ErrDenied
}

// unreadableKey logs a stored line this ferry cannot parse when it is
// the line of the key offered (or of its certificate's CA). Such lines
// come from older versions, which stored what is refused now (command=""
// until 36b62d4); the login fails as sshd fails a bad authorized_keys
// line, and without the log line the admin of a customer locked out
// after an upgrade saw only "authentication failed". Other keys' lines
// are not logged: they did not decide this login.
func (a *accountAuthenticator) unreadableKey(meta auth.ConnMetadata, offered keys.PublicKey, l *store.AuthorizedKey, err error) {
	if a.log == nil {
		return
	}
	mine := l.Fingerprint == keys.FingerprintSHA256(offered)
	if cert, ok := offered.(*keys.Certificate); ok {
		mine = mine || l.Fingerprint == keys.FingerprintSHA256(cert.SignatureKey) || l.Fingerprint == keys.FingerprintSHA256(cert.Key)
	}
	if !mine {
		return
	}
	a.log.Warn("authorized key unreadable; ignored", "user", meta.User(), "remote", meta.RemoteAddr().String(),
		"key_id", l.ID, "key", l.Fingerprint, "error", err)
}

func (a *accountAuthenticator) isTrustedCA(ca keys.PublicKey) bool {
	for _, k := range a.trustedCAs {
		if keys.Equal(k, ca) {
			return true
		}
	}
	return false
}

// certHasLinePrincipal is sshd's principal rule for a cert-authority line
// (auth2-pubkey.c auth_check_authkey_line): with principals= the
// certificate must list one of them, and the login name need not be among
// its principals; without it, the certificate must list the login name.
func certHasLinePrincipal(cert *keys.Certificate, o *keys.KeyOptions, user string) bool {
	if o.Principals != nil {
		return cert.ListsUserPrincipal(o.Principals)
	}
	return cert.ListsUserPrincipal([]string{user})
}

// IsUserCA trusts a CA named by one of the account's cert-authority lines
// (sshd's authorized_keys cert-authority).
func (a *accountAuthenticator) IsUserCA(ctx context.Context, meta auth.ConnMetadata, ca keys.PublicKey) bool {
	_, lines, err := a.login(ctx, meta)
	if err != nil {
		return false
	}
	for _, l := range lines {
		ak, err := keys.ParseAuthorizedKey([]byte(l.Line))
		if err == nil && ak.Options.CertAuthority && keys.Equal(ak.Key, ca) {
			return true
		}
	}
	return false
}

// KeyboardInteractive asks for the password in one prompt, for clients
// (PuTTY, WinSCP) configured for keyboard-interactive only.
func (a *accountAuthenticator) KeyboardInteractive(ctx context.Context, meta auth.ConnMetadata, ch auth.Challenger) (*auth.Permissions, error) {
	return auth.PasswordChallenge(ctx, meta, ch, a.Password)
}

// AuthenticationMethods returns an account's own method lists. Accounts
// without one, and unknown users, get the server's lists, so the FAILURE
// replies of unknown users look like those of most real ones.
func (a *accountAuthenticator) AuthenticationMethods(ctx context.Context, meta auth.ConnMetadata) [][]string {
	acct, err := a.lookup(ctx, meta)
	if err != nil {
		return nil
	}
	return acct.AuthMethodLists()
}

// lookupNotingStore keeps the error of the one LookupAccount that
// store.PasswordLogin makes, so Password can tell an unknown user from a
// wrong password after the fact without another query (both took the
// same path and the same argon2id run).
type lookupNotingStore struct {
	store.Store
	lookupErr error
}

func (s *lookupNotingStore) LookupAccount(ctx context.Context, name string) (*store.Account, error) {
	acct, err := s.Store.LookupAccount(ctx, name)
	s.lookupErr = err
	return acct, err
}

func keyOptionsAdmit(o *keys.KeyOptions, meta auth.ConnMetadata, now time.Time) bool {
	if o.Expired(now) {
		return false
	}
	if len(o.From) > 0 {
		ip := remoteIP(meta.RemoteAddr())
		if !ip.IsValid() || !keys.MatchFrom(o.From, net.IP(ip.AsSlice()), "") {
			return false
		}
	}
	return true
}

// accountPermissions combines the account's switches with the key's
// options: each restriction from either side applies, and the account's
// forced command replaces the key's.
func accountPermissions(acct *store.Account, o *keys.KeyOptions) *auth.Permissions {
	p := &auth.Permissions{
		ForceCommand:      acct.ForceCommand,
		NoPTY:             !acct.Permissions.AllowShell,
		NoPortForwarding:  !acct.Permissions.AllowForwarding,
		NoAgentForwarding: true,
		NoX11Forwarding:   true,
		NoUserRC:          true,
		Extensions:        map[string]string{extAccount: acct.Name},
	}
	if !acct.ExpiresAt.IsZero() {
		p.ExpiresAt = acct.ExpiresAt
	}
	if o == nil {
		return p
	}
	// The administrator's forced command wins over the key's command=, as
	// sshd's ForceCommand does (session.c): customers who add their own
	// keys must not escape it.
	if o.Command != "" && p.ForceCommand == "" {
		p.ForceCommand = o.Command
	}
	p.NoPTY = p.NoPTY || !o.PTYAllowed()
	p.NoPortForwarding = p.NoPortForwarding || !o.PortForwardingAllowed()
	p.CertPrincipals = o.Principals
	p.PermitOpen = o.PermitOpen
	p.PermitListen = o.PermitListen
	p.NoTouchRequired = o.NoTouchRequired
	p.VerifyRequired = o.VerifyRequired
	if !o.ExpiryTime.IsZero() && (p.ExpiresAt.IsZero() || o.ExpiryTime.Before(p.ExpiresAt)) {
		p.ExpiresAt = o.ExpiryTime
	}
	return p
}

// storeQuota implements sftp.Quota over the store's atomic usage counters.
type storeQuota struct {
	st      store.Store
	account string
	// timeout bounds each change of the counters (0: none).
	timeout time.Duration
	// releaseFailed hears of a Release the store did not record.
	releaseFailed func(bytes, files int64, err error)
}

// quotaStoreTimeout bounds one charge or release. A charge waits under
// the account's QuotaLock, so a database that stalls (a table lock held
// in psql) held every write and removal of the account, in all its
// sessions, for as long as the stall lasted; past this the request fails
// with "Failure". A release that fails is made good by a recount
// (quotaReleaseFailed).
const quotaStoreTimeout = 15 * time.Second

func (q storeQuota) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if q.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, q.timeout)
}

func (q storeQuota) Reserve(ctx context.Context, bytes, files int64) error {
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	ok, err := q.st.AddUsage(ctx, q.account, bytes, files)
	if err != nil {
		return err
	}
	if !ok {
		return sftp.ErrQuotaExceeded
	}
	return nil
}

func (q storeQuota) Release(ctx context.Context, bytes, files int64) {
	ctx, cancel := q.bounded(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := q.st.AddUsage(ctx, q.account, -bytes, -files); err != nil && q.releaseFailed != nil {
		q.releaseFailed(bytes, files, err)
	}
}
