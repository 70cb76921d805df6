package server

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/tierchaos/tierchaos/system/api"
)

// decode reads the JSON body of r, at most the configured size, into v
// (see DecodeJSON); the body must be declared application/json.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes)
	return DecodeJSON(body, v)
}

// DecodeJSON decodes exactly one JSON object from r into v, strictly:
// a null or non-object body, keys that are unknown or differ from the
// field names in case (encoding/json alone matches them case-insensitively),
// duplicate keys at any level, and trailing data are rejected. Every
// failure is an *api.Error (invalid_argument or payload_too_large).
func DecodeJSON(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return decodeError(err)
	}
	if err := checkStrict(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}

// checkStrict walks the tokens of data against type t: one object, known
// exact-case keys, no duplicate keys, nothing after it.
func checkStrict(data []byte, t reflect.Type) error {
	rest := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(rest) == 0:
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: empty body")
	case bytes.HasPrefix(rest, []byte("null")):
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: the body is null; send a JSON object")
	case rest[0] != '{':
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := walk(dec, t, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: trailing data after the body")
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// structural reports whether a value of t may hold a JSON object whose
// keys matter (a struct or map somewhere inside).
func structural(t reflect.Type) bool {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		t = t.Elem()
	}
	return t == nil || t.Kind() == reflect.Struct || t.Kind() == reflect.Map || t.Kind() == reflect.Interface
}

// walk consumes one value from dec, checking the keys of every object
// against t (nil: unknown type, only duplicates are checked).
func walk(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil
	}
	if t != nil && !structural(t) {
		// Numbers, strings, slices of them: skip the value in one go (type
		// mismatches are reported by the decoding proper).
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return decodeError(err)
		}
		return nil
	}
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = jsonFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return decodeError(err)
			}
			key, _ := kt.(string)
			at := path + "." + key
			if path == "" {
				at = key
			}
			if seen[key] {
				return api.Errorf(api.CodeInvalidArgument, "malformed JSON: duplicate key %q", at)
			}
			seen[key] = true
			ft := elem
			if fields != nil {
				var known bool
				if ft, known = fields[key]; !known {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return api.Errorf(api.CodeInvalidArgument, "malformed JSON: unknown field %q (field names are case-sensitive: %q)", at, name)
						}
					}
					return api.Errorf(api.CodeInvalidArgument, "malformed JSON: unknown field %q", at)
				}
			}
			if err := walk(dec, ft, at); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return decodeError(err)
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			n, _, _ := strings.Cut(tag, ",")
			if n == "-" {
				continue
			}
			if n != "" {
				name = n
			}
		}
		out[name] = f.Type
	}
	return out
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return api.Errorf(api.CodePayloadTooLarge, "request body exceeds %d bytes", mbe.Limit)
	case errors.As(err, &ute):
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: field %q: cannot use %s as %s", ute.Field, ute.Value, ute.Type)
	case errors.As(err, &se):
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.EOF):
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: unexpected end of body")
	default:
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return api.Errorf(api.CodeInvalidArgument, "malformed JSON: %s", msg)
	}
}
