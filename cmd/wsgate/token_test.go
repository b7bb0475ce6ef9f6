package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/pubsub"
)

const testSecret = "a secret of thirty-two bytes or more"

// TestTokenCommand: `wsgate token` signs with the secret from the environment (or a private key
// file) a token that the flags' verifier accepts with the claims asked for; bad input is refused
// with exit 2 and a message.
func TestTokenCommand(t *testing.T) {
	env := func(k string) string {
		if k == "WSGATE_JWT_SECRET" {
			return testSecret
		}
		return ""
	}
	var out, errb bytes.Buffer
	code := tokenMain([]string{"-sub", "42", "-channels", "news,prices:*", "-publish", "chat:*", "-ttl", "1h",
		"-aud", "app", "-iss", "backend"}, &out, &errb, env)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var pc pubsub.Config
	a := authOptions{secret: testSecret, audience: "app", issuer: "backend"}
	if err := a.apply(&pc); err != nil {
		t.Fatal(err)
	}
	c, err := pc.Auth.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sub != "42" || !c.MaySubscribe("prices:x") || !c.MaySubscribe("news") || c.MaySubscribe("other") ||
		!c.MayPublish("chat:1") || time.Until(c.Exp) < 59*time.Minute || time.Until(c.Exp) > time.Hour {
		t.Fatalf("claims %+v", c)
	}

	// ES256 with a private key file, checked with the public key file.
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	priv := filepath.Join(dir, "key.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pder, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(dir, "pub.pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
	out.Reset()
	if code := tokenMain([]string{"-sub", "u", "-private-key", priv}, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	pc = pubsub.Config{}
	if err := (&authOptions{publicKey: pub}).apply(&pc); err != nil {
		t.Fatal(err)
	}
	if c, err := pc.Auth.Verify(strings.TrimSpace(out.String())); err != nil || c.Sub != "u" || !c.MaySubscribe("#u") {
		t.Fatalf("ES256 token: %+v %v", c, err)
	}

	for _, args := range [][]string{{}, {"-sub", "a b"}, {"-sub", "1", "-channels", "a*b"}, {"-sub", "1", "-ttl", "-1h"}} {
		errb.Reset()
		if code := tokenMain(args, &out, &errb, env); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := tokenMain([]string{"-sub", "1"}, &out, &errb, func(string) string { return "" }); code != 2 ||
		!strings.Contains(errb.String(), "WSGATE_JWT_SECRET") {
		t.Fatalf("no secret: exit %d, %q", code, errb.String())
	}
}

// TestAuthFlagsRefuseBadSettings: weak secrets, unreadable keys, bad origin lists and auth flags
// outside pubsub mode stop the start with exit 2.
func TestAuthFlagsRefuseBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"-jwt-secret", "short"},
		{"-jwt-public-key", "/does/not/exist.pem"},
		{"-jwt-audience", "app"},
		{"-allowed-origins", "example.com"},
		{"-mode", "echo", "-jwt-secret", testSecret},
	} {
		var out, errb bytes.Buffer
		code := run(append(args, "-addr", "127.0.0.1:0", "-admin-addr", ""), &out, &errb, nil)
		if code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var pc pubsub.Config
	if err := (&authOptions{origins: "https://*.example.com", requireOrigin: true}).apply(&pc); err != nil ||
		!pc.Origins.Allowed([]byte("https://a.example.com"), true) || pc.Origins.Allowed(nil, false) {
		t.Fatalf("origins: %v", err)
	}
}
