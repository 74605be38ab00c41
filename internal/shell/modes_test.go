//go:build linux

package shell

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/server"
)

func TestApplyModes(t *testing.T) {
	ptmx, tty, err := openPty()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	get := func() *unix.Termios {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio
	}
	// ECHO off, ICANON off, ONLCR on; an unknown opcode is ignored.
	applyModes(tty, server.Pty{Modes: []connection.TerminalMode{{Opcode: 53, Value: 0}, {Opcode: 51, Value: 0}, {Opcode: 72, Value: 1}, {Opcode: 158, Value: 1}}})
	tio := get()
	if tio.Lflag&unix.ECHO != 0 || tio.Lflag&unix.ICANON != 0 || tio.Oflag&unix.ONLCR == 0 {
		t.Errorf("lflag %#x oflag %#x", tio.Lflag, tio.Oflag)
	}
	applyModes(tty, server.Pty{Modes: []connection.TerminalMode{{Opcode: 53, Value: 1}}})
	if get().Lflag&unix.ECHO == 0 {
		t.Error("ECHO not set back")
	}
	setSize(ptmx, server.Window{Columns: 132, Rows: 43})
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 132 || ws.Row != 43 {
		t.Errorf("winsize %+v %v", ws, err)
	}
}
