package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
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
		h.Set(headerPrefix+name, fmt.Sprint(v))
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

func decodeStructured(data []byte) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("structured CloudEvent: %w", err)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	return e, nil
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
	return e, nil
}
