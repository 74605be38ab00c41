// Command subsystem serves a custom SSH subsystem, "uppercase", which
// echoes its input uppercased: password "demo" for any user, on
// 127.0.0.1:2022. Try: ssh -p 2022 -s you@127.0.0.1 uppercase
package main

import (
	"bytes"
	"io"
	"log"
	"net"

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
		// No Handler: shell and exec are refused; only the subsystem runs.
		SubsystemHandlers: map[string]server.Handler{"uppercase": server.HandlerFunc(uppercase)},
	}
}

// uppercase echoes its input uppercased until the client's EOF; returning
// ends the session with exit status 0.
func uppercase(s *server.Session) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := s.Write(bytes.ToUpper(buf[:n])); werr != nil {
				return
			}
		}
		if err == io.EOF {
			return
		} else if err != nil {
			s.Exit(1)
			return
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
