package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestProduceRequestRoundTrip(t *testing.T) {
	parts := []ProducePart{{Topic: "a", Queue: 0, Batch: []byte("one")}, {Topic: "orders", Queue: 7, Batch: []byte{}},
		{Topic: "a", Queue: 1<<31 - 1, Batch: bytes.Repeat([]byte{9}, 1000)}}
	b, err := AppendProduceRequest([]byte("xx"), parts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeProduceRequest(b[2:])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(parts) {
		t.Fatalf("%d parts, want %d", len(got), len(parts))
	}
	for i := range parts {
		if got[i].Topic != parts[i].Topic || got[i].Queue != parts[i].Queue || !bytes.Equal(got[i].Batch, parts[i].Batch) {
			t.Fatalf("part %d: %+v, want %+v", i, got[i], parts[i])
		}
	}
}

func TestProduceRequestMalformed(t *testing.T) {
	good, _ := AppendProduceRequest(nil, []ProducePart{{Topic: "t", Queue: 1, Batch: []byte("abc")}})
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short":         good[:2],
		"version":       append([]byte{2}, good[1:]...),
		"no parts":      {ProduceVersion, 0, 0},
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"count too big": {ProduceVersion, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"queue":         {ProduceVersion, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0},
	} {
		if _, err := DecodeProduceRequest(b); !errors.Is(err, ErrBadProduceRequest) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := AppendProduceRequest(nil, make([]ProducePart, MaxProduceParts+1)); err == nil {
		t.Error("too many parts encoded")
	}
}

// FuzzDecodeProduceRequest: any body decodes or fails with
// ErrBadProduceRequest, never panics, and what decodes re-encodes to the
// same bytes.
func FuzzDecodeProduceRequest(f *testing.F) {
	good, _ := AppendProduceRequest(nil, []ProducePart{{Topic: "t", Queue: 1, Batch: []byte("abc")}, {Topic: "u", Batch: nil}})
	f.Add(good)
	f.Add([]byte{ProduceVersion, 1, 0, 1, 0, 't', 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := DecodeProduceRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadProduceRequest) {
				t.Fatalf("error %v does not wrap ErrBadProduceRequest", err)
			}
			return
		}
		again, err := AppendProduceRequest(nil, parts)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
