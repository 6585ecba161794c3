package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Bounds on a key set: a JWKS document is the IdP's to write, but a
// compromised or misconfigured one must not cost the gateway much.
const (
	maxJWKSKeys   = 100
	maxKidBytes   = 256
	minRSABits    = 2048
	maxRSABits    = 8192 // verification cost grows with the modulus
	maxRSAExpBits = 32
)

// family is the kind of key a signing algorithm needs.
type family uint8

const (
	famNone family = iota
	famRSA
	famP256
	famP384
	famEd25519
)

// algFamily returns the key family alg verifies with; famNone for an
// algorithm no JWKS key may serve (HS256, none, anything unknown).
func algFamily(alg string) family {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return famRSA
	case "ES256":
		return famP256
	case "ES384":
		return famP384
	case "EdDSA":
		return famEd25519
	}
	return famNone
}

// verifyKey is one public key of an issuer's JWKS.
type verifyKey struct {
	kid string
	alg string // the JWK's "alg", "" when absent
	fam family
	pub crypto.PublicKey
}

// fits reports whether k may verify a token signed with alg: the key's
// type and curve must be alg's family, and a JWK that names its algorithm
// serves only that one.
func (k *verifyKey) fits(alg string) bool {
	return k.fam != famNone && k.fam == algFamily(alg) && (k.alg == "" || k.alg == alg)
}

// keySet is a parsed JWKS: keys by kid, and all of them for tokens without
// a kid.
type keySet struct {
	byKid map[string]*verifyKey
	all   []*verifyKey
}

// find returns the key for a token's kid and alg, nil when none fits. A
// token without a kid is verified only when exactly one key fits its
// algorithm, so it can never be tried against several.
func (s *keySet) find(kid, alg string) *verifyKey {
	if s == nil {
		return nil
	}
	if kid != "" {
		if k := s.byKid[kid]; k != nil && k.fits(alg) {
			return k
		}
		return nil
	}
	var found *verifyKey
	for _, k := range s.all {
		if k.fits(alg) {
			if found != nil {
				return nil
			}
			found = k
		}
	}
	return found
}

// has reports whether the set knows kid at all.
func (s *keySet) has(kid string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byKid[kid]
	return ok
}

// jwk is the part of a JSON Web Key the gateway reads. Certificate chains
// (x5c, x5u) and private members are ignored.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWKS document. Keys the gateway cannot use (for
// encryption, of an unknown type, malformed or too weak) are skipped; a
// document that is not a key set, holds more than maxJWKSKeys keys, or
// yields no usable key is an error. Two usable keys with one kid are an
// error too: which one a token meant would be ambiguous.
func parseJWKS(doc []byte) (*keySet, error) {
	var d struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, errors.New("JWKS is not a JSON key set")
	}
	if len(d.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS holds %d keys, more than %d", len(d.Keys), maxJWKSKeys)
	}
	s := &keySet{byKid: map[string]*verifyKey{}}
	for _, raw := range d.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			continue
		}
		if k.kid != "" {
			if _, dup := s.byKid[k.kid]; dup {
				return nil, errors.New("JWKS holds two keys with one kid")
			}
			s.byKid[k.kid] = k
		}
		s.all = append(s.all, k)
	}
	if len(s.all) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return s, nil
}

// parseJWK parses one public signing key.
func parseJWK(raw []byte) (*verifyKey, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, errors.New("not a signing key")
	}
	if len(j.Kid) > maxKidBytes {
		return nil, errors.New("kid too long")
	}
	if j.Alg != "" && algFamily(j.Alg) == famNone {
		return nil, errors.New("unsupported alg")
	}
	k := &verifyKey{kid: j.Kid, alg: j.Alg}
	switch j.Kty {
	case "RSA":
		pub, err := rsaKey(j.N, j.E)
		if err != nil {
			return nil, err
		}
		k.fam, k.pub = famRSA, pub
	case "EC":
		var c elliptic.Curve
		switch j.Crv {
		case "P-256":
			c, k.fam = elliptic.P256(), famP256
		case "P-384":
			c, k.fam = elliptic.P384(), famP384
		default:
			return nil, errors.New("unsupported curve")
		}
		size := (c.Params().BitSize + 7) / 8
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("malformed EC key")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		k.pub = pub
	case "OKP":
		x, err := b64(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("malformed OKP key")
		}
		k.fam, k.pub = famEd25519, ed25519.PublicKey(x)
	default:
		return nil, errors.New("unsupported key type")
	}
	if k.alg != "" && algFamily(k.alg) != k.fam {
		return nil, errors.New("alg does not match the key")
	}
	return k, nil
}

func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	n, errN := b64(n64)
	e, errE := b64(e64)
	if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 {
		return nil, errors.New("malformed RSA key")
	}
	N := new(big.Int).SetBytes(n)
	E := new(big.Int).SetBytes(e)
	if N.BitLen() < minRSABits || N.BitLen() > maxRSABits {
		return nil, errors.New("RSA modulus size out of bounds")
	}
	if E.BitLen() > maxRSAExpBits || E.Int64() < 3 || E.Bit(0) == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	return &rsa.PublicKey{N: N, E: int(E.Int64())}, nil
}

// b64 decodes base64url without padding, tolerating padding some IdPs
// add.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
