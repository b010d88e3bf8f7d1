package registry

import "github.com/arsenal-go/arsenal/cluster/crdt"

func benchEncode(es []*Entry) []byte         { return crdt.Encode(es) }
func benchDecode(b []byte) ([]*Entry, error) { return crdt.Decode[Entry](b) }
