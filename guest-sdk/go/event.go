package sluice

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Event is one CloudEvent: its context attributes, extensions and data.
//
// Optional attributes are "" when absent (the CloudEvents spec forbids
// empty values for them). Data is nil when the event has none, and kept
// byte for byte otherwise.
type Event struct {
	ID          string
	Source      string
	Type        string
	SpecVersion string
	// Media type of Data, e.g. "application/json".
	DataContentType string
	DataSchema      string
	Subject         string
	// RFC 3339 timestamp, as the host received it.
	Time string
	// Extension attributes by lower-case name: each a string, bool or
	// int64 (the three types the JSON format tells apart).
	Extensions map[string]any
	Data       []byte
}

// JSON decodes the data into v; the error ("invalid JSON data: ...")
// fails the invocation with a 422 when the handler returns it.
func (e Event) JSON(v any) error {
	if e.Data == nil {
		return errors.New("invalid JSON data: the event has no data")
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("invalid JSON data: %w", err)
	}
	return nil
}

// Text is the data as a string ("" when there is none).
func (e Event) Text() string { return string(e.Data) }

// ToBuilder starts a reply from a copy of this event.
func (e Event) ToBuilder() *Builder {
	c := e
	c.Extensions = make(map[string]any, len(e.Extensions))
	for k, v := range e.Extensions {
		c.Extensions[k] = v
	}
	return &Builder{e: c}
}

// NewBuilder starts a new event of type typ (spec version 1.0).
func NewBuilder(typ string) *Builder {
	return &Builder{e: Event{Type: typ, SpecVersion: "1.0", Extensions: map[string]any{}}}
}

// Builder sets a reply's attributes in a chain; Build checks and returns it.
type Builder struct {
	e   Event
	err error
}

// ID sets the id.
func (b *Builder) ID(id string) *Builder { b.e.ID = id; return b }

// Source sets the source.
func (b *Builder) Source(source string) *Builder { b.e.Source = source; return b }

// Type sets the type.
func (b *Builder) Type(typ string) *Builder { b.e.Type = typ; return b }

// Subject sets the subject ("" removes it).
func (b *Builder) Subject(subject string) *Builder { b.e.Subject = subject; return b }

// Time sets the time, an RFC 3339 timestamp ("" removes it).
func (b *Builder) Time(time string) *Builder { b.e.Time = time; return b }

// DataSchema sets the data schema URI ("" removes it).
func (b *Builder) DataSchema(uri string) *Builder { b.e.DataSchema = uri; return b }

// Extension sets extension name to a string, bool or integer; nil
// removes it.
func (b *Builder) Extension(name string, value any) *Builder {
	switch v := value.(type) {
	case nil:
		delete(b.e.Extensions, name)
	case string, bool, int64:
		b.e.Extensions[name] = v
	case int:
		b.e.Extensions[name] = int64(v)
	case int32:
		b.e.Extensions[name] = int64(v)
	default:
		b.fail(fmt.Errorf("invalid reply: extension %q must be a string, bool or integer, not %T", name, value))
	}
	return b
}

// Data sets raw data and its media type ("" keeps the current one).
func (b *Builder) Data(data []byte, contentType string) *Builder {
	b.e.Data = data
	if contentType != "" {
		b.e.DataContentType = contentType
	}
	return b
}

// Text sets text data, "text/plain".
func (b *Builder) Text(s string) *Builder { return b.Data([]byte(s), "text/plain") }

// JSON sets v as compact JSON data, "application/json".
func (b *Builder) JSON(v any) *Builder {
	body, err := json.Marshal(v)
	if err != nil {
		b.fail(fmt.Errorf("invalid reply: encoding JSON data: %w", err))
		return b
	}
	return b.Data(body, "application/json")
}

func (b *Builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Build returns the event, or an error when a setter failed, the type is
// empty or an extension name is not lower-case a-z0-9.
func (b *Builder) Build() (*Event, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.e.Type == "" {
		return nil, errors.New("invalid reply: `type` must not be empty")
	}
	for name := range b.e.Extensions {
		if !validName(name) {
			return nil, fmt.Errorf("invalid reply: extension name %q must be lower-case a-z0-9", name)
		}
	}
	e := b.e
	return &e, nil
}

func validName(name string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
