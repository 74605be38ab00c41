package auth

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
)

// rsaKey is implemented by keys.RSAPublicKey.
type rsaKey interface{ Bits() int }

// publicKey handles "publickey" (RFC 4252 §7) and
// "publickey-hostbound-v00@openssh.com" (OpenSSH PROTOCOL §2.5).
//
// The order matters (CVE-2024-45337 class): a query is answered from the
// Authenticator's opinion of the queried key, but a request with a
// signature is authorized only by asking the Authenticator again about the
// key whose signature was just verified, in this request. Nothing from an
// earlier query is remembered.
func (s *serverAuthState) publicKey(req *userAuthRequestMsg) (outcome, error) {
	p := publicKeyRequest{Hostbound: req.Method == methodPublicKeyHostbound}
	if !p.unmarshal(req.Payload) {
		return outcome{}, wire.ProtocolError("malformed %s request", req.Method)
	}
	fail := outcome{kind: outcomeFailure}
	if p.Hostbound {
		// The client binds its signature to the host key it verified in
		// the first key exchange; a different blob means it is talking to
		// (or being relayed by) another server.
		hk := s.c.HostKey()
		if hk == nil || !bytes.Equal(p.HostKey, hk.Marshal()) {
			s.refused(req.Method, "host key in hostbound request does not match")
			return fail, nil
		}
	}
	if !slices.Contains(s.pubkeyAlgs, p.Algorithm) {
		s.refused(req.Method, "signature algorithm not allowed")
		return fail, nil
	}
	// Parsed from a copy: the key outlives this packet's buffer (it may
	// become Result.PublicKey) and parsers may alias their input.
	key, err := keys.ParsePublicKey(bytes.Clone(p.PubKey))
	if err != nil {
		s.refused(req.Method, "unparsable public key")
		return fail, nil
	}
	// The algorithm must belong to the key: rsa-sha2-256 with an ssh-rsa
	// blob, never ssh-ed25519 with an RSA blob.
	if keys.KeyTypeOfAlgorithm(p.Algorithm) != key.Type() {
		s.refused(req.Method, "algorithm does not match key type")
		return fail, nil
	}
	if !s.keySizeOK(key) {
		s.refused(req.Method, "RSA key too small")
		return fail, nil
	}
	// sshd auth2_key_already_used: one key cannot complete two
	// publickey steps of an AuthenticationMethods list.
	// Compared by the plain key, so a certificate and its own key count as
	// one (sshkey_equal_public).
	identity := keyIdentity(key)
	for _, used := range s.usedKeys {
		if bytes.Equal(used, identity) {
			s.refused(req.Method, "key already used")
			return fail, nil
		}
	}

	if !p.HasSig {
		perms, _, err := s.authorizeKey(key, true)
		if err != nil {
			return outcome{}, err
		}
		if perms == nil {
			return fail, nil
		}
		return outcome{kind: outcomePKOK, pkOK: &userAuthPKOKMsg{
			Algorithm: p.Algorithm,
			PubKey:    bytes.Clone(p.PubKey),
		}}, nil
	}

	sig, err := keys.ParseSignature(p.Signature)
	if err != nil {
		s.refused(req.Method, "unparsable signature")
		return fail, nil
	}
	// The signature must be made with the algorithm the request names
	// (the plain one for a certificate), not merely one the key can make:
	// an rsa-sha2-512 request carrying an ssh-rsa (SHA-1) signature would
	// otherwise slip past PubkeyAlgorithms.
	if sig.Format != keys.UnderlyingAlgorithm(p.Algorithm) {
		s.refused(req.Method, "signature algorithm differs from request")
		return fail, nil
	}
	data := s.signedData(req, &p)
	// Flags of security keys are checked below against the permissions
	// for this key; here only the cryptography.
	if err := keys.VerifyWithPolicy(key, data, sig, keys.SKPolicy{NoTouchRequired: true}); err != nil {
		s.refused(req.Method, "signature verification failed")
		return fail, nil
	}
	perms, sk, err := s.authorizeKey(key, false)
	if err != nil {
		return outcome{}, err
	}
	if perms == nil {
		return fail, nil
	}
	if flags, _, ok := sig.SKFlags(); ok {
		if !sk.NoTouchRequired && flags&keys.SKFlagUserPresent == 0 {
			s.refused(req.Method, "security key signature without user presence")
			return fail, nil
		}
		if sk.VerifyRequired && flags&keys.SKFlagUserVerified == 0 {
			s.refused(req.Method, "security key signature without user verification")
			return fail, nil
		}
	}
	return outcome{kind: outcomeSuccess, perms: perms, key: key, keyBlob: identity}, nil
}

