package shell

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

// TestCodeEnvNeverReachesProcess: with accept_env = ["*"], variables that
// make the loader or the shell run the client's code are dropped, for a
// forced command too (LD_PRELOAD of an uploaded library ran the client's
// code before the forced one); others still arrive.
func TestCodeEnvNeverReachesProcess(t *testing.T) {
	h := newHandler(t, Config{User: "alice", AllowShell: true})
	hk, err := keys.GenerateKey("ssh-ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	forced := forcedCommand{accounts{"alice": h}, "env"}
	srv := &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{hk}},
		Auth:      auth.Config{Authenticator: forced, FailureDelay: -1},
		AcceptEnv: []string{"*"},
		Handler:   h,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "alice")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	refused := []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "BASH_FUNC_ls%%", "SHELLOPTS", "GCONV_PATH", "GLIBC_TUNABLES"}
	for _, name := range refused {
		if err := s.Setenv(name, "/nonexistent/x.so"); err != nil {
			t.Fatalf("env %s: %v", name, err)
		}
	}
	if err := s.Setenv("FERRY_TEST", "v1"); err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput("anything")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, "=")
		for _, r := range refused {
			if name == r {
				t.Errorf("%s reached the process", line)
			}
		}
	}
	if !strings.Contains(string(out), "\nFERRY_TEST=v1\n") && !strings.HasPrefix(string(out), "FERRY_TEST=v1\n") {
		t.Errorf("FERRY_TEST missing:\n%s", out)
	}
	if !strings.Contains(string(out), "SSH_ORIGINAL_COMMAND=anything") {
		t.Errorf("not the forced command:\n%s", out)
	}
}

// forcedCommand authenticates as accts does, with a forced command.
type forcedCommand struct {
	accounts
	command string
}

func (f forcedCommand) Password(ctx context.Context, m auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	p, err := f.accounts.Password(ctx, m, pw)
	if p != nil {
		p.ForceCommand = f.command
	}
	return p, err
}
