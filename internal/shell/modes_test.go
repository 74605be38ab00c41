//go:build linux

package shell

import (
	"context"
	"io"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/connection"
	"github.com/ferry-sftp/ferry/internal/testenv"
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
	// Control characters: the client's erase (^H), interrupt (^X),
	// a disabled VSTOP (255, OpenSSH's _POSIX_VDISABLE), and flags the
	// old table lacked (ISTRIP, TOSTOP).
	applyModes(tty, server.Pty{Modes: []connection.TerminalMode{{Opcode: 3, Value: 8}, {Opcode: 1, Value: 0x18},
		{Opcode: 9, Value: 255}, {Opcode: 33, Value: 1}, {Opcode: 58, Value: 1}}})
	tio = get()
	if tio.Cc[unix.VERASE] != 8 || tio.Cc[unix.VINTR] != 0x18 || tio.Cc[unix.VSTOP] != 0 ||
		tio.Iflag&unix.ISTRIP == 0 || tio.Lflag&unix.TOSTOP == 0 {
		t.Errorf("erase %#x intr %#x stop %#x iflag %#x lflag %#x", tio.Cc[unix.VERASE], tio.Cc[unix.VINTR], tio.Cc[unix.VSTOP], tio.Iflag, tio.Lflag)
	}
	setSize(ptmx, server.Window{Columns: 132, Rows: 43})
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 132 || ws.Row != 43 {
		t.Errorf("winsize %+v %v", ws, err)
	}
}

// ssh -tt sends its terminal's modes in pty-req; the remote terminal
// gets them: here erase ^H, which the kernel's default (DEL) is not.
func TestPtyModesFromClient(t *testing.T) {
	sshBin := testenv.NeedTool(t, "ssh")
	sshpass := testenv.NeedTool(t, "sshpass")
	h := newHandler(t, Config{User: "alice", AllowShell: true, Shell: "/bin/sh"})
	port := startServer(t, accounts{"alice": h})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshpass, "-p", "pw", sshBin, "-tt", "-p", port, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no", "alice@127.0.0.1",
		"stty -a; exit 0")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Cc[unix.VERASE] = 8
	if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var out ptyOutput
	go io.Copy(&out, ptmx)
	cmd.Wait()
	out.waitFor(t, regexp.MustCompile(`erase = \^H;`))
}
