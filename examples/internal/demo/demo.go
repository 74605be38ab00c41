// Package demo holds what the examples share: a password-only
// Authenticator and a throwaway host key.
package demo

import (
	"context"
	"log"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
)

// Password is the password every example accepts for any user.
const Password = "demo"

// Auth accepts Password for any user name and nothing else. A real
// Authenticator looks the user up and does the same work for unknown
// users (see auth.Authenticator).
type Auth struct{}

func (Auth) Password(_ context.Context, _ auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	if string(pw) == Password {
		return &auth.Permissions{}, nil
	}
	return nil, auth.ErrDenied
}

func (Auth) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

func (Auth) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// HostKey returns a fresh in-memory ed25519 host key: clients see a new
// host each run, which is fine for a demo and nothing else. It logs the
// key's fingerprint, which clients that check host keys without a
// known_hosts entry need (plink -batch -hostkey SHA256:...).
func HostKey() keys.Signer {
	k, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		panic(err) // crypto/rand failed
	}
	log.Printf("host key %s %s", k.PublicKey().Type(), keys.FingerprintSHA256(k.PublicKey()))
	return k
}
