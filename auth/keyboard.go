package auth

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// Challenger sends one keyboard-interactive challenge (RFC 4256 §3.2) and
// returns the client's answers, one per prompt. An Authenticator's
// KeyboardInteractive method calls it once per round.
type Challenger interface {
	// Challenge sends INFO_REQUEST with the prompts (at most MaxPrompts)
	// and waits for INFO_RESPONSE. Once it returns an error, the exchange
	// is over: the Authenticator should return that error.
	Challenge(name, instruction string, prompts []Prompt) (answers []string, err error)
}

// Errors a Challenger returns.
var (
	// ErrChallengeAbandoned means the client sent a new USERAUTH_REQUEST
	// instead of answering (RFC 4256 §3.4 allows it); the auth layer
	// handles that request next.
	ErrChallengeAbandoned = errors.New("auth: keyboard-interactive challenge abandoned by client")
	// ErrTooManyRounds means the Authenticator asked more than
	// MaxChallengeRounds challenges in one attempt.
	ErrTooManyRounds = errors.New("auth: too many keyboard-interactive rounds")
	// ErrTooManyPrompts means a challenge had more than MaxPrompts prompts.
	ErrTooManyPrompts = errors.New("auth: too many keyboard-interactive prompts")
)

// challenger runs the INFO_REQUEST/INFO_RESPONSE rounds of one
// keyboard-interactive attempt for serverAuthState.
type challenger struct {
	s      *serverAuthState
	rounds int
	// err latches the first error: the Authenticator may swallow it, but
	// the auth layer acts on it (ends the connection, or takes the next
	// request) regardless of what the Authenticator returns.
	err    error
	closed atomic.Bool
}

// errChallengerClosed is returned by a Challenger used after
// KeyboardInteractive returned.
var errChallengerClosed = errors.New("auth: keyboard-interactive challenger used after its attempt ended")

func (c *challenger) Challenge(name, instruction string, prompts []Prompt) ([]string, error) {
	if c.closed.Load() {
		return nil, errChallengerClosed
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.rounds >= MaxChallengeRounds {
		c.err = ErrTooManyRounds
		return nil, c.err
	}
	if len(prompts) > MaxPrompts {
		c.err = ErrTooManyPrompts
		return nil, c.err
	}
	c.rounds++
	req := infoRequestMsg{Name: name, Instruction: instruction, Prompts: prompts}
	if err := c.s.write(req.marshal()); err != nil {
		c.err = err
		return nil, err
	}
	p, err := c.s.readMessage(wire.MsgUserAuthInfoResponse, wire.MsgUserAuthRequest)
	if err != nil {
		c.err = err
		return nil, err
	}
	if p[0] == wire.MsgUserAuthRequest {
		c.s.pending = append([]byte(nil), p...)
		c.err = ErrChallengeAbandoned
		return nil, c.err
	}
	var resp infoResponseMsg
	if !resp.unmarshal(p) {
		c.err = wire.ProtocolError("malformed USERAUTH_INFO_RESPONSE")
		return nil, c.err
	}
	// RFC 4256 §3.4: num-responses MUST equal num-prompts; sshd
	// (auth2-chall.c) disconnects on a mismatch.
	if len(resp.Responses) != len(prompts) {
		c.err = wire.ProtocolError("wrong number of keyboard-interactive responses: %d for %d prompts",
			len(resp.Responses), len(prompts))
		return nil, c.err
	}
	answers := make([]string, len(resp.Responses))
	for i, r := range resp.Responses {
		answers[i] = string(r)
	}
	return answers, nil
}

// keyboardInteractive handles "keyboard-interactive", RFC 4256 §3.1.
func (s *serverAuthState) keyboardInteractive(req *userAuthRequestMsg) (outcome, error) {
	var p keyboardInteractiveRequest
	if !p.unmarshal(req.Payload) {
		return outcome{}, wire.ProtocolError("malformed keyboard-interactive request")
	}
	ch := &challenger{s: s}
	var (
		perms *Permissions
		err   error
	)
	if s.cfg.KeyboardInteractivePassword {
		perms, err = passwordChallenge(s.ctx, &s.meta, ch, s.cfg.PermitEmptyPasswords, s.auth.Password)
	} else {
		perms, err = s.auth.KeyboardInteractive(s.ctx, &s.meta, ch)
	}
	// An Authenticator that kept the Challenger must not be able to write
	// packets after its turn is over.
	ch.closed.Store(true)
	switch {
	case errors.Is(ch.err, ErrChallengeAbandoned):
		return outcome{kind: outcomeAbandoned}, nil
	case ch.err != nil && !errors.Is(ch.err, ErrTooManyRounds) && !errors.Is(ch.err, ErrTooManyPrompts):
		// Protocol errors and connection errors end the connection even
		// when the Authenticator ignored them.
		return outcome{}, ch.err
	case ch.err != nil:
		s.refused(methodKeyboardInteractive, ch.err.Error())
		return outcome{kind: outcomeFailure}, nil
	}
	perms, err = s.authorized(methodKeyboardInteractive, perms, err)
	if err != nil || perms == nil {
		return outcome{kind: outcomeFailure}, err
	}
	return outcome{kind: outcomeSuccess, perms: perms}, nil
}

// PasswordChallenge asks for a password in one keyboard-interactive prompt
// and checks it with check (typically Authenticator.Password), for clients
// such as PuTTY and WinSCP that are often set to keyboard-interactive only.
// Authenticators can call it from KeyboardInteractive; Config's
// KeyboardInteractivePassword does so for them.
//
// An empty answer is refused without calling check, as an empty password
// is when Config.PermitEmptyPasswords is off (the default): an
// Authenticator passing its Password method as check must not let in an
// account without a password, which a "password" request would not.
// KeyboardInteractivePassword follows PermitEmptyPasswords instead.
func PasswordChallenge(ctx context.Context, meta ConnMetadata, ch Challenger,
	check func(ctx context.Context, meta ConnMetadata, password []byte) (*Permissions, error)) (*Permissions, error) {
	return passwordChallenge(ctx, meta, ch, false, check)
}

func passwordChallenge(ctx context.Context, meta ConnMetadata, ch Challenger, allowEmpty bool,
	check func(ctx context.Context, meta ConnMetadata, password []byte) (*Permissions, error)) (*Permissions, error) {
	answers, err := ch.Challenge("", "", []Prompt{{Text: "Password: ", Echo: false}})
	if err != nil {
		return nil, err
	}
	if len(answers) != 1 || len(answers[0]) > MaxPasswordLen || (answers[0] == "" && !allowEmpty) {
		return nil, ErrDenied
	}
	return check(context.WithValue(ctx, passwordPromptKey{}, true), meta, []byte(answers[0]))
}

// passwordPromptKey marks the context of a password check made for a
// keyboard-interactive request (PasswordChallenge).
type passwordPromptKey struct{}

// IsPasswordPrompt reports whether an Authenticator.Password call with this
// context checks the answer to a keyboard-interactive password prompt
// (PasswordChallenge, Config.KeyboardInteractivePassword) rather than a
// "password" request. The answer is the same either way; it lets an
// Authenticator count or log the method the client used.
func IsPasswordPrompt(ctx context.Context) bool {
	p, _ := ctx.Value(passwordPromptKey{}).(bool)
	return p
}
