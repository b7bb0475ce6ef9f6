package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config says how connection tokens are checked. At least one of Secret and PublicKey must be
// set; with both, a token may use either (its "alg" header picks the key).
type Config struct {
	// Secret is the HS256 key (cmd/wsgate: -jwt-secret or WSGATE_JWT_SECRET).
	Secret []byte
	// PublicKey is a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY", or a
	// certificate): RSA for RS256, ECDSA P-256 for ES256 (cmd/wsgate: -jwt-public-key FILE).
	PublicKey []byte
	// Audience and Issuer, when set, must be the token's "aud" (one of them, if a list) and
	// "iss".
	Audience, Issuer string
	// Now is the wall clock tokens' times are checked against (tests); nil: time.Now.
	Now func() time.Time
}

// Limits of the keys and tokens accepted. Verification runs on the event loop (docs/auth.md
// explains why and what it costs): these bound its cost.
const (
	MinSecret  = 32   // bytes of an HS256 secret (RFC 7518 3.2: at least the hash's 256 bits)
	MinRSABits = 2048 // RSA keys shorter than this are refused
	// MaxRSABits: longer RSA keys are refused. Go verifies 2048-bit RSA in about 33 µs, in the
	// range of ES256; 3072 bits took 160-250 µs and 4096 bits 430 µs on the same host
	// (docs/auth.md), long enough for a reconnect storm to stall the loop.
	MaxRSABits = 2048
	MaxToken   = 4096 // bytes of a token; longer ones are refused as malformed without parsing
)

// Verifier checks connection tokens. Safe for concurrent use; immutable after NewVerifier.
type Verifier struct {
	secret  []byte
	rsaKey  *rsa.PublicKey
	ecKey   *ecdsa.PublicKey
	now     func() time.Time
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
}

// NewVerifier checks cfg's keys and returns a Verifier for them.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if len(cfg.Secret) == 0 && len(cfg.PublicKey) == 0 {
		return nil, errors.New("auth: no key (set a secret for HS256 or a public key for RS256/ES256)")
	}
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinSecret {
			return nil, fmt.Errorf("auth: the HS256 secret is %d bytes; use at least %d random bytes", len(cfg.Secret), MinSecret)
		}
		v.secret = append([]byte(nil), cfg.Secret...)
	}
	if len(cfg.PublicKey) > 0 {
		if err := v.parsePublicKey(cfg.PublicKey); err != nil {
			return nil, err
		}
	}
	opts := []jwt.ParserOption{jwt.WithTimeFunc(v.now)}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	v.keyFunc = v.key
	return v, nil
}

// parsePublicKey reads the first PEM block of pemBytes as an RSA or P-256 public key.
func (v *Verifier) parsePublicKey(pemBytes []byte) error {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return errors.New("auth: the public key is not PEM (want -----BEGIN PUBLIC KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return fmt.Errorf("auth: PEM block %q is not a public key (a private key must never be given to the gateway)", block.Type)
	}
	if err != nil {
		return fmt.Errorf("auth: public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("auth: RSA key of %d bits; want %d to %d", n, MinRSABits, MaxRSABits)
		}
		v.rsaKey = k
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("auth: ECDSA key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		v.ecKey = k
	default:
		return fmt.Errorf("auth: public key of type %T; want RSA (RS256) or ECDSA P-256 (ES256)", key)
	}
	return nil
}

// Algorithms lists the "alg" values this verifier accepts, for logs and docs.
func (v *Verifier) Algorithms() []string {
	var a []string
	if v.secret != nil {
		a = append(a, "HS256")
	}
	if v.rsaKey != nil {
		a = append(a, "RS256")
	}
	if v.ecKey != nil {
		a = append(a, "ES256")
	}
	return a
}

// Now is the verifier's wall clock.
func (v *Verifier) Now() time.Time { return v.now() }

var errAlgorithm = errors.New("algorithm not accepted")

// key picks the key for the token's algorithm: exactly HS256, RS256 or ES256 with the key
// configured for it. Anything else ("none", HS256 against a public key, RS384...) is refused
// before any signature is looked at.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch {
	case t.Method == jwt.SigningMethodHS256 && v.secret != nil:
		return v.secret, nil
	case t.Method == jwt.SigningMethodRS256 && v.rsaKey != nil:
		return v.rsaKey, nil
	case t.Method == jwt.SigningMethodES256 && v.ecKey != nil:
		return v.ecKey, nil
	}
	return nil, errAlgorithm
}

