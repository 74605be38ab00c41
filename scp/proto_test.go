package scp

import (
	"reflect"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, m := range []*fileMsg{
		{Mode: 0o644, Size: 0, Name: "empty"},
		{Mode: 0o755, Size: 1 << 40, Name: "big file with spaces"},
		{Dir: true, Mode: 0o700, Name: "-dir"},
		{Mode: 0o7, Size: 3, Name: `q"u'o\te`},
	} {
		b := m.appendTo(nil)
		var got fileMsg
		if err := got.unmarshal(string(b[:len(b)-1])); err != nil || !reflect.DeepEqual(&got, m) {
			t.Errorf("%q: got %+v, %v", b, got, err)
		}
	}
	if got := string((&fileMsg{Mode: 0o644, Size: 12, Name: "a b"}).appendTo(nil)); got != "C0644 12 a b\n" {
		t.Errorf("C record %q", got)
	}
	if got := string((&fileMsg{Dir: true, Mode: 0o755, Name: "d"}).appendTo(nil)); got != "D0755 0 d\n" {
		t.Errorf("D record %q", got)
	}
	tm := &timeMsg{Mtime: 1700000000, Atime: 1700000001, AtimeUsec: 5}
	if got := string(tm.appendTo(nil)); got != "T1700000000 0 1700000001 5\n" {
		t.Errorf("T record %q", got)
	}
	var tg timeMsg
	if err := tg.unmarshal("T1700000000 0 1700000001 5"); err != nil || tg != *tm {
		t.Errorf("T parse: %+v %v", tg, err)
	}
}

func TestRecordStrict(t *testing.T) {
	files := map[string]error{
		"C0644 5 name":                 nil,
		"C0644 5 a b c":                nil,
		"C0644 5 -x":                   nil,
		"C06445 name":                  errModeDelim,
		"C064 5 name":                  errBadMode,
		"C0648 5 name":                 errBadMode,
		"C 644 5 name":                 errBadMode,
		"C0644  5 name":                errSizeMissing,
		"C0644 -5 name":                errSizeMissing,
		"C0644 5":                      errSizeDelim,
		"C0644 5x name":                errSizeDelim,
		"C0644 99999999999999999999 n": errBadSize,
		"C0644 5 ":                     errBadName,
		"C0644 5 .":                    errBadName,
		"C0644 5 ..":                   errBadName,
		"C0644 5 a/b":                  errBadName,
		"C0644 5 /etc":                 errBadName,
		"C0644 5 a\x00":                errBadName,
		"X0644 5 a":                    errExpectedControl,
		"C":                            errBadMode,
	}
	for line, want := range files {
		var m fileMsg
		if err := m.unmarshal(line); err != want {
			t.Errorf("%q: %v, want %v", line, err, want)
		}
	}
	var m fileMsg
	if err := m.unmarshal("C4755 5 x"); err != nil || m.Mode != 0o755 {
		t.Errorf("setuid bit kept: %v %o", err, m.Mode)
	}
	times := map[string]error{
		"T1 0 2 0":            nil,
		"T1 0000001 2 999999": nil,
		"T1 0 2":              errAtimeDelim,
		"T1 0 2 0 ":           errAtimeUsecDelim,
		"T1  0 2 0":           errMtimeUsecDelim,
		"T-1 0 2 0":           errMtimeMissing,
		"T":                   errMtimeMissing,
		"T1x 0 2 0":           errMtimeDelim,
		"T1 1000000 2 0":      errMtimeUsecDelim,
		"T1 0 x 0":            errAtimeMissing,
		"T1 0 2 1000000":      errAtimeUsecDelim,
		"T1 0 2 +0":           errAtimeUsecDelim,
		"C1 0 2 0":            errExpectedControl,
		// Well formed, but later than the times vfs can set: ignored,
		// not a protocol error (scp.c: out of time_t's range).
		"T15300000000 0 2 0":          errTimesOutOfRange,
		"T1 0 99999999999999999999 0": errTimesOutOfRange,
	}
	for line, want := range times {
		var m timeMsg
		if err := m.unmarshal(line); err != want {
			t.Errorf("%q: %v, want %v", line, err, want)
		}
	}
	var e endDirMsg
	if e.unmarshal("E") != nil || e.unmarshal("Ex") != errTrailing || e.unmarshal("") != errExpectedControl {
		t.Error("E record parsing")
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a b": true, "-rf": true, ".hidden": true, "...": true, `"q'`: true,
		"": false, ".": false, "..": false, "a/b": false, "/": false, "a\nb": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v", name, got)
		}
	}
}
