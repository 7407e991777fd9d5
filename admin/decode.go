package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// readJSON reads r's body, at most limit bytes, and decodes it strictly into
// v: one JSON object, no unknown fields, nothing after it. Its errors are
// *httpError values that tell the client what to fix.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not JSON; send the body as application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than the %d bytes allowed", mbe.Limit)
		}
		return errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	return decodeJSON(body, v)
}

// decodeJSON decodes body strictly into v, which points to a struct.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return errorf(http.StatusBadRequest, "request body must be a JSON object ({...})")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, v, err)
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		for off < int64(len(body)) && strings.IndexByte(" \t\r\n", body[off]) >= 0 {
			off++
		}
		return errorf(http.StatusBadRequest, "request body has data after the JSON object at %s; send exactly one object", position(body, off))
	}
	return nil
}

// jsonError turns a decoding error into a message that says what to fix.
func jsonError(body []byte, v any, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "malformed JSON at %s: %v", position(body, syn.Offset-1), syn)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed JSON: the body ends inside the object at %s", position(body, int64(len(body))))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, "request body at %s: want %s, got %s", position(body, typ.Offset), kindOf(typ.Type), typ.Value)
		}
		msg := fmt.Sprintf("field %q must be %s, got %s (at %s)", typ.Field, kindOf(typ.Type), typ.Value, position(body, typ.Offset))
		if hint, ok := fieldHints[typ.Field]; ok {
			msg += "; " + hint
		}
		return errorf(http.StatusBadRequest, "%s", msg)
	}
	if name, ok := unknownField(err); ok {
		return errorf(http.StatusBadRequest, "unknown field %s; accepted fields: %s", name, fieldList(reflect.TypeOf(v)))
	}
	return errorf(http.StatusBadRequest, "request body: %v", err)
}

// unknownField returns the quoted name of the field that a Decoder with
// DisallowUnknownFields refused, as in `"ttl"`. encoding/json reports it
// only as the text "json: unknown field \"ttl\"", with no error type or
// value to test, so this is the one place that reads an error's text.
func unknownField(err error) (name string, ok bool) {
	return strings.CutPrefix(err.Error(), "json: unknown field ")
}

// fieldHints show the shape of fields that are easy to get wrong, by
// their path in a decoding error.
var fieldHints = map[string]string{
	"checks.headers": `headers map each name to a list of values, as in {"X-Probe":["yes"]}`,
	"checks.command": `command is the program and its arguments as a list, as in ["/usr/lib/nagios/plugins/check_disk","-w","10%"]`,
}

// position returns "line L, column C" for byte offset off of body.
func position(body []byte, off int64) string {
	off = max(0, min(off, int64(len(body))))
	line := 1 + bytes.Count(body[:off], []byte{'\n'})
	col := int(off) - bytes.LastIndexByte(body[:off], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// kindOf names the JSON kind that Go type t decodes from.
func kindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// fieldList lists the JSON fields of struct type t, and those of the
// structs it holds in slices ("checks: type, url, ..."), for messages about
// unknown fields.
func fieldList(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var top, nested []string
	for f := range t.Fields() {
		name := jsonName(f)
		if name == "" {
			continue
		}
		top = append(top, name)
		et := f.Type
		for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
			et = et.Elem()
		}
		if et.Kind() == reflect.Struct && et.NumField() > 0 && et.PkgPath() != "time" {
			var sub []string
			for sf := range et.Fields() {
				if n := jsonName(sf); n != "" {
					sub = append(sub, n)
				}
			}
			nested = append(nested, fmt.Sprintf("%s: %s", name, strings.Join(sub, ", ")))
		}
	}
	s := strings.Join(top, ", ")
	if len(nested) > 0 {
		s += " (" + strings.Join(nested, "; ") + ")"
	}
	return s
}

// jsonName returns the JSON name of an exported struct field, or "".
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}
