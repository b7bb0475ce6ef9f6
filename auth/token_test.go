package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Unix(1_800_000_000, 0)
)

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return testNow }
	hs, err := NewVerifier(Config{Secret: testSecret, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewVerifier(Config{PublicKey: pemPublic(t, &rsaKey.PublicKey), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	es, err := NewVerifier(Config{PublicKey: pemPublic(t, &ecKey.PublicKey), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	m := Mint{Sub: "42", Channels: []string{"news", "prices:*"}, Publish: []string{"chat:*"},
		IssuedAt: testNow, Expires: testNow.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		v    *Verifier
		key  any
	}{{"HS256", hs, testSecret}, {"RS256", rs, rsaKey}, {"ES256", es, ecKey}} {
		tok, err := m.Sign(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tc.v.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Sub != "42" || !c.Exp.Equal(testNow.Add(time.Hour)) || !c.MaySubscribe("prices:x") || !c.MayPublish("chat:1") {
			t.Fatalf("%s: claims %+v", tc.name, c)
		}
	}
	// Keys of one kind do not verify tokens of another.
	tok, _ := m.Sign(rsaKey)
	expectReason(t, hs, tok, ReasonAlgorithm)
	expectReason(t, es, tok, ReasonAlgorithm)
	// The classic confusion: HS256 signed with the RSA public key's PEM as the secret.
	confused, _ := m.Sign(pemPublic(t, &rsaKey.PublicKey))
	expectReason(t, rs, confused, ReasonAlgorithm)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, _ = m.Sign(other)
	expectReason(t, es, tok, ReasonSignature)
}

func expectReason(t *testing.T, v *Verifier, tok string, want Reason) {
	t.Helper()
	_, err := v.Verify(tok)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("Verify = %v, want a refusal for %v", err, want)
	}
	if ae.Reason != want {
		t.Fatalf("refused for %v (%q), want %v", ae.Reason, ae.Msg, want)
	}
	if len(tok) > 20 && strings.Contains(ae.Msg, tok[len(tok)-20:]) {
		t.Fatal("the refusal quotes the token")
	}
}

func TestVerifyRefusals(t *testing.T) {
	v, err := NewVerifier(Config{Secret: testSecret, Audience: "app", Issuer: "backend",
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	good := Mint{Sub: "42", Audience: "app", Issuer: "backend", IssuedAt: testNow, Expires: testNow.Add(time.Minute)}
	sign := func(m Mint) string {
		s, err := m.Sign(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := v.Verify(sign(good)); err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "aud": "app", "iss": "backend"}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, jwt.MapClaims{"sub": "42", "aud": "app", "iss": "backend"}).SignedString(testSecret)
	tampered := sign(good)
	tampered = tampered[:len(tampered)-2] + "AA"
	wrongKey, _ := good.Sign([]byte("another secret of enough bytes!!"))
	mod := func(f func(m *Mint)) string { m := good; f(&m); return sign(m) }
	for name, tc := range map[string]struct {
		tok  string
		want Reason
	}{
		"missing":     {"", ReasonMissing},
		"garbage":     {"not a token", ReasonMalformed},
		"two parts":   {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9", ReasonMalformed},
		"too long":    {strings.Repeat("a", MaxToken+1), ReasonMalformed},
		"bad base64":  {"!!.!!.!!", ReasonMalformed},
		"tampered":    {tampered, ReasonSignature},
		"wrong key":   {wrongKey, ReasonSignature},
		"alg none":    {none, ReasonAlgorithm},
		"HS384":       {hs384, ReasonAlgorithm},
		"expired":     {mod(func(m *Mint) { m.Expires = testNow.Add(-time.Second) }), ReasonExpired},
		"nbf":         {mod(func(m *Mint) { m.NotBefore = testNow.Add(time.Minute) }), ReasonNotYetValid},
		"audience":    {mod(func(m *Mint) { m.Audience = "other" }), ReasonAudience},
		"no audience": {mod(func(m *Mint) { m.Audience = "" }), ReasonAudience},
		"issuer":      {mod(func(m *Mint) { m.Issuer = "someone" }), ReasonIssuer},
		"no issuer":   {mod(func(m *Mint) { m.Issuer = "" }), ReasonIssuer},
		"no sub":      {mod(func(m *Mint) { m.Sub = "" }), ReasonClaims},
		"bad sub":     {mod(func(m *Mint) { m.Sub = "a b" }), ReasonClaims},
		"bad pattern": {mod(func(m *Mint) { m.Channels = []string{"a*b"} }), ReasonClaims},
		"personal":    {mod(func(m *Mint) { m.Channels = []string{"#7"} }), ReasonClaims},
	} {
		t.Run(name, func(t *testing.T) { expectReason(t, v, tc.tok, tc.want) })
	}
}

func TestNewVerifierRefusesWeakKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	// A 3072-bit modulus without generating a key: the size is all NewVerifier looks at.
	big3072 := &rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 3071), big.NewInt(1)), E: 65537}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	priv, _ := x509.MarshalECPrivateKey(p384)
	for name, cfg := range map[string]Config{
		"no key":      {},
		"short":       {Secret: []byte("short")},
		"not PEM":     {PublicKey: []byte("hello")},
		"RSA 1024":    {PublicKey: pemPublic(t, &small.PublicKey)},
		"RSA 3072":    {PublicKey: pemPublic(t, big3072)},
		"P-384":       {PublicKey: pemPublic(t, &p384.PublicKey)},
		"private key": {PublicKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv})},
	} {
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
