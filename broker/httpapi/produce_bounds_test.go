package httpapi

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeatBody is a 16 MiB (the default request limit) JSON body made of
// prefix, then item repeated, then suffix.
func repeatBody(prefix, item, suffix string) []byte {
	n := (16<<20 - len(prefix) - len(suffix)) / (len(item) + 1)
	var b bytes.Buffer
	b.WriteString(prefix)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
	}
	b.WriteString(suffix)
	return b.Bytes()
}

// TestProduceJSONAdmission (issue 11: batch bounds): a 16 MiB body of
// millions of {} (which decoded to ~1 GB before the per-message checks)
// is refused with REQUEST_TOO_LARGE naming the limit, and a message of a
// million empty headers with MESSAGE_TOO_LARGE, each after allocating a
// few MiB.
func TestProduceJSONAdmission(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		code string
		text string
	}{
		{"millions of messages", repeatBody(`{"messages":[`, `{}`, `]}`), wire.CodeRequestTooLarge, "more than 10000 messages"},
		{"millions of headers", repeatBody(`{"messages":[{"headers":{`, `"":""`, `}}]}`), wire.CodeMessageTooLarge, "more than 64 headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocDuring(func() { _, err = decodeProduce(tc.body) })
			t.Logf("%d-byte body: allocated %d KiB: %v", len(tc.body), alloc>>10, err)
			var ae *wire.APIError
			if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(ae.Message, tc.text) {
				t.Fatalf("decodeProduce = %v, want %s %q", err, tc.code, tc.text)
			}
			if alloc > 8<<20 {
				t.Fatalf("allocated %d MiB before refusing, want < 8 MiB", alloc>>20)
			}
		})
	}
	// Refused on purpose, unlike with Unmarshal.
	for _, body := range []string{`{"messages":[]}}`, `null]`, `{"messages":[],"messages":[{"value":"x"}]}`} {
		if _, err := decodeProduce([]byte(body)); err == nil {
			t.Errorf("%s accepted", body)
		}
	}
	// At the limit, accepted.
	msgs, err := decodeProduce([]byte(`{"messages":[` + strings.Repeat(`{},`, service.MaxProduceMessages-1) + `{}]}`))
	if err != nil || len(msgs) != service.MaxProduceMessages {
		t.Fatalf("%d messages: %d, %v", service.MaxProduceMessages, len(msgs), err)
	}
}

// decodeProduce accepts and refuses what decoding into
// wire.ProduceRequest strictly did, with the same messages.
func TestDecodeProduceAsStrict(t *testing.T) {
	for _, body := range []string{
		`{"messages":[{"key":"k","value":"v","headers":{"b":"2","a":"1"}},{"value_base64":"AAE=","queue":1}]}`,
		`{"messages":[]}`, `{"messages":null}`, `null`, `{}`, `{"Messages":[{"value":"x"}]}`,
		`{"messages":[{"headers":{"a":"1","a":"2","b":null}}]}`, `{"messages":[{"headers":null}]}`,
		`{"messages":[{"value":"x","value_base64":"eA=="}]}`, `{"messages":[{"value_base64":"!"}]}`,
		`{"messages":[{"nope":1}]}`, `{"nope":[]}`, `{"messages":[]} x`, `{"messages":[]}{}`, ``, `[]`, `"s"`,
		`{"messages":[{"headers":{"a":1}}]}`, `{"messages":[{"headers":[]}]}`, `{"messages":{}}`, `{"messages":[1]}`,
		`{"messages":[{"value":"x"}`, `{"messages":[{"queue":-1}]}`, `{"messages":[null,{"VALUE":"v","Key":null}]}`,
		`{"messages":[{"value":"a","value":null}]}`, `{"messages":[{"queue":"1"}]}`, `{"messages":[{"key":1}]}`,
		`{"messages":[{"headers":{"a":"1"},"headers":{"b":"2"}}]}`,
	} {
		got, gotErr := decodeProduce([]byte(body))
		want, wantErr := strictProduce([]byte(body))
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: got %v, strict decoding %v", body, gotErr, wantErr)
			continue
		}
		for i := range got {
			wire.SortHeaders(got[i].Headers)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", body, got, want)
		}
	}
}

// strictProduce is the decoder decodeProduce replaced.
func strictProduce(body []byte) ([]service.Message, error) {
	var req wire.ProduceRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	var msgs []service.Message
	for i, pm := range req.Messages {
		p := produceMessage{Key: pm.Key, Value: pm.Value, ValueBase64: pm.ValueBase64, Queue: pm.Queue}
		if pm.Headers != nil {
			p.Headers = []wire.Header{}
		}
		for k, v := range pm.Headers {
			p.Headers = append(p.Headers, wire.Header{Key: k, Value: []byte(v)})
		}
		wire.SortHeaders(p.Headers)
		m, err := p.message(i)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// FuzzDecodeProduceAsStrict: the streaming decoder accepts what decoding
// into wire.ProduceRequest strictly accepted, with the same messages,
// unless it refuses a request over its bounds; errors are API errors.
func FuzzDecodeProduceAsStrict(f *testing.F) {
	f.Add([]byte(`{"messages":[{"key":"k","value":"v","headers":{"a":"b","a":"c"}},{"value_base64":"AAE=","queue":1}]}`))
	f.Add([]byte(`{"Messages":[null,{"VALUE":"x","headers":null}]}`))
	f.Add([]byte(`{"messages":[{"headers":{"a":"1"},"headers":{"b":null}}]} `))
	f.Add([]byte(`{"messages":[{"value":"x","value_base64":"eA=="}],"messages":[]}`))
	f.Add([]byte(`{"messages":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := decodeProduce(body)
		want, wantErr := strictProduce(body)
		if gotErr != nil {
			var ae *wire.APIError
			if !errors.As(gotErr, &ae) {
				t.Fatalf("non-API error %T: %v", gotErr, gotErr)
			}
			if ae.Code == wire.CodeRequestTooLarge || ae.Code == wire.CodeMessageTooLarge {
				return
			}
			// Stricter on purpose: the old decoder let a trailing } or ]
			// through (json.Decoder.More is false before them).
			// A repeated "messages" is refused too.
			if strings.HasSuffix(ae.Message, "trailing data") || strings.HasSuffix(ae.Message, "given twice") || strings.Count(strings.ToLower(string(body)), `"messages"`) > 1 {
				return
			}
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("got %v, strict decoding %v", gotErr, wantErr)
		}
		for i := range got {
			wire.SortHeaders(got[i].Headers)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}
