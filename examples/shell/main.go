// Command shell is a programmable interactive shell served over SSH:
// password "demo" for any user, on 127.0.0.1:2022, with a fresh in-memory
// ed25519 host key. Try: ssh -p 2022 you@127.0.0.1, or run one command
// with ssh -p 2022 you@127.0.0.1 'exit 3'.
package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

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

// shell serves "exec" by running its one command line, and "shell" by
// running an interpreter, with a prompt showing the window size on a
// pty. A pty client's terminal is raw: the server owns the line
// discipline, so lineReader echoes what is typed and handles erase,
// ^C and ^D, and output lines end in CR LF.
func shell(s *server.Session) {
	pty, winch, hasPty := s.Pty()
	nl := "\n"
	if hasPty {
		nl = "\r\n"
	}
	if cmd := s.Command(); cmd != "" {
		s.Exit(run(s, cmd, nl))
		return
	}
	in := &lineReader{r: bufio.NewReader(s), echo: s, raw: hasPty}
	for {
		select {
		case pty.Window = <-winch:
		default:
		}
		if hasPty {
			fmt.Fprintf(s, "%s@ferry[%dx%d]$ ", s.User(), pty.Window.Columns, pty.Window.Rows)
		} else {
			fmt.Fprintf(s, "%s@ferry$ ", s.User())
		}
		line, err := in.readLine()
		if err != nil {
			return // the client's EOF (or ^D): exit status 0
		}
		if cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " "); cmd == "exit" {
			code, _ := strconv.Atoi(arg)
			s.Exit(code)
			return
		}
		run(s, line, nl)
	}
}

// run runs one command line and returns its exit status.
func run(s *server.Session, line, nl string) int {
	switch cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " "); cmd {
	case "":
	case "echo":
		fmt.Fprintf(s, "%s%s", arg, nl)
	case "whoami":
		fmt.Fprintf(s, "%s%s", s.User(), nl)
	case "exit":
		code, _ := strconv.Atoi(arg)
		return code
	default:
		fmt.Fprintf(s.Stderr(), "%s: command not found%s", cmd, nl)
		return 127
	}
	return 0
}

// lineReader reads command lines. Without a pty they end at LF (a CR
// before it is dropped) and the client echoes nothing, having no
// terminal. On a pty each byte arrives as typed: printable characters
// are echoed, DEL and BS erase one, ^U the line, ^C abandons it, ^D on
// an empty line ends the input, and CR or LF ends the line.
type lineReader struct {
	r    *bufio.Reader
	echo io.Writer
	raw  bool
}

func (l *lineReader) readLine() (string, error) {
	if !l.raw {
		line, err := l.r.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", err
		}
		return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
	}
	var line []byte
	for {
		b, err := l.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case b == '\r' || b == '\n':
			io.WriteString(l.echo, "\r\n")
			return string(line), nil
		case b == 0x7f || b == '\b':
			if len(line) > 0 {
				_, size := utf8.DecodeLastRune(line)
				line = line[:len(line)-size]
				io.WriteString(l.echo, "\b \b")
			}
		case b == 0x15: // ^U
			io.WriteString(l.echo, strings.Repeat("\b \b", utf8.RuneCount(line)))
			line = line[:0]
		case b == 0x03: // ^C
			io.WriteString(l.echo, "^C\r\n")
			return "", nil
		case b == 0x04: // ^D
			if len(line) == 0 {
				io.WriteString(l.echo, "\r\n")
				return "", io.EOF
			}
		case b >= 0x20:
			line = append(line, b)
			l.echo.Write([]byte{b})
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