// signedData is what the client signs, RFC 4252 §7 (and OpenSSH PROTOCOL
// §2.5 for the trailing host key): session identifier, then the request
// itself with the boolean TRUE, built from the fields as they were sent.
func (s *serverAuthState) signedData(req *userAuthRequestMsg, p *publicKeyRequest) []byte {
	sid := s.meta.sessionID
	n := 4 + len(sid) + 1 + 4 + len(s.userBytes) + 4 + len(req.Service) + 4 + len(req.Method) +
		1 + 4 + len(p.Algorithm) + 4 + len(p.PubKey) + 4 + len(p.HostKey)
	b := make([]byte, 0, n)
	b = wire.AppendString(b, sid)
	b = append(b, wire.MsgUserAuthRequest)
	b = wire.AppendString(b, s.userBytes)
	b = wire.AppendStringS(b, req.Service)
	b = wire.AppendStringS(b, req.Method)
	b = wire.AppendBool(b, true)
	b = wire.AppendStringS(b, p.Algorithm)
	b = wire.AppendString(b, p.PubKey)
	if p.Hostbound {
		b = wire.AppendString(b, p.HostKey)
	}
	return b
}

// keyIdentity is the blob of the plain key: the certified key of a
// certificate.
func keyIdentity(k keys.PublicKey) []byte {
	if c, ok := k.(*keys.Certificate); ok && c.Key != nil {
		return c.Key.Marshal()
	}
	return k.Marshal()
}

// keySizeOK applies MinRSABits to an RSA key, or to the key inside a
// certificate and to the certificate's CA key.
func (s *serverAuthState) keySizeOK(k keys.PublicKey) bool {
	check := func(k keys.PublicKey) bool {
		r, ok := k.(rsaKey)
		return !ok || r.Bits() >= s.minRSABits
	}
	if c, ok := k.(*keys.Certificate); ok {
		return check(c.Key) && (c.SignatureKey == nil || check(c.SignatureKey))
	}
	return check(k)
}

// authorizeKey asks whether key may log in: for a certificate, the CA,
// validity and critical options first, and its principals once the
// Authenticator said which authorization applies. It returns nil
// permissions when refused, and the security key policy that applies to
// this key.
func (s *serverAuthState) authorizeKey(key keys.PublicKey, query bool) (*Permissions, keys.SKPolicy, error) {
	cert, isCert := key.(*keys.Certificate)
	var forceCommand string
	if isCert {
		var err error
		forceCommand, err = cert.CheckCertificate(keys.UserCert, &keys.CertCheck{
			DeferPrincipal:        true,
			Now:                   s.now(),
			Remote:                remoteIP(s.meta.peer.RemoteAddr),
			IsTrustedCA:           s.isTrustedCA,
			CASignatureAlgorithms: s.caAlgs,
		})
		if err != nil {
			s.refused(methodPublicKey, err.Error())
			return nil, keys.SKPolicy{}, nil
		}
		// Only a per-user CA can lift the login name requirement; a
		// certificate that can only go through TrustedUserCAKeys is
		// refused without asking the Authenticator.
		if !cert.ListsUserPrincipal([]string{s.meta.user}) && !s.isUserCA(cert.SignatureKey) {
			s.refused(methodPublicKey, "certificate does not list the user as a principal")
			return nil, keys.SKPolicy{}, nil
		}
	}
	ctx := s.ctx
	if query {
		ctx = context.WithValue(ctx, keyQueryKey{}, true)
	}
	perms, err := s.auth.PublicKey(ctx, &s.meta, key)
	perms, err = s.authorized(methodPublicKey, perms, err)
	if err != nil || perms == nil {
		return nil, keys.SKPolicy{}, err
	}
	sk := keys.SKPolicy{NoTouchRequired: perms.NoTouchRequired, VerifyRequired: perms.VerifyRequired}
	if !isCert {
		return perms, sk, nil
	}
	if !s.certPrincipalAllowed(cert, perms) {
		s.refused(methodPublicKey, "certificate does not list an authorized principal")
		return nil, keys.SKPolicy{}, nil
	}
	// A certificate's force-command and the account's forced command must
	// agree (sshd refuses differing ones rather than pick).
	if forceCommand != "" {
		if perms.ForceCommand != "" && perms.ForceCommand != forceCommand {
			s.refused(methodPublicKey, "certificate force-command conflicts with account's")
			return nil, keys.SKPolicy{}, nil
		}
		perms.ForceCommand = forceCommand
	}
	// PROTOCOL.certkeys: a permission not granted by an extension is
	// denied.
	perms.NoPTY = perms.NoPTY || !cert.HasExtension(keys.ExtPermitPTY)
	perms.NoPortForwarding = perms.NoPortForwarding || !cert.HasExtension(keys.ExtPermitPortForwarding)
	perms.NoAgentForwarding = perms.NoAgentForwarding || !cert.HasExtension(keys.ExtPermitAgentForwarding)
	perms.NoX11Forwarding = perms.NoX11Forwarding || !cert.HasExtension(keys.ExtPermitX11Forwarding)
	perms.NoUserRC = perms.NoUserRC || !cert.HasExtension(keys.ExtPermitUserRC)
	if cert.ValidBefore != keys.CertTimeInfinity && cert.ValidBefore <= uint64(maxUnix) {
		exp := time.Unix(int64(cert.ValidBefore), 0)
		if perms.ExpiresAt.IsZero() || exp.Before(perms.ExpiresAt) {
			perms.ExpiresAt = exp
		}
	}
	// A certificate skips the touch only with the no-touch-required
	// extension, and, when an authorized_keys cert-authority line rather
	// than TrustedUserCAKeys admitted it, only if that line says
	// no-touch-required too: sshd's sshauthopt_merge ANDs the two, and
	// tries TrustedUserCAKeys first (see certPrincipalAllowed).
	// verify-required comes from either side.
	viaTrustedCA := s.isConfiguredCA(cert.SignatureKey) && cert.ListsUserPrincipal([]string{s.meta.user})
	sk.NoTouchRequired = cert.HasExtension(keys.ExtNoTouchRequired) && (viaTrustedCA || perms.NoTouchRequired)
	_, vr := cert.CriticalOptions[keys.OptVerifyRequired]
	sk.VerifyRequired = sk.VerifyRequired || vr
	return perms, sk, nil
}

