package ops

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// OpenAPIVersion is the version of the OpenAPI document served at GET
// /api/v1/arsenal/docs.
const OpenAPIVersion = "3.1.0"

// Patterns that document, for generated clients, the text forms the
// server parses. The server's parsers remain the authority.
const (
	durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
	pidPattern      = `^[0-9]+\.[0-9A-Za-z]+@[A-Za-z0-9._@:\[\]-]{1,255}$`
	nodePattern     = `^[A-Za-z0-9._@:\[\]-]{1,255}$`
)

type obj = map[string]any

func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

// schemaOf is the JSON Schema of a value of type t for parameter p.
// Bounds go to the list itself for lists, not to its items.
func schemaOf(p *param, t Type, top bool) obj {
	s := obj{}
	bounds := func(lo, hi string) {
		if !top {
			return
		}
		if p.Min != nil {
			s[lo] = jsonNumber(*p.Min, t != TypeFloat)
		}
		if p.Max != nil {
			s[hi] = jsonNumber(*p.Max, t != TypeFloat)
		}
	}
	switch t {
	case TypeString:
		s["type"] = "string"
		if p.Pattern != "" {
			s["pattern"] = p.Pattern
		}
		bounds("minLength", "maxLength")
	case TypeInt:
		s["type"], s["format"] = "integer", "int64"
		bounds("minimum", "maximum")
	case TypeFloat:
		s["type"], s["format"] = "number", "double"
		bounds("minimum", "maximum")
	case TypeBool:
		s["type"] = "boolean"
	case TypeDuration:
		s["type"], s["format"], s["pattern"] = "string", "go-duration", durationPattern
		var b []string
		if p.MinDuration != 0 {
			b = append(b, "at least "+p.MinDuration.String())
			s["x-minimum-duration"] = p.MinDuration.String()
		}
		if p.MaxDuration != 0 {
			b = append(b, "at most "+p.MaxDuration.String())
			s["x-maximum-duration"] = p.MaxDuration.String()
		}
		desc := `A Go duration such as "500ms", "5s" or "1m30s", not negative`
		if len(b) > 0 {
			desc += ", " + strings.Join(b, " and ")
		}
		s["description"] = desc + "."
	case TypePID:
		s["type"], s["format"], s["pattern"] = "string", "arsenal-pid", pidPattern
		s["examples"] = []string{"42.lx3k2f9a1@api@127.0.0.1"}
	case TypeNode:
		s["type"], s["pattern"] = "string", nodePattern
	case TypeEnum:
		s["type"], s["enum"] = "string", p.Enum
	case TypeList:
		s["type"] = "array"
		s["items"] = schemaOf(p, p.item, false)
		bounds("minItems", "maxItems")
	case TypeObject:
		// Any members: said explicitly, or generators make an empty struct.
		s["type"], s["additionalProperties"] = "object", true
	}
	if top && p.Default != nil {
		s["default"] = jsonValue(p.Default)
	}
	return s
}

// jsonNumber writes whole bounds as integers: 1000, not 1000.0 or 1e3.
func jsonNumber(f float64, whole bool) any {
	if whole {
		return int64(f)
	}
	return f
}

var errorResponses = []struct {
	status, name, desc string
	schema             string
}{
	{"400", "BadRequest", "Malformed request: bad JSON body or query string.", "Error"},
	{"401", "Unauthorized", "No token, or an unknown one.", "Error"},
	{"403", "Forbidden", "The caller's role is too low, or the target is protected.", "Error"},
	{"404", "NotFound", "Unknown process, node, trace or operation.", "Error"},
	{"405", "MethodNotAllowed", "Answered to a method this path does not take (the Allow header lists the ones it does).", "Error"},
	{"409", "Conflict", "The request does not fit the current state.", "Error"},
	{"413", "PayloadTooLarge", "The request body is over the size limit (1 MiB unless configured).", "Error"},
	{"422", "ValidationFailed", "Invalid parameters; every offending field is listed.", "ValidationError"},
	{"500", "Internal", "A bug.", "Error"},
	{"503", "Unavailable", "A node is unreachable, or this node is on the minority side.", "Error"},
	{"504", "GatewayTimeout", "The operation did not finish within its timeout.", "Error"},
}

