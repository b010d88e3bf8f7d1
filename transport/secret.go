package transport

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Every key is derived from the cluster secret with its own label, so that a
// value shown or sent for one purpose (a fingerprint in an API, memberlist's
// gossip key, the link MAC key) never reveals or equals another.
const (
	labelFingerprint = "arsenal/v1/fingerprint"
	labelGossip      = "arsenal/v1/gossip-key"
	labelLink        = "arsenal/v1/link-auth"
)

// Fingerprint returns a short hex identifier of the secret (16 hex digits),
// safe to show in an API or a log so operators can tell whether two nodes hold
// the same secret without revealing it. It is one-way, and domain-separated
// from the keys the transport derives.
func Fingerprint(secret []byte) string {
	m := hmac.New(sha256.New, []byte(labelFingerprint))
	m.Write(secret)
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// GossipKey derives the 32-byte key for memberlist.Config.SecretKey from the
// cluster secret with HKDF-SHA256. The cluster name is part of the
// derivation, so two clusters sharing a secret by accident still cannot
// decrypt each other's gossip.
func GossipKey(secret []byte, clusterName string) []byte {
	return derive(secret, labelGossip, clusterName)
}

// linkKey is the HMAC key for the link handshake.
func linkKey(secret []byte, clusterName string) []byte {
	return derive(secret, labelLink, clusterName)
}

func derive(secret []byte, label, clusterName string) []byte {
	// hkdf.Key only fails for lengths above 255*32 bytes.
	k, err := hkdf.Key(sha256.New, secret, []byte(label), clusterName, 32)
	if err != nil {
		panic("transport: hkdf: " + err.Error())
	}
	return k
}