// maxUnix keeps a certificate's valid-before inside time.Unix's range.
const maxUnix = 1<<62 - 1

// certPrincipalAllowed applies sshd's two ways of trusting a CA: through
// TrustedUserCAKeys the certificate must list the login name (ferry has no
// AuthorizedPrincipalsFile); through an authorized_keys cert-authority line
// it must list one of the line's principals= if it has that option, else
// the login name. sshd tries TrustedUserCAKeys first, so a CA trusted both
// ways admits the login name even when its line says principals=.
func (s *serverAuthState) certPrincipalAllowed(cert *keys.Certificate, perms *Permissions) bool {
	user := []string{s.meta.user}
	if perms.CertPrincipals == nil {
		return cert.ListsUserPrincipal(user)
	}
	return cert.ListsUserPrincipal(perms.CertPrincipals) ||
		(s.isConfiguredCA(cert.SignatureKey) && cert.ListsUserPrincipal(user))
}

func (s *serverAuthState) isConfiguredCA(ca keys.PublicKey) bool {
	return slices.ContainsFunc(s.cfg.TrustedUserCAKeys, func(k keys.PublicKey) bool { return keys.Equal(k, ca) })
}

func (s *serverAuthState) isUserCA(ca keys.PublicKey) bool {
	c, ok := s.auth.(UserCAChecker)
	return ok && c.IsUserCA(s.ctx, &s.meta, ca)
}

func (s *serverAuthState) isTrustedCA(ca keys.PublicKey) bool {
	return s.isConfiguredCA(ca) || s.isUserCA(ca)
}

// remoteIP is the client's address for certificate source-address; nil
// (which fails any source-address) when the connection is not IP.
func remoteIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}

// refused logs why a request was refused; the client learns nothing more
// than FAILURE.
func (s *serverAuthState) refused(method, why string) {
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "userauth refused",
		slog.String("user", s.meta.user), slog.String("method", method), slog.String("reason", why))
}

// keyQueryKey marks the context of an Authenticator.PublicKey call made
// for a query without a signature.
type keyQueryKey struct{}

// IsKeyQuery reports whether an Authenticator.PublicKey call with this
// context is a query without a signature (answered with PK_OK), not a
// signed attempt. The answer is the same either way; it lets an
// Authenticator count logins once (a client queries, then signs).
func IsKeyQuery(ctx context.Context) bool {
	q, _ := ctx.Value(keyQueryKey{}).(bool)
	return q
}
