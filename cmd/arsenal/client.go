package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/ops"
)

// The client verbs talk to any node's operations API.

func isLoopbackURL(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		u, err = url.Parse("http://" + addr)
		if err != nil {
			return false
		}
	}
	return ops.DefaultOpenReads(u.Host)
}

func flagName(param string) string { return strings.ReplaceAll(param, "_", "-") }

// age is a short duration: seconds under an hour, then minutes.
func age(d time.Duration) time.Duration {
	if d < time.Hour {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}
