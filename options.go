package arsenal

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// option is one setting of `arsenal node`, from a flag, an environment
// variable or the config file, in that order of precedence.
type option struct {
	flag, env, def, help string
	value                *string
}

type optionSet struct {
	opts []*option
	fs   *flag.FlagSet
}

func (o *optionSet) add(name, env, def, help string) *string {
	v := new(string)
	opt := &option{flag: name, env: env, def: def, help: help, value: v}
	o.opts = append(o.opts, opt)
	h := help
	if env != "" {
		h += " (env " + env + ")"
	}
	o.fs.StringVar(v, name, def, h)
	return v
}

// resolve fills options not given as flags from the environment, then
// from the config file (JSON object keyed by flag name), then defaults.
func (o *optionSet) resolve(configPath string) error {
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file := map[string]any{}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&file); err != nil {
			return fmt.Errorf("config file %s: not a JSON object: %w", configPath, err)
		}
		known := map[string]bool{}
		for _, opt := range o.opts {
			known[opt.flag] = true
		}
		var unknown []string
		for k := range file {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		if len(unknown) > 0 {
			return fmt.Errorf("config file %s: unknown keys %s (keys are the flag names of --help)", configPath, strings.Join(unknown, ", "))
		}
	}
	for _, opt := range o.opts {
		if set[opt.flag] {
			continue
		}
		if opt.env != "" {
			if v, ok := os.LookupEnv(opt.env); ok {
				*opt.value = v
				continue
			}
		}
		if v, ok := file[opt.flag]; ok {
			switch x := v.(type) {
			case string:
				*opt.value = x
			case []any:
				parts := make([]string, len(x))
				for i, e := range x {
					parts[i] = fmt.Sprint(e)
				}
				*opt.value = strings.Join(parts, ",")
			default:
				*opt.value = fmt.Sprint(x)
			}
		}
	}
	return nil
}
