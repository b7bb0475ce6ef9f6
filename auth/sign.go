package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint is a token to sign: what a backend puts in the tokens it hands its users (the
// `wsgate token` command and tests sign with it; a backend in another language uses its own JWT
// library, see docs/auth.md).
type Mint struct {
	Sub       string
	Channels  []string // omitted when nil: the token allows the personal channel only
	Publish   []string // omitted when nil
	Audience  string   // "aud", omitted when empty
	Issuer    string   // "iss", omitted when empty
	IssuedAt  time.Time
	Expires   time.Time // "exp", omitted when zero
	NotBefore time.Time // "nbf", omitted when zero
}

// Sign signs m with key: a []byte secret (HS256), an *rsa.PrivateKey (RS256) or an
// *ecdsa.PrivateKey on P-256 (ES256).
func (m Mint) Sign(key any) (string, error) {
	var method jwt.SigningMethod
	switch key.(type) {
	case []byte:
		method = jwt.SigningMethodHS256
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		method = jwt.SigningMethodES256
	default:
		return "", fmt.Errorf("auth: cannot sign with a %T (want []byte, *rsa.PrivateKey or *ecdsa.PrivateKey)", key)
	}
	c := tokenClaims{Channels: m.Channels, Publish: m.Publish}
	c.Subject, c.Issuer = m.Sub, m.Issuer
	if m.Audience != "" {
		c.Audience = jwt.ClaimStrings{m.Audience}
	}
	if !m.IssuedAt.IsZero() {
		c.IssuedAt = jwt.NewNumericDate(m.IssuedAt)
	}
	if !m.Expires.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(m.Expires)
	}
	if !m.NotBefore.IsZero() {
		c.NotBefore = jwt.NewNumericDate(m.NotBefore)
	}
	return jwt.NewWithClaims(method, c).SignedString(key)
}
