package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"
)

// BenchmarkVerify measures one token check per algorithm (what a handshake with auth adds on
// the loop): docs/auth.md reports the figures.
func BenchmarkVerify(b *testing.B) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	rsa4096, _ := rsa.GenerateKey(rand.Reader, 4096)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m := Mint{Sub: "42", Channels: []string{"news", "prices:*"}, IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name string
		cfg  Config
		key  any
	}{
		{"HS256", Config{Secret: testSecret}, testSecret},
		{"RS256-2048", Config{PublicKey: pemPublic(b, &rsa2048.PublicKey)}, rsa2048},
		{"RS256-3072", Config{PublicKey: pemPublic(b, &rsa3072.PublicKey)}, rsa3072},
		{"RS256-4096", Config{PublicKey: pemPublic(b, &rsa4096.PublicKey)}, rsa4096},
		{"ES256", Config{PublicKey: pemPublic(b, &ec.PublicKey)}, ec},
	} {
		v, err := NewVerifier(tc.cfg)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := m.Sign(tc.key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMatch: a subscribe's permission check.
func BenchmarkMatch(b *testing.B) {
	c := Claims{Sub: "42", Channels: Patterns{"news", "sports", "prices:*", "chat:room:*"}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.MaySubscribe("chat:room:17") {
			b.Fatal("no match")
		}
	}
}
