package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
)

// forcedAuth accepts testPassword with a forced command.
type forcedAuth struct{ command string }

func (a forcedAuth) Password(_ context.Context, _ auth.ConnMetadata, pw []byte) (*auth.Permissions, error) {
	if string(pw) != testPassword {
		return nil, auth.ErrDenied
	}
	return &auth.Permissions{ForceCommand: a.command}, nil
}

func (forcedAuth) PublicKey(context.Context, auth.ConnMetadata, keys.PublicKey) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

func (forcedAuth) KeyboardInteractive(context.Context, auth.ConnMetadata, auth.Challenger) (*auth.Permissions, error) {
	return nil, auth.ErrDenied
}

// TestForcedSFTPCommand: a forced command naming sshd's SFTP server runs the
// "sftp" subsystem handler, as sshd (session.c do_exec) does:
// internal-sftp for a subsystem request (a shell or exec gets "This
// service allows sftp connections only." and exit status 1), an
// sftp-server program for any request. Other forced commands, and SFTP
// servers with restricting arguments the sftp handler would not apply, go
// to Handler.
func TestForcedSFTPCommand(t *testing.T) {
	// The handlers print which of them ran and what they were given.
	sftpHandler := server.HandlerFunc(func(s *server.Session) {
		fmt.Fprintf(s, "sftp subsystem=%s command=%s raw=%s", s.Subsystem(), s.Command(), s.RawCommand())
	})
	execHandler := server.HandlerFunc(func(s *server.Session) {
		fmt.Fprintf(s, "exec command=%s", s.Command())
		s.Exit(7)
	})
	const sftpOnly = "This service allows sftp connections only.\n"
	type request struct{ kind, arg string }
	subsystem, exec, shell := request{"subsystem", "sftp"}, request{"exec", "ls"}, request{"shell", ""}
	tests := []struct {
		forced  string
		req     request
		want    string
		wantErr bool // exit status 1 or 7 expected (shell and exec)
	}{
		{"internal-sftp", subsystem, "sftp subsystem=sftp command=internal-sftp raw=sftp", false},
		{"internal-sftp -l VERBOSE -f AUTH -e", subsystem, "sftp subsystem=sftp command=internal-sftp -l VERBOSE -f AUTH -e raw=sftp", false},
		{"internal-sftp", exec, sftpOnly, true},
		{"internal-sftp", shell, sftpOnly, true},
		{"/usr/lib/openssh/sftp-server", subsystem, "sftp subsystem=sftp command=/usr/lib/openssh/sftp-server raw=sftp", false},
		{"/usr/libexec/openssh/sftp-server -lDEBUG", exec, "sftp subsystem=sftp command=/usr/libexec/openssh/sftp-server -lDEBUG raw=ls", false},
		{"sftp-server", shell, "sftp subsystem=sftp command=sftp-server raw=", false},
		// Not sshd's SFTP server, or restricted in ways the handler would
		// not apply.
		{"internal-sftpx", subsystem, "exec command=internal-sftpx", true},
		{"/usr/lib/openssh/sftp-server2", subsystem, "exec command=/usr/lib/openssh/sftp-server2", true},
		{"internal-sftp -R", subsystem, "exec command=internal-sftp -R", true},
		{"/usr/lib/openssh/sftp-server -d /srv", exec, "exec command=/usr/lib/openssh/sftp-server -d /srv", true},
		{"sftp-server; rm -rf /", exec, "exec command=sftp-server; rm -rf /", true},
		{"/bin/date", subsystem, "exec command=/bin/date", true},
	}
	for _, tt := range tests {
		t.Run(tt.forced+"/"+tt.req.kind, func(t *testing.T) {
			ts := startServer(t, &server.Server{
				Handler:           execHandler,
				SubsystemHandlers: map[string]server.Handler{"sftp": sftpHandler},
				Auth:              auth.Config{Authenticator: forcedAuth{tt.forced}},
			})
			c, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{User: testUser, Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			out, err := sess.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			switch tt.req.kind {
			case "subsystem":
				err = sess.RequestSubsystem(tt.req.arg)
			case "exec":
				err = sess.Start(tt.req.arg)
			case "shell":
				err = sess.Shell()
			}
			if err != nil {
				t.Fatalf("%s request: %v", tt.req.kind, err)
			}
			var got []byte
			buf := make([]byte, 512)
			for {
				n, err := out.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if string(got) != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
			if tt.req.kind == "subsystem" {
				return // x/crypto/ssh's Wait only follows Start and Shell
			}
			if err := sess.Wait(); (err != nil) != tt.wantErr {
				t.Errorf("exit: %v, want failure %v", err, tt.wantErr)
			}
		})
	}
}