func openAPIComponents(defs obj) obj {
	responses := obj{}
	for _, r := range errorResponses {
		resp := obj{
			"description": r.desc,
			"content":     obj{"application/json": obj{"schema": ref("schemas", r.schema)}},
		}
		switch r.status {
		case "401":
			resp["headers"] = obj{"WWW-Authenticate": obj{
				"description": "Bearer",
				"schema":      obj{"type": "string"},
			}}
		case "405":
			resp["headers"] = obj{"Allow": obj{
				"description": "The methods this path takes.",
				"schema":      obj{"type": "string"},
			}}
		}
		responses[r.name] = resp
	}
	errorBody := func(details obj) obj {
		return obj{
			"type":     "object",
			"required": []string{"code", "message"},
			"properties": obj{
				"code":    obj{"type": "string", "description": "Stable, machine-readable: noproc, timeout, node_unreachable, validation_failed…"},
				"message": obj{"type": "string", "description": "For people."},
				"details": details,
			},
		}
	}
	schemas := obj{
		"Meta": obj{
			"type":     "object",
			"required": []string{"operation", "node", "duration_ms"},
			"properties": obj{
				"operation":   obj{"type": "string"},
				"node":        obj{"type": "string", "description": "The node that answered."},
				"duration_ms": obj{"type": "number", "description": "Time spent answering, in milliseconds."},
				"target_node": obj{"type": "string", "description": "The node that ran the operation, for an operation on a process or trace."},
				"unreachable_nodes": obj{"type": "object", "additionalProperties": obj{"type": "string"},
					"description": "For a cluster-wide read: each node that did not answer, with the reason. Absent when every node answered."},
			},
			"additionalProperties": true,
		},
		"Error": obj{
			"type":       "object",
			"required":   []string{"error"},
			"properties": obj{"error": errorBody(obj{"description": "More about the error; its shape depends on the code."}), "meta": ref("schemas", "Meta")},
		},
		"ValidationError": obj{
			"type":     "object",
			"required": []string{"error"},
			"properties": obj{
				"error": errorBody(obj{"type": "array", "items": ref("schemas", "FieldError")}),
				"meta":  ref("schemas", "Meta"),
			},
		},
		"FieldError": obj{
			"type":     "object",
			"required": []string{"field", "in", "reason"},
			"properties": obj{
				"field":  obj{"type": "string"},
				"in":     obj{"type": "string", "enum": []string{"path", "query", "body"}},
				"reason": obj{"type": "string"},
			},
		},
		"StreamEnd": obj{
			"type": "object", "required": []string{"reason"},
			"properties": obj{"reason": obj{"type": "string", "description": "Why the server ended the stream (server_shutdown)."}},
		},
		"StreamError": obj{
			"type": "object", "required": []string{"error", "status"},
			"properties": obj{"error": errorBody(obj{}), "status": obj{"type": "integer"}},
		},
	}
	for name, s := range defs {
		if _, clash := schemas[name]; clash {
			panic("ops: answer type " + name + " has the name of a built-in schema; rename it")
		}
		schemas[name] = s
	}
	return obj{
		"securitySchemes": obj{"bearer": obj{
			"type": "http", "scheme": "bearer",
			"description": "A token from the server's token file; its role (viewer or operator) decides what it may run.",
		}},
		"responses": responses,
		"schemas":   schemas,
	}
}

func envelopeSchema(data obj) obj {
	return obj{
		"type":     "object",
		"required": []string{"data", "meta"},
		"properties": obj{
			"data": data,
			"meta": ref("schemas", "Meta"),
		},
	}
}

// openAPI builds the OpenAPI 3.1 document of the operations.
func openAPI(entries []*entry, openReads bool) obj {
	return openAPIWith(newSchemaGen(), entries, openReads)
}

