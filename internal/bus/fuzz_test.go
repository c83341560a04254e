package bus

import (
	"bytes"
	"encoding/json"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// The fuzz targets of the event codec. `make test` runs their seed corpora
// (testdata/fuzz/<target>) as ordinary tests; `make fuzz` fuzzes each for
// FUZZTIME. A crasher that the fuzzer finds is written to testdata/fuzz and stays
// there, once fixed, as a regression test.

// wire returns the headers as a subscriber receives them: nats.go writes each
// value on one line (line breaks become spaces, surrounding space is trimmed) and
// the subscriber parses the block with nats.DecodeHeadersMsg.
func wire(t *testing.T, h nats.Header) nats.Header {
	t.Helper()
	var b strings.Builder
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + textproto.TrimString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v)) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	out, err := nats.DecodeHeadersMsg([]byte(b.String()))
	if err != nil {
		t.Fatalf("headers %q do not decode: %v", b.String(), err)
	}
	return out
}

// sameEvent fails unless got carries what want carries.
func sameEvent(t *testing.T, want, got cloudevents.Event) {
	t.Helper()
	str := func(e cloudevents.Event) map[string]string {
		m := map[string]string{
			"specversion": e.SpecVersion(), "id": e.ID(), "source": e.Source(), "type": e.Type(),
			"subject": e.Subject(), "dataschema": e.DataSchema(), "datacontenttype": e.DataContentType(),
		}
		if !e.Time().IsZero() {
			m["time"] = e.Time().UTC().Format(time.RFC3339Nano)
		}
		for k, v := range e.Extensions() {
			s, err := types.Format(v)
			if err != nil {
				t.Fatalf("extension %s=%v: %v", k, v, err)
			}
			m["ext:"+k] = s
		}
		return m
	}
	if w, g := str(want), str(got); !mapsEqual(w, g) {
		t.Fatalf("attributes changed in a round trip:\nwant %q\ngot  %q", w, g)
	}
	if !bytes.Equal(want.Data(), got.Data()) {
		t.Fatalf("data changed in a round trip:\nwant %q\ngot  %q", want.Data(), got.Data())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkDecoded checks what a consumer would do with a decoded message: an event
// that decodes survives Orca's own binary encoding unchanged, and parse either
// refuses the message or yields exactly one kind of event.
func checkDecoded(t *testing.T, subject string, h nats.Header, data []byte) {
	t.Helper()
	e, err := decode(h, data)
	if err == nil {
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		msg := encodeBinary(subject, e)
		again, err := decode(wire(t, msg.Header), msg.Data)
		if err != nil {
			t.Fatalf("Orca's encoding of a decoded event does not decode: %v\nheaders %q", err, msg.Header)
		}
		sameEvent(t, e, again)
	}
	d, err := parse(subject, h, data, 256<<10)
	if err != nil {
		if d != nil {
			t.Fatal("parse returned a delivery with an error")
		}
		return
	}
	if (d.Ignition == nil) == (d.Task == nil) {
		t.Fatalf("want exactly one of ignition and task event: %+v", d)
	}
	if d.Ignition != nil && !bytes.Equal(d.Ignition.Data, d.Event.Data()) {
		t.Fatal("ignition data differs from the event's")
	}
}

var fuzzSubjects = []string{"orca.ignited.default.ignitor1", "orca.task.succeeded.ns.task1", "orca.task.failed.ns.a.b", "orca.ignited.x"}

func FuzzDecodeBinary(f *testing.F) {
	f.Add(uint8(0), "ce-specversion: 1.0\r\nce-id: e-1\r\nce-source: ext\r\nce-type: cloud.sirocco.orca.ignited\r\ncontent-type: text/plain\r\n", []byte("hello"))
	f.Add(uint8(1), "ce-specversion: 1.0\r\nce-id: pod-uid\r\nce-source: orca/watcher\r\nce-type: cloud.sirocco.orca.task.succeeded\r\nce-subject: task1\r\nce-orcarun: r1\r\nce-time: 2026-11-25T10:00:00.5Z\r\ncontent-type: application/json\r\n",
		[]byte(`{"task":"task1","namespace":"ns","pod":"p","run":"r1","exitCode":0,"message":"42","finishedAt":"2026-11-25T10:00:00Z"}`))
	f.Add(uint8(2), "Ce-Specversion: 1.0\r\nCE-ID: x\r\nce-source: s\r\nce-type: cloud.sirocco.orca.task.failed\r\nce-dataschema: http://x\r\nce-ext1: v\r\n", []byte(`{"reason":"Error","exitCode":3}`))
	f.Add(uint8(0), "ce-specversion: 0.3\r\nce-id: x\r\n", []byte{0xff})
	f.Fuzz(func(t *testing.T, subject uint8, block string, data []byte) {
		h, err := nats.DecodeHeadersMsg([]byte("NATS/1.0\r\n" + block + "\r\n"))
		if err != nil {
			return
		}
		checkDecoded(t, fuzzSubjects[int(subject)%len(fuzzSubjects)], h, data)
	})
}

func FuzzDecodeStructured(f *testing.F) {
	f.Add(uint8(0), "", []byte(`{"specversion":"1.0","id":"s-1","source":"ext","type":"cloud.sirocco.orca.ignited","subject":"ignitor1","datacontenttype":"text/plain","data":"from json"}`))
	f.Add(uint8(1), "; charset=utf-8", []byte(`{"specversion":"1.0","id":"s-2","source":"ext","type":"cloud.sirocco.orca.task.succeeded","orcarun":"r1","time":"2026-11-25T10:00:00Z","datacontenttype":"application/json","data":{"task":"task1","namespace":"ns","message":"m","finishedAt":"2026-11-25T10:00:00Z"}}`))
	f.Add(uint8(2), "", []byte(`{"specversion":"1.0","id":"s-3","source":"ext","type":"cloud.sirocco.orca.task.failed","data_base64":"eyJleGl0Q29kZSI6MX0=","ext":true,"num":7}`))
	f.Add(uint8(0), "", []byte(`{"specversion":"1.0","id":"s-4","source":"ext","type":"cloud.sirocco.orca.ignited","dataschema":"http://example.com/s","data":null}`))
	f.Fuzz(func(t *testing.T, subject uint8, params string, body []byte) {
		h := nats.Header{}
		h.Set(headerContentType, mediaStructured+params)
		checkDecoded(t, fuzzSubjects[int(subject)%len(fuzzSubjects)], h, body)
	})
}

// FuzzIgnitionCodec checks that an ignition that Orca can publish reaches a
// consumer unchanged.
func FuzzIgnitionCodec(f *testing.F) {
	f.Add("uid-1-1764064800", "orca/scheduler", "default", "ignitor1", "", []byte("hello from ignitor1"))
	f.Add("ext-1", "billing-system", "team-a", "nightly.v2", "billing-42", []byte{0, 1, 2, 0xff})
	f.Add("id with spaces", "s", "ns", "n", "run", []byte(""))
	f.Fuzz(func(t *testing.T, id, source, ns, name, run string, data []byte) {
		ig := Ignition{ID: id, Source: source, Namespace: ns, Name: name, Run: run, Data: data}
		e, err := ig.Event()
		if err != nil {
			return
		}
		msg := encodeBinary(IgnitionSubject(ns, name), e)
		d, err := parse(msg.Subject, wire(t, msg.Header), msg.Data, 0)
		if ns == "" || strings.Contains(ns, ".") || name == "" {
			return // not a valid subject: the server refuses the publish
		}
		if err != nil {
			t.Fatalf("an ignition Orca publishes does not parse: %v", err)
		}
		if run == "" {
			run = id
		}
		got := d.Ignition
		if got == nil || got.ID != id || got.Source != source || got.Namespace != ns || got.Name != name || got.Run != run || !bytes.Equal(got.Data, data) {
			t.Fatalf("ignition changed in a round trip:\nwant %+v\ngot  %+v", ig, got)
		}
	})
}

// validJSONString returns s as a JSON round trip leaves it: each byte of an
// invalid UTF-8 sequence becomes U+FFFD.
func validJSONString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// FuzzTaskEventCodec checks that a task event that Orca can publish reaches a
// consumer unchanged (strings that are not UTF-8 come as JSON leaves them).
func FuzzTaskEventCodec(f *testing.F) {
	f.Add("pod-uid", "task1", "ns", "task1-abc", "run-7", "ignitor1", "42", "", int32(0), int64(1764064740e9), int64(1764064800e9), true)
	f.Add("pod-uid-2", "a.b", "ns", "p", "", "task0", "line one\nline two\x00\xff", "Error", int32(-1), int64(0), int64(1), false)
	f.Fuzz(func(t *testing.T, id, task, ns, pod, run, initiator, message, reason string, exitCode int32, started, finished int64, succeeded bool) {
		st := time.Unix(0, started).UTC()
		r := TaskResult{Task: task, Namespace: ns, Pod: pod, Run: run, Initiator: initiator, ExitCode: exitCode,
			Message: message, Reason: reason, StartedAt: &st, FinishedAt: time.Unix(0, finished).UTC()}
		te := TaskEvent{ID: id, Source: "orca/watcher", Succeeded: succeeded, Result: r}
		e, err := te.Event()
		if err != nil {
			return
		}
		msg := encodeBinary(TaskSubject(succeeded, ns, task), e)
		d, err := parse(msg.Subject, wire(t, msg.Header), msg.Data, 0)
		if ns == "" || strings.Contains(ns, ".") || task == "" {
			return
		}
		if err != nil {
			t.Fatalf("a task event Orca publishes does not parse: %v", err)
		}
		want := r
		for _, s := range []*string{&want.Task, &want.Namespace, &want.Pod, &want.Run, &want.Initiator, &want.Message, &want.Reason} {
			*s = validJSONString(*s)
		}
		if want.Run == "" {
			want.Run = id
		}
		got := d.Task
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got.Result)
		if got.ID != id || got.Succeeded != succeeded || !bytes.Equal(wj, gj) {
			t.Fatalf("task event changed in a round trip:\nwant %s %s\ngot  %s %s", id, wj, got.ID, gj)
		}
		if d.Run() != want.Run {
			t.Fatalf("run %q of the event differs from the run %q of its data", d.Run(), want.Run)
		}
	})
}
