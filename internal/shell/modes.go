//go:build linux

package shell

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ferry-sftp/ferry/server"
)

// modeChars maps the RFC 4254 §8 control character opcodes to termios
// c_cc indices. A client sends its own terminal's characters (OpenSSH's
// ttymodes.c sends every one it has), so that erase is the key its
// terminal sends for backspace: ^H for some PuTTY setups, where the
// kernel's default is DEL. VDSUSP (11), VFLUSH (15) and VSTATUS (17)
// have no Linux equivalent.
var modeChars = [...]struct {
	opcode uint8
	index  int
}{
	{1, unix.VINTR}, {2, unix.VQUIT}, {3, unix.VERASE}, {4, unix.VKILL}, {5, unix.VEOF},
	{6, unix.VEOL}, {7, unix.VEOL2}, {8, unix.VSTART}, {9, unix.VSTOP}, {10, unix.VSUSP},
	{12, unix.VREPRINT}, {13, unix.VWERASE}, {14, unix.VLNEXT}, {16, unix.VSWTC},
	{18, unix.VDISCARD},
}

// disabledChar is how the protocol encodes "no character" (OpenSSH's
// special_char_encode sends 255 for _POSIX_VDISABLE); Linux's
// _POSIX_VDISABLE is 0.
const disabledChar = 255

// modeFlags maps the RFC 4254 §8 encoded terminal mode opcodes ferry
// applies to termios flags: every line discipline switch of the RFC
// that Linux has (OpenSSH's ttymodes.h sends all it knows). Speeds and
// the control modes (CS7, CS8, PARENB, PARODD) mean nothing on a
// pseudo-terminal, which keeps its own, and are left alone.
var modeFlags = [...]struct {
	opcode uint8
	field  int // 0 iflag, 1 oflag, 2 lflag
	bit    uint32
}{
	{30, 0, unix.IGNPAR}, {31, 0, unix.PARMRK}, {32, 0, unix.INPCK}, {33, 0, unix.ISTRIP},
	{34, 0, unix.INLCR}, {35, 0, unix.IGNCR}, {36, 0, unix.ICRNL}, {37, 0, unix.IUCLC},
	{38, 0, unix.IXON}, {39, 0, unix.IXANY}, {40, 0, unix.IXOFF}, {41, 0, unix.IMAXBEL},
	{42, 0, unix.IUTF8},
	{50, 2, unix.ISIG}, {51, 2, unix.ICANON}, {52, 2, unix.XCASE}, {53, 2, unix.ECHO},
	{54, 2, unix.ECHOE}, {55, 2, unix.ECHOK}, {56, 2, unix.ECHONL}, {57, 2, unix.NOFLSH},
	{58, 2, unix.TOSTOP}, {59, 2, unix.IEXTEN}, {60, 2, unix.ECHOCTL}, {61, 2, unix.ECHOKE},
	{62, 2, unix.PENDIN},
	{70, 1, unix.OPOST}, {71, 1, unix.OLCUC}, {72, 1, unix.ONLCR}, {73, 1, unix.OCRNL},
	{74, 1, unix.ONOCR}, {75, 1, unix.ONLRET},
}

// applyModes applies the pty-req's modes to the terminal; a failure
// leaves the kernel's defaults, which suit interactive shells.
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
		for _, c := range modeChars {
			if c.opcode == m.Opcode {
				v := uint8(m.Value)
				if m.Value == disabledChar || m.Value > 0xff {
					v = 0
				}
				t.Cc[c.index] = v
			}
		}
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
