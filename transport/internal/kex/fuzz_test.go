package kex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/ferry-sftp/ferry/internal/wire"
)

// FuzzKexMessage feeds arbitrary bytes to every kex message parser. A
// parser must not panic, and whatever it accepts must marshal back to the
// exact input: strict parsing means there is one encoding per message.
func FuzzKexMessage(f *testing.F) {
	for _, s := range sampleMessages {
		f.Add(s.msg.marshal())
	}
	f.Add([]byte{30})
	f.Add([]byte{31, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range messageKinds() {
			m := kind()
			if m.unmarshal(data) {
				if out := m.marshal(); !bytes.Equal(out, data) {
					t.Fatalf("%T accepted %x but marshals to %x", m, data, out)
				}
			}
		}
	})
}

// splitPackets turns fuzz input into a packet sequence: each packet is a
// uint16 length and that many bytes; a short final packet takes what is
// left. This lets the fuzzer reach the second GEX round trip.
func splitPackets(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 && len(out) < 4 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinPackets(packets ...[]byte) []byte {
	var b []byte
	for _, p := range packets {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// checkFuzzError: a Method fails only with the transport's error or a
// DisconnectError.
func checkFuzzError(t *testing.T, err error) {
	var de *wire.DisconnectError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is neither io.EOF nor *wire.DisconnectError", err, err)
	}
}

// fuzzSeeds are valid client openings for each method, so the fuzzer
// starts past the parsers.
func fuzzServerSeeds(f *testing.F) {
	for i, name := range Names() {
		m, _ := New(name, nil)
		st := &scriptTransport{}
		m.Client(st, testMagics(), detRand(byte(i)))
		if len(st.written) == 1 {
			packets := [][]byte{st.written[0]}
			if _, gex := m.(*gexMethod); gex {
				// The INIT after GROUP: any 1 < e < p-1 of group 15.
				packets = append(packets, (&kexDHGexInitMsg{X: big.NewInt(4)}).marshal())
			}
			f.Add(byte(i), joinPackets(packets...))
		}
	}
	f.Add(byte(9), joinPackets((&kexDHGexRequestOldMsg{PreferredBits: 1024}).marshal(), (&kexDHGexInitMsg{X: big.NewInt(3)}).marshal()))
}

// FuzzKexServer runs each method's Server against arbitrary client
// messages. It must not panic, must fail only with DisconnectError or the
// transport's EOF, and must never reply to an invalid first message with
// more than the method allows.
func FuzzKexServer(f *testing.F) {
	fuzzServerSeeds(f)
	names := Names()
	hk := newTestHostKey()
	f.Fuzz(func(t *testing.T, method byte, data []byte) {
		name := names[int(method)%len(names)]
		m, _ := New(name, nil)
		st := &scriptTransport{packets: splitPackets(data)}
		res, err := m.Server(st, testMagics(), hk, detRand(method))
		checkFuzzError(t, err)
		if err == nil {
			if res == nil || len(st.written) == 0 {
				t.Fatal("success without a reply")
			}
			hk.verify(t, res.HostKeyBlob, res.Signature, res.H)
		}
		if len(st.written) > 2 {
			t.Fatalf("server wrote %d messages", len(st.written))
		}
	})
}

// FuzzKexClient runs each method's Client against arbitrary server
// messages.
func FuzzKexClient(f *testing.F) {
	hk := newTestHostKey()
	for i, name := range Names() {
		m, _ := New(name, nil)
		run := runKex(f, m, m, hk, detRand(byte(i)), detRand(byte(i+1)))
		if run.serverErr == nil {
			f.Add(byte(i), joinPackets(run.s2c...))
		}
	}
	names := Names()
	f.Fuzz(func(t *testing.T, method byte, data []byte) {
		name := names[int(method)%len(names)]
		m, _ := New(name, nil)
		st := &scriptTransport{packets: splitPackets(data)}
		res, err := m.Client(st, testMagics(), detRand(method))
		checkFuzzError(t, err)
		if err == nil && (res == nil || len(res.H) != res.Hash.Size()) {
			t.Fatal("success without a proper result")
		}
	})
}

// FuzzParseModuli: no panics, and every group returned has the promised
// shape.
func FuzzParseModuli(f *testing.F) {
	f.Add([]byte(moduliLine(modpGroup14Hex, 2048, "2")))
	f.Add([]byte("# comment\n\n" + moduliLine(modpGroup15Hex, 3072, "5")))
	f.Add([]byte("20250101000000 2 6 100 2047 2 " + strings.Repeat("f", 512) + "\n"))
	f.Add([]byte("20250101000000 2 6 100 7 2 e3\n"))
	f.Add([]byte("1 2 3 4 5 6\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		groups, err := ParseModuli(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(groups) > MaxModuliGroups {
			t.Fatalf("%d groups", len(groups))
		}
		for _, g := range groups {
			if g.Bits() < MinGEXBits || g.Bits() > MaxGEXBits || !g.valid() {
				t.Fatalf("ParseModuli returned a bad group of %d bits", g.Bits())
			}
		}
	})
}