// tokenClaims is the JSON of a token's claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
	Publish  []string `json:"publish,omitempty"`
}

// Claims is what a verified token says.
type Claims struct {
	// Sub is the user id: 1 to 127 bytes of A-Z a-z 0-9 _ - . : @ / (so that "#"+Sub is a
	// channel name).
	Sub string
	// Exp is when the token expires; zero when it has no "exp".
	Exp time.Time
	// Channels the user may subscribe to, besides its personal channel.
	Channels Patterns
	// Publish: the channels the user may publish to (when clients may publish at all).
	Publish Patterns
}

// Personal returns the user's personal channel, "#" + Sub.
func (c *Claims) Personal() string { return "#" + c.Sub }

// IsPersonal reports whether channel is the user's personal channel, without allocating.
func (c *Claims) IsPersonal(channel string) bool {
	return len(channel) == len(c.Sub)+1 && channel[0] == '#' && channel[1:] == c.Sub
}

// MaySubscribe reports whether the user may subscribe to channel: its own personal channel, or
// one its "channels" claim matches. It allocates nothing.
func (c *Claims) MaySubscribe(channel string) bool {
	if len(channel) > 0 && channel[0] == '#' {
		return c.IsPersonal(channel)
	}
	return c.Channels.Match(channel)
}

// MayPublish reports whether the user may publish to channel (its "publish" claim; never a
// personal channel, its own included: messages to a user come from the backend). It allocates
// nothing.
func (c *Claims) MayPublish(channel string) bool { return c.Publish.Match(channel) }

// Verify checks token and returns its claims, or an *Error saying why it is refused. The error
// never contains the token. Any goroutine.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, &Error{Reason: ReasonMissing, Msg: "no token (send ?token= or Authorization: Bearer)"}
	}
	if len(token) > MaxToken {
		return nil, &Error{Reason: ReasonMalformed, Msg: fmt.Sprintf("token longer than %d bytes", MaxToken)}
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc); err != nil {
		return nil, classify(err)
	}
	if !ValidUser(tc.Subject) {
		return nil, &Error{Reason: ReasonClaims, Msg: `"sub" is missing or not a valid user id (1 to 127 of A-Z a-z 0-9 _ - . : @ /)`}
	}
	c := &Claims{Sub: tc.Subject}
	if tc.ExpiresAt != nil {
		c.Exp = tc.ExpiresAt.Time
	}
	var err error
	if c.Channels, err = ParsePatterns(tc.Channels); err != nil {
		return nil, &Error{Reason: ReasonClaims, Msg: `"channels": ` + err.Error()}
	}
	if c.Publish, err = ParsePatterns(tc.Publish); err != nil {
		return nil, &Error{Reason: ReasonClaims, Msg: `"publish": ` + err.Error()}
	}
	return c, nil
}

// classify turns the jwt package's error into a refusal reason.
func classify(err error) *Error {
	switch {
	case errors.Is(err, errAlgorithm), errors.Is(err, jwt.ErrTokenUnverifiable):
		return &Error{Reason: ReasonAlgorithm, Msg: "signing algorithm not accepted"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &Error{Reason: ReasonSignature, Msg: "bad signature"}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{Reason: ReasonExpired, Msg: "token expired"}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &Error{Reason: ReasonNotYetValid, Msg: "token not valid yet"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &Error{Reason: ReasonAudience, Msg: "wrong audience"}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return &Error{Reason: ReasonIssuer, Msg: "wrong issuer"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && strings.Contains(err.Error(), "aud"):
		return &Error{Reason: ReasonAudience, Msg: "no audience"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && strings.Contains(err.Error(), "iss"):
		return &Error{Reason: ReasonIssuer, Msg: "no issuer"}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &Error{Reason: ReasonMalformed, Msg: "malformed token"}
	}
	return &Error{Reason: ReasonClaims, Msg: "invalid claims"}
}

// ValidUser reports whether sub can be a user id: 1 to 127 bytes of ASCII letters, digits and
// _ - . : @ / (so that its personal channel "#"+sub is at most 128 bytes and needs no escaping
// in JSON, URLs or NATS subjects).
func ValidUser(sub string) bool {
	if len(sub) == 0 || len(sub) > 127 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == ':', c == '@', c == '/':
		default:
			return false
		}
	}
	return true
}
