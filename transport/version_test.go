package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadVersion(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		isClient bool
		want     string
		rest     string
		wantErr  string
	}{
		{name: "crlf", in: "SSH-2.0-OpenSSH_9.2\r\nREST", want: "SSH-2.0-OpenSSH_9.2", rest: "REST"},
		{name: "lf only", in: "SSH-2.0-PuTTY\nX", want: "SSH-2.0-PuTTY", rest: "X"},
		{name: "comments", in: "SSH-2.0-libssh2_1.10.0 hello\r\n", want: "SSH-2.0-libssh2_1.10.0 hello"},
		{name: "1.99", in: "SSH-1.99-old\r\n", want: "SSH-1.99-old"},
		{name: "ssh1", in: "SSH-1.5-old\r\n", wantErr: "Protocol major versions differ"},
		{name: "ssh3", in: "SSH-3.0-future\r\n", wantErr: "unsupported protocol version"},
		{name: "client sends junk first", in: "hello\r\nSSH-2.0-x\r\n", wantErr: "did not send an SSH identification"},
		{name: "server lines before banner", in: "welcome\r\nSSH-2.0-srv\r\n", isClient: true, want: "SSH-2.0-srv"},
		{name: "too long", in: "SSH-2.0-" + strings.Repeat("a", 300) + "\r\n", wantErr: "longer than 255"},
		{name: "no newline", in: "SSH-2.0-" + strings.Repeat("a", 300), wantErr: "longer than 255"},
		{name: "nul byte", in: "SSH-2.0-a\x00b\r\n", wantErr: "non-printable"},
		{name: "no software version", in: "SSH-2.0\r\n", wantErr: "malformed"},
		{name: "eof", in: "SSH-2.0-abc", wantErr: "connection closed"},
		{name: "endless pre-banner", in: strings.Repeat("x\r\n", 5000), isClient: true, wantErr: "before the identification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rest, err := readVersion(strings.NewReader(tt.in), tt.isClient)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || v != tt.want || !bytes.Equal(rest, []byte(tt.rest)) && !(len(rest) == 0 && tt.rest == "") {
				t.Fatalf("got %q rest %q err %v; want %q rest %q", v, rest, err, tt.want, tt.rest)
			}
		})
	}
	_, _, err := readVersion(strings.NewReader("SSH-1.5-x\r\n"), false)
	if !errors.Is(err, errSSH1) {
		t.Errorf("SSH-1 error = %v, want errSSH1", err)
	}
}