// openAPIWith builds the document with g, which then names every answer
// type the way the document does.
func openAPIWith(g *schemaGen, entries []*entry, openReads bool) obj {
	paths := obj{}
	tags := []string{"arsenal"}
	bearer := []obj{{"bearer": []string{}}}
	openOrBearer := []obj{{}, {"bearer": []string{}}}
	for _, e := range entries {
		op := e.op
		if !slices.Contains(tags, op.Category) {
			tags = append(tags, op.Category)
		}
		o := obj{
			"operationId": op.Name,
			"summary":     op.Summary,
			"tags":        []string{op.Category},
			"x-arsenal": obj{
				"dangerous":  op.Dangerous,
				"idempotent": op.Idempotent,
				"role":       op.Role,
				"timeout":    op.Timeout.String(),
				"cli":        CLIVerb(op.Name),
				"sensitive":  op.Sensitive,
			},
		}
		if op.Description != "" {
			o["description"] = op.Description
		}
		if openReads && op.Role == RoleViewer && !op.Dangerous && !op.Sensitive {
			o["security"] = openOrBearer
		} else {
			o["security"] = bearer
		}
		var params []obj
		props := obj{}
		var required []string
		for _, p := range e.params {
			if p.In == InBody {
				s := schemaOf(p, p.Type, true)
				if p.Description != "" {
					d, _ := s["description"].(string)
					s["description"] = strings.TrimSpace(p.Description + " " + d)
				}
				props[p.Name] = s
				if p.Required {
					required = append(required, p.Name)
				}
				continue
			}
			po := obj{"name": p.Name, "in": string(p.In), "required": p.Required, "schema": schemaOf(p, p.Type, true)}
			desc := p.Description
			if p.Type == TypeList {
				po["style"], po["explode"] = "form", true
				desc = strings.TrimSpace(desc + " Repeat the key or separate items with commas.")
			}
			if desc != "" {
				po["description"] = desc
			}
			params = append(params, po)
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if len(props) > 0 {
			s := obj{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				s["required"] = required
			}
			o["requestBody"] = obj{
				"required": len(required) > 0,
				"content":  obj{"application/json": obj{"schema": s}},
			}
		}
		var ok obj
		if op.Stream != nil {
			events := obj{}
			for _, name := range sortedKeys(op.Events) {
				es, err := g.schema(answerType(op.Events[name]))
				if err != nil {
					panic("ops: " + op.Name + ": checked at Register: " + err.Error())
				}
				events[name] = es
			}
			events["shutdown"] = ref("schemas", "StreamEnd")
			events["error"] = ref("schemas", "StreamError")
			ok = obj{"description": "A stream of Server-Sent Events. Each frame has an id: (resume with the Last-Event-ID header), " +
				"an event: name and one data: line of JSON whose schema x-arsenal-events gives by event name. " +
				"A comment line (\": heartbeat\") comes every heartbeat interval. The server ends the stream with a shutdown event when it stops.",
				"content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}, "x-arsenal-events": events}}}
		} else {
			ds, err := g.schema(e.resp)
			if err != nil {
				panic("ops: " + op.Name + ": checked at Register: " + err.Error())
			}
			ok = obj{"description": "Success.", "content": obj{"application/json": obj{"schema": envelopeSchema(ds)}}}
		}
		responses := obj{"200": ok}
		for _, r := range errorResponses {
			if r.status == "409" && op.Method == http.MethodGet {
				continue
			}
			responses[r.status] = ref("responses", r.name)
		}
		o["responses"] = responses
		item, _ := paths[op.Path].(obj)
		if item == nil {
			item = obj{}
			paths[op.Path] = item
		}
		item[strings.ToLower(op.Method)] = o
	}
	readSecurity := bearer
	if openReads {
		readSecurity = openOrBearer
	}
	builtin := func(id, summary string, ok obj) obj {
		return obj{"get": obj{
			"operationId": id, "summary": summary, "tags": []string{"arsenal"}, "security": readSecurity,
			"responses": obj{"200": ok, "401": ref("responses", "Unauthorized"), "403": ref("responses", "Forbidden")},
		}}
	}
	cat, err := g.schema(reflect.TypeFor[[]CatalogueEntry]())
	if err != nil {
		panic("ops: the catalogue's own type: " + err.Error())
	}
	paths[CataloguePath] = builtin("arsenal.operations", "The catalogue of operations", obj{
		"description": "Every operation with its parameters.",
		"content":     obj{"application/json": obj{"schema": envelopeSchema(cat)}},
	})
	paths[DocsPath] = builtin("arsenal.docs", "This OpenAPI document", obj{
		"description": "The OpenAPI document.",
		"content":     obj{"application/json": obj{"schema": obj{"type": "object"}}},
	})

	slices.Sort(tags[1:])
	tagList := make([]obj, 0, len(tags))
	for _, t := range tags {
		desc := "Operations on the " + t + "."
		if t == "arsenal" {
			desc = "The catalogue and this document."
		}
		tagList = append(tagList, obj{"name": t, "description": desc})
	}
	return obj{
		"openapi": OpenAPIVersion,
		"info": obj{
			"title":       "Arsenal operations API",
			"version":     "1",
			"description": "Operations on an Arsenal cluster. Every success is {data, meta}; every error is {error: {code, message, details}}.",
			"license":     obj{"name": "Apache-2.0", "identifier": "Apache-2.0"},
		},
		"servers":    []obj{{"url": "/", "description": "The node that serves this document; every node serves the same API."}},
		"tags":       tagList,
		"security":   bearer,
		"paths":      paths,
		"components": openAPIComponents(g.defs),
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
