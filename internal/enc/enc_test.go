package enc

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var w Writer
	w.U8(7)
	w.U16(65535)
	w.U32(1 << 31)
	w.U64(math.MaxUint64)
	w.Uvarint(300)
	w.Varint(-5)
	w.Bool(true)
	w.Bytes([]byte("abc"))
	w.String("")
	r := NewReader(w.B)
	if r.U8() != 7 || r.U16() != 65535 || r.U32() != 1<<31 || r.U64() != math.MaxUint64 || r.Uvarint() != 300 ||
		r.Varint() != -5 || !r.Bool() || !bytes.Equal(r.Bytes(), []byte("abc")) || r.String() != "" {
		t.Fatal("values differ after a round trip")
	}
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("err %v, %d bytes left", r.Err(), r.Len())
	}
}

func TestHostileInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(*Reader)
	}{
		{"short u64", []byte{1, 2}, func(r *Reader) { r.U64() }},
		{"length beyond input", []byte{200, 1, 'a'}, func(r *Reader) { r.Bytes() }},
		{"bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(r *Reader) { r.Uvarint() }},
		{"count too large", []byte{100, 0, 0}, func(r *Reader) { r.Count(1) }},
		{"bad bool", []byte{2}, func(r *Reader) { r.Bool() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.in)
			tc.read(r)
			if r.Err() == nil {
				t.Fatal("no error")
			}
			if r.U64() != 0 || r.String() != "" { // the error sticks
				t.Fatal("reads after an error returned data")
			}
		})
	}
	if r := NewReader([]byte{1}); r.U16() != 0 || !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("short read: %v", r.Err())
	}
}

// FuzzReader: no input makes a reader panic or allocate beyond its input.
func FuzzReader(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		for r.Err() == nil && r.Len() > 0 {
			n := r.Count(1)
			for i := 0; i < n && r.Err() == nil; i++ {
				_ = r.Bytes()
				_ = r.Varint()
			}
		}
	})
}

func TestEnd(t *testing.T) {
	r := NewReader([]byte{1, 2})
	r.U8()
	if err := r.End(); err == nil {
		t.Fatal("a trailing byte went unnoticed")
	}
	r = NewReader([]byte{1})
	if r.U8(); r.End() != nil {
		t.Fatal("a reader that read everything reports an error")
	}
}
