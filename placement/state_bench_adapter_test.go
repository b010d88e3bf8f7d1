package placement

import "github.com/arsenal-go/arsenal/cluster/crdt"

func benchEncode(rs []*Record) []byte         { return crdt.Encode(rs) }
func benchDecode(b []byte) ([]*Record, error) { return crdt.Decode[Record](b) }
