package server

import (
	"crypto/rand"
	"slices"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
)

// maxProveKeys bounds the keys one hostkeys-prove request may ask about;
// a server holds a handful of host keys.
const maxProveKeys = 16

// offeredHostKeys are the host keys with at least one enabled algorithm,
// each once: ssh refuses a whole hostkeys-00 announcement that lists a key
// twice ("received duplicated ssh-ed25519 host key"), which a key listed
// twice in the configuration (or under two file names) would make.
func (c *Conn) offeredHostKeys() []keys.Signer {
	algs := c.srv.Transport.HostKeyAlgorithms
	if algs == nil {
		algs = transport.DefaultAlgorithms(transport.KindHostKey)
	}
	var out []keys.Signer
	for _, s := range c.srv.Transport.HostKeys {
		if slices.ContainsFunc(out, func(o keys.Signer) bool { return keys.Equal(o.PublicKey(), s.PublicKey()) }) {
			continue
		}
		for _, a := range keys.SignatureAlgorithmsFor(s.PublicKey().Type()) {
			if slices.Contains(algs, a) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// sendHostKeys announces every host key after authentication, so clients
// with UpdateHostKeys learn new keys before an old one is retired (OpenSSH
// PROTOCOL §2.5).
func (c *Conn) sendHostKeys() {
	s := c.srv
	// Marshalling the keys (an RSA modulus among them) was 2% of a
	// login's server CPU.
	s.hostKeysOnce.Do(func() {
		for _, k := range c.offeredHostKeys() {
			s.hostKeysAnnouncement = wire.AppendString(s.hostKeysAnnouncement, k.PublicKey().Marshal())
		}
	})
	if payload := s.hostKeysAnnouncement; payload != nil {
		c.mux.SendGlobalRequest(connection.GlobalHostKeys, false, payload)
	}
}

// proveHostKeys answers hostkeys-prove-00@openssh.com: for each requested
// key we hold, a signature over string "hostkeys-prove-00@openssh.com" ||
// string session_id || string hostkey.
func (c *Conn) proveHostKeys(req *connection.GlobalRequest) {
	r := wire.NewReader(req.Payload)
	held := c.offeredHostKeys()
	var reply []byte
	for n := 0; !r.Empty(); n++ {
		blob := r.Bytes()
		if !r.Ok() || n >= maxProveKeys {
			req.Reply(false, nil)
			return
		}
		var signer keys.Signer
		for _, s := range held {
			if string(s.PublicKey().Marshal()) == string(blob) {
				signer = s
			}
		}
		if signer == nil {
			req.Reply(false, nil)
			return
		}
		data := wire.AppendStringS(nil, connection.GlobalHostKeysProve)
		data = wire.AppendString(data, c.SessionID())
		data = wire.AppendString(data, blob)
		alg := ""
		if signer.PublicKey().Type() == keys.KeyRSA {
			// The RSA algorithm the key exchange used, else SHA-512, as
			// OpenSSH's sshd does: ssh verifies an RSA proof with the
			// negotiated algorithm, so after an ssh-rsa (SHA-1) exchange
			// an rsa-sha2-512 proof fails ("server gave bad signature for
			// RSA key") and the client learns none of the keys.
			alg = keys.SigRSASHA512
			if a := c.Algorithms().HostKey; keys.KeyTypeOfAlgorithm(a) == keys.KeyRSA {
				alg = a
			}
		}
		sig, err := signer.Sign(rand.Reader, data, alg)
		if err != nil {
			req.Reply(false, nil)
			return
		}
		reply = wire.AppendString(reply, sig.Marshal())
	}
	req.Reply(true, reply)
}
