// Command shell is a programmable interactive shell served over SSH:
// password "demo" for any user, on 127.0.0.1:2022, with a fresh in-memory
// ed25519 host key. Try: ssh -p 2022 you@127.0.0.1
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"

	"github.com/ferry-sftp/ferry/auth"
	"github.com/ferry-sftp/ferry/examples/internal/demo"
	"github.com/ferry-sftp/ferry/keys"
	"github.com/ferry-sftp/ferry/server"
	"github.com/ferry-sftp/ferry/transport"
)

func newServer() *server.Server {
	return &server.Server{
		Transport: transport.Config{HostKeys: []keys.Signer{demo.HostKey()}},
		Auth:      auth.Config{Authenticator: demo.Auth{}, Methods: []string{"password"}},
		Handler:   server.HandlerFunc(shell),
	}
}

// shell runs a tiny interpreter. A pty client's terminal is raw (the
// server owns line discipline), so lines end at CR or LF; the prompt shows
// the window size.
func shell(s *server.Session) {
	pty, winch, _ := s.Pty()
	in := bufio.NewScanner(s)
	in.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	})
	for {
		select {
		case pty.Window = <-winch:
		default:
		}
		fmt.Fprintf(s, "%s@ferry[%dx%d]$ ", s.User(), pty.Window.Columns, pty.Window.Rows)
		if !in.Scan() {
			return
		}
		switch cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " "); cmd {
		case "":
		case "echo":
			fmt.Fprintf(s, "%s\r\n", arg)
		case "whoami":
			fmt.Fprintf(s, "%s\r\n", s.User())
		case "exit":
			code, _ := strconv.Atoi(arg)
			s.Exit(code)
			return
		default:
			fmt.Fprintf(s, "%s: command not found\r\n", cmd)
		}
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:2022")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(newServer().Serve(ln))
}
