package ops

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

var inOrder = map[In]int{InPath: 0, InQuery: 1, InBody: 2}

// decode reads and validates every parameter of a call from the path, the
// query string and the JSON body (already read, within the size limit).
// It reports every offending field at once, so a caller fixes a request in
// one round trip. A value is never replaced by a default: defaults fill
// only parameters that are absent.
func (e *entry) decode(r *http.Request, body []byte) (Params, *Error) {
	ps := make(Params, len(e.params))
	var errs []FieldError

	for _, p := range e.params {
		if p.In == InPath {
			var v any
			v, errs = p.parseQuery([]string{r.PathValue(p.Name)}, errs)
			if v != nil {
				ps[p.Name] = v
			}
		}
	}

	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			// Go's own r.URL.Query() would silently drop the bad pair.
			return nil, BadRequest("malformed query string: " + err.Error())
		}
		for key, values := range q {
			p := e.byName[key]
			if p == nil || p.In != InQuery {
				errs = append(errs, FieldError{Field: key, In: InQuery, Reason: e.unknown(p, InQuery)})
				continue
			}
			var v any
			v, errs = p.parseQuery(values, errs)
			if v != nil {
				ps[key] = v
			}
		}
	}

	if len(bytes.TrimSpace(body)) > 0 {
		fields, err := decodeObject(body)
		if err != nil {
			return nil, err
		}
		for key, raw := range fields {
			p := e.byName[key]
			if p == nil || p.In != InBody {
				errs = append(errs, FieldError{Field: key, In: InBody, Reason: e.unknown(p, InBody)})
				continue
			}
			var v any
			v, errs = p.parseJSON(raw, errs)
			if v != nil {
				ps[key] = v
			}
		}
	}

	for _, p := range e.params {
		if _, given := ps[p.Name]; given || hasError(errs, p) {
			continue
		}
		switch {
		case p.Required:
			errs = append(errs, FieldError{Field: p.Name, In: p.In, Reason: "is required"})
		case p.Default != nil:
			ps[p.Name] = p.Default
		}
	}

	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b FieldError) int {
			return cmp.Or(cmp.Compare(inOrder[a.In], inOrder[b.In]), strings.Compare(a.Field, b.Field))
		})
		var fields []string
		for _, fe := range errs {
			if !slices.Contains(fields, fe.Field) {
				fields = append(fields, fe.Field)
			}
		}
		return nil, &Error{
			Status:  http.StatusUnprocessableEntity,
			Code:    "validation_failed",
			Message: fmt.Sprintf("invalid parameters for %s: %s", e.op.Name, strings.Join(fields, ", ")),
			Details: errs,
		}
	}
	return ps, nil
}

func hasError(errs []FieldError, p *param) bool {
	for _, fe := range errs {
		if fe.Field == p.Name && fe.In == p.In {
			return true
		}
	}
	return false
}

// unknown explains why a field is not accepted where it was given.
func (e *entry) unknown(p *param, given In) string {
	if p != nil {
		switch p.In {
		case InBody:
			return "is a body parameter: send it in the JSON body"
		case InQuery:
			return "is a query parameter: send it in the query string"
		case InPath:
			return "is a path parameter: it is part of the URL path " + e.op.Path
		}
	}
	known := names(e.params, given)
	if known == "" {
		return fmt.Sprintf("unknown parameter (%s takes no %s parameters)", e.op.Name, given)
	}
	return fmt.Sprintf("unknown parameter (%s parameters are: %s)", given, known)
}

// decodeObject decodes a body that must be one JSON object. Numbers stay
// json.Number so that 1.5 for an int, or an int beyond 2^53, is caught
// rather than rounded.
func decodeObject(body []byte) (map[string]any, *Error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, BadRequest("malformed JSON body: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, BadRequest("malformed JSON body: data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, BadRequest("the JSON body must be an object of parameters, got " + jsonKind(v))
	}
	return m, nil
}
