package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/wire"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/transport"
)

// The load generators speak SSH with ferry's own client side (transport,
// a hand-built publickey request, the connection mux), not with
// golang.org/x/crypto/ssh or pkg/sftp: those are test peers only and never
// imported by code outside _test.go files.

// loginConfig is what every load-generator connection needs.
type loginConfig struct {
	user   string
	signer keys.Signer
	alg    string
	// kex, if set, is the only key exchange offered: the connection fails
	// unless the server negotiates it. Nil offers the client's defaults.
	kex string
}

func (e *Env) clientConfig() (*loginConfig, error) {
	signer, err := keys.ParsePrivateKey(e.Key)
	if err != nil {
		return nil, err
	}
	algs := keys.SignatureAlgorithmsFor(signer.PublicKey().Type())
	if len(algs) == 0 {
		return nil, fmt.Errorf("no signature algorithm for %s", signer.PublicKey().Type())
	}
	return &loginConfig{user: e.opts.User, signer: signer, alg: algs[0]}, nil
}

// sftpSession is one authenticated connection with an SFTP session that
// has done INIT/VERSION.
type sftpSession struct {
	tc *transport.Conn
	ch *connection.Channel
}

func (s *sftpSession) Close() {
	s.ch.Close()
	s.tc.Close()
}

func dialSFTP(port int, cfg *loginConfig) (*sftpSession, error) {
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	// OpenSSH's client order (ed25519 host keys first); x/crypto/ssh's
	// default would make both servers sign every login with RSA.
	ccfg := &transport.ClientConfig{
		HostKeyAlgorithms: []string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"},
	}
	if cfg.kex != "" {
		ccfg.KeyExchanges = []string{cfg.kex}
	}
	tc, err := transport.Client(nc, ccfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tc.Close()
		}
	}()
	if err := login(tc, cfg); err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	mux, err := connection.New(tc, &connection.Config{})
	if err != nil {
		return nil, err
	}
	go mux.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := mux.OpenChannel(ctx, connection.ChannelTypeSession, nil)
	if err != nil {
		return nil, err
	}
	if granted, err := ch.SendRequest(connection.RequestSubsystem, true, (&connection.SubsystemRequest{Name: "sftp"}).Marshal()); err != nil || !granted {
		return nil, fmt.Errorf("sftp subsystem refused: %v", err)
	}
	// SSH_FXP_INIT version 3, then read SSH_FXP_VERSION.
	if _, err := ch.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3}); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(ch, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 5 || n > 64<<10 {
		return nil, fmt.Errorf("bad VERSION length %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(ch, body); err != nil {
		return nil, err
	}
	if body[0] != 2 {
		return nil, fmt.Errorf("expected SSH_FXP_VERSION, got %d", body[0])
	}
	ok = true
	return &sftpSession{tc: tc, ch: ch}, nil
}

// login runs ssh-userauth with one signed publickey request (RFC 4252 §7).
func login(tc *transport.Conn, cfg *loginConfig) error {
	if err := tc.WritePacket(wire.AppendStringS([]byte{wire.MsgServiceRequest}, "ssh-userauth")); err != nil {
		return err
	}
	p, err := tc.ReadPacket()
	if err != nil {
		return err
	}
	if p[0] != wire.MsgServiceAccept {
		return fmt.Errorf("service request refused (message %d)", p[0])
	}
	blob := cfg.signer.PublicKey().Marshal()
	req := []byte{wire.MsgUserAuthRequest}
	req = wire.AppendStringS(req, cfg.user)
	req = wire.AppendStringS(req, "ssh-connection")
	req = wire.AppendStringS(req, "publickey")
	req = wire.AppendBool(req, true)
	req = wire.AppendStringS(req, cfg.alg)
	req = wire.AppendString(req, blob)
	signed := wire.AppendString(nil, tc.SessionID())
	signed = append(signed, req...)
	sig, err := cfg.signer.Sign(rand.Reader, signed, cfg.alg)
	if err != nil {
		return err
	}
	if err := tc.WritePacket(wire.AppendString(req, sig.Marshal())); err != nil {
		return err
	}
	for {
		p, err := tc.ReadPacket()
		if err != nil {
			return err
		}
		switch p[0] {
		case wire.MsgUserAuthBanner:
			continue
		case wire.MsgUserAuthSuccess:
			return nil
		case wire.MsgUserAuthFailure:
			return errors.New("publickey authentication refused")
		default:
			return fmt.Errorf("unexpected message %d during authentication", p[0])
		}
	}
}
