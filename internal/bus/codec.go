package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Header names of the CloudEvents NATS protocol binding and of Orca.
const (
	headerPrefix      = "ce-"
	headerContentType = "content-type"
	// Structured content mode's media type.
	mediaStructured = "application/cloudevents+json"
)

// encodeBinary writes e as a NATS message in binary content mode.
func encodeBinary(subject string, e cloudevents.Event) *nats.Msg {
	msg := nats.NewMsg(subject)
	h := msg.Header
	h.Set(headerPrefix+"specversion", e.SpecVersion())
	h.Set(headerPrefix+"id", e.ID())
	h.Set(headerPrefix+"source", e.Source())
	h.Set(headerPrefix+"type", e.Type())
	if s := e.Subject(); s != "" {
		h.Set(headerPrefix+"subject", s)
	}
	if t := e.Time(); !t.IsZero() {
		h.Set(headerPrefix+"time", t.UTC().Format(time.RFC3339Nano))
	}
	if s := e.DataSchema(); s != "" {
		h.Set(headerPrefix+"dataschema", s)
	}
	if ct := e.DataContentType(); ct != "" {
		h.Set(headerContentType, ct)
	}
	for name, v := range e.Extensions() {
		if s, err := types.Format(v); err == nil {
			h.Set(headerPrefix+name, s)
		}
	}
	msg.Data = e.Data()
	return msg
}

// errNotCloudEvent marks a message that is not a CloudEvent in either content mode.
var errNotCloudEvent = errors.New("not a CloudEvent: no ce- headers and content-type is not " + mediaStructured)

// decode reads a CloudEvent from a NATS message in binary or structured content
// mode and validates its required attributes.
func decode(header nats.Header, data []byte) (cloudevents.Event, error) {
	ce := map[string]string{}
	contentType := ""
	for k, v := range header {
		if len(v) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		switch {
		case lk == headerContentType:
			contentType = v[0]
		case strings.HasPrefix(lk, headerPrefix):
			ce[strings.TrimPrefix(lk, headerPrefix)] = v[0]
		}
	}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == mediaStructured && len(ce) == 0 {
		return decodeStructured(data)
	}
	if len(ce) == 0 {
		return cloudevents.Event{}, errNotCloudEvent
	}
	return decodeBinary(ce, contentType, data)
}

// checkAttributes reports an attribute that is not a CloudEvents string (UTF-8
// without control characters) or that NATS headers cannot carry unchanged
// (nats.go turns line breaks into spaces and trims surrounding white space). Such
// an attribute would change when Orca publishes the event (or one that carries
// it, as task events carry the run id) in binary mode.
func checkAttributes(e cloudevents.Event) error {
	attrs := [][2]string{
		{"id", e.ID()}, {"source", e.Source()}, {"type", e.Type()}, {"subject", e.Subject()},
		{"dataschema", e.DataSchema()}, {"datacontenttype", e.DataContentType()},
	}
	for name, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return fmt.Errorf("invalid CloudEvent attribute %q: %w", name, err)
		}
		attrs = append(attrs, [2]string{name, s})
	}
	return checkValues(attrs...)
}

// checkValues checks attribute values, each given as {name, value}.
func checkValues(attrs ...[2]string) error {
	for _, a := range attrs {
		switch {
		case !utf8.ValidString(a[1]):
			return fmt.Errorf("invalid CloudEvent attribute %q: %q is not UTF-8", a[0], a[1])
		case strings.ContainsFunc(a[1], isControl):
			return fmt.Errorf("invalid CloudEvent attribute %q: %q has a control character", a[0], a[1])
		case a[1] != textproto.TrimString(a[1]):
			return fmt.Errorf("invalid CloudEvent attribute %q: %q has surrounding white space, which a NATS header cannot carry", a[0], a[1])
		}
	}
	return nil
}

// isControl reports the characters that CloudEvents strings must not hold:
// U+0000-U+001F and U+007F-U+009F. NATS headers cannot carry line breaks either.
func isControl(r rune) bool { return r <= 0x1f || (r >= 0x7f && r <= 0x9f) }

func decodeStructured(data []byte) (e cloudevents.Event, err error) {
	// The SDK's decoder panics on some malformed input ("data_base64" that is not
	// a string): that must not take the consumer down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("structured CloudEvent: malformed: %v", r)
		}
	}()
	e = cloudevents.NewEvent()
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("structured CloudEvent: %w", err)
	}
	if v := e.SpecVersion(); v != event.CloudEventsVersionV1 {
		return e, fmt.Errorf("invalid CloudEvent: specversion %q is not %s", v, event.CloudEventsVersionV1)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	return e, checkAttributes(e)
}

func decodeBinary(ce map[string]string, contentType string, data []byte) (cloudevents.Event, error) {
	version, ok := ce["specversion"]
	if !ok {
		return cloudevents.Event{}, errors.New("invalid CloudEvent: ce-specversion header missing")
	}
	if version != event.CloudEventsVersionV1 {
		return cloudevents.Event{}, fmt.Errorf("invalid CloudEvent: specversion %q is not %s", version, event.CloudEventsVersionV1)
	}
	e := cloudevents.NewEvent(version)
	for name, v := range ce {
		var err error
		switch name {
		case "specversion":
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "dataschema":
			e.SetDataSchema(v)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, v); err == nil {
				e.SetTime(t)
			}
		default:
			err = e.Context.SetExtension(name, v)
		}
		if err != nil {
			return e, fmt.Errorf("invalid CloudEvent attribute %q: %w", name, err)
		}
	}
	if contentType != "" {
		e.SetDataContentType(contentType)
	}
	if len(data) > 0 {
		e.DataEncoded = data
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	return e, checkAttributes(e)
}
