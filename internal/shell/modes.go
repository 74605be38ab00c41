//go:build linux

package shell

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/server"
)

// modeFlags maps the RFC 4254 §8 encoded terminal mode opcodes ferry
// applies to termios flags: the line discipline switches clients
// actually send (OpenSSH's ttymodes.h sends all it knows). Control
// characters and speeds are left at the kernel's defaults.
var modeFlags = [...]struct {
	opcode uint8
	field  int // 0 iflag, 1 oflag, 2 lflag
	bit    uint32
}{
	{36, 0, unix.ICRNL}, {38, 0, unix.IXON}, {39, 0, unix.IXANY}, {40, 0, unix.IXOFF},
	{42, 0, unix.IUTF8},
	{50, 2, unix.ISIG}, {51, 2, unix.ICANON}, {53, 2, unix.ECHO}, {54, 2, unix.ECHOE},
	{55, 2, unix.ECHOK}, {56, 2, unix.ECHONL}, {57, 2, unix.NOFLSH}, {59, 2, unix.IEXTEN},
	{60, 2, unix.ECHOCTL}, {61, 2, unix.ECHOKE},
	{70, 1, unix.OPOST}, {72, 1, unix.ONLCR},
}

// applyModes sets the flags of the pty-req's modes on the terminal; a
// failure leaves the kernel's defaults, which suit interactive shells.
func applyModes(tty *os.File, p server.Pty) {
	if len(p.Modes) == 0 {
		return
	}
	fd := int(tty.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return
	}
	for _, m := range p.Modes {
		for _, f := range modeFlags {
			if f.opcode != m.Opcode {
				continue
			}
			fl := [...]*uint32{&t.Iflag, &t.Oflag, &t.Lflag}[f.field]
			if m.Value != 0 {
				*fl |= f.bit
			} else {
				*fl &^= f.bit
			}
		}
	}
	unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
