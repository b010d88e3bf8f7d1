package ops

import (
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// CatalogueEntry describes one operation in the catalogue served at GET
// /api/v1/arsenal/operations. Clients (the CLI) build their calls from it.
type CatalogueEntry struct {
	Name        string        `json:"name"`
	Category    string        `json:"category"`
	Summary     string        `json:"summary"`
	Description string        `json:"description,omitempty"`
	Method      string        `json:"method"`
	Path        string        `json:"path"`
	Params      []ParamSchema `json:"params"`
	Dangerous   bool          `json:"dangerous"`
	Idempotent  bool          `json:"idempotent"`
	Timeout     string        `json:"timeout"` // a Go duration, "10s"
	Role        Role          `json:"role"`
	CLI         string        `json:"cli"`              // the CLI verb
	Stream      bool          `json:"stream,omitempty"` // answers with Server-Sent Events
	// Response names the schema of the answer's data in the OpenAPI
	// document (#/components/schemas/NAME), for a named struct type.
	Response string `json:"response,omitempty"`
	// Sensitive reads reveal message contents: they need a token even
	// where reads are open.
	Sensitive bool `json:"sensitive,omitempty"`
}

// ParamSchema is a parameter in the catalogue. Durations (defaults and
// bounds) are Go duration strings and PIDs their text form, so every
// value reads as it is typed.
type ParamSchema struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Type        Type     `json:"type"`
	In          In       `json:"in"`
	Required    bool     `json:"required"`
	Default     any      `json:"default,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	MinDuration string   `json:"min_duration,omitempty"`
	MaxDuration string   `json:"max_duration,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Items       Type     `json:"items,omitempty"`
}

func catalogue(entries []*entry) []CatalogueEntry {
	out := make([]CatalogueEntry, 0, len(entries))
	for _, e := range entries {
		op := e.op
		ce := CatalogueEntry{
			Name: op.Name, Category: op.Category, Summary: op.Summary, Description: op.Description,
			Method: op.Method, Path: op.Path, Params: make([]ParamSchema, 0, len(e.params)),
			Dangerous: op.Dangerous, Idempotent: op.Idempotent, Timeout: op.Timeout.String(),
			Role: op.Role, CLI: CLIVerb(op.Name), Stream: op.Stream != nil, Sensitive: op.Sensitive,
		}
		for _, p := range e.params {
			ps := ParamSchema{
				Name: p.Name, Description: p.Description, Type: p.Type, In: p.In, Required: p.Required,
				Default: jsonValue(p.Default), Enum: p.Enum, Min: p.Min, Max: p.Max, Pattern: p.Pattern,
			}
			if p.Type == TypeList {
				ps.Items = p.item
			}
			if p.MinDuration != 0 {
				ps.MinDuration = p.MinDuration.String()
			}
			if p.MaxDuration != 0 {
				ps.MaxDuration = p.MaxDuration.String()
			}
			ce.Params = append(ce.Params, ps)
		}
		out = append(out, ce)
	}
	return out
}

// jsonValue turns a Go parameter value into the JSON a client would send
// for it: durations as "5s" rather than nanoseconds.
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case []time.Duration:
		out := make([]string, len(x))
		for i, d := range x {
			out[i] = d.String()
		}
		return out
	case process.PID:
		return x.String()
	case []process.PID:
		out := make([]string, len(x))
		for i, p := range x {
			out[i] = p.String()
		}
		return out
	}
	return v
}
