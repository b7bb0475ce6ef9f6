package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/pubsub"
)

// authOptions are the authentication flags as given.
type authOptions struct {
	secret, publicKey, audience, issuer, origins string
	requireOrigin                                bool
}

func (a *authOptions) set() bool {
	return a.secret != "" || a.publicKey != "" || a.audience != "" || a.issuer != "" || a.origins != "" || a.requireOrigin
}

// apply builds the token verifier and the Origin allow-list into cfg.
func (a *authOptions) apply(cfg *pubsub.Config) error {
	if a.secret != "" || a.publicKey != "" {
		vc := auth.Config{Secret: []byte(a.secret), Audience: a.audience, Issuer: a.issuer}
		if a.publicKey != "" {
			b, err := os.ReadFile(a.publicKey)
			if err != nil {
				return fmt.Errorf("-jwt-public-key: %w", err)
			}
			vc.PublicKey = b
		}
		v, err := auth.NewVerifier(vc)
		if err != nil {
			return err
		}
		cfg.Auth = v
	} else if a.audience != "" || a.issuer != "" {
		return errors.New("-jwt-audience and -jwt-issuer need -jwt-secret or -jwt-public-key")
	}
	if a.origins != "" || a.requireOrigin {
		o, err := auth.ParseOrigins(a.origins, a.requireOrigin)
		if err != nil {
			return fmt.Errorf("-allowed-origins: %w", err)
		}
		cfg.Origins = o
	}
	return nil
}

// tokenMain is `wsgate token`: it signs a connection token, for testing and for backends'
// developers, with the secret of WSGATE_JWT_SECRET (or -jwt-secret) or a private key file.
func tokenMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("wsgate token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "user id (the token's sub; required)")
	channels := fs.String("channels", "", "comma-separated channels or prefix:* patterns the user may subscribe to (empty: only its personal channel #<sub>)")
	publish := fs.String("publish", "", "comma-separated channels or patterns the user may publish to (with -client-publish)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token (its exp); 0 = no expiry")
	aud := fs.String("aud", "", "the token's aud (the server's -jwt-audience)")
	iss := fs.String("iss", "", "the token's iss (the server's -jwt-issuer)")
	secret := fs.String("jwt-secret", "", "HS256 secret (default: the environment variable WSGATE_JWT_SECRET)")
	keyFile := fs.String("private-key", "", "PEM private key file: RSA signs RS256, ECDSA P-256 signs ES256 (instead of the secret)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `wsgate token: print a signed connection token (docs/auth.md)

Usage:
  WSGATE_JWT_SECRET=... wsgate token -sub 42 -channels 'news,prices:*' -ttl 1h
  wsgate token -sub 42 -private-key key.pem

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "wsgate token:", err)
		return 2
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if !auth.ValidUser(*sub) {
		return fail(errors.New("-sub: want a user id of 1 to 127 of A-Z a-z 0-9 _ - . : @ /"))
	}
	if *ttl < 0 {
		return fail(errors.New("-ttl is negative"))
	}
	m := auth.Mint{Sub: *sub, Audience: *aud, Issuer: *iss, IssuedAt: time.Now()}
	var err error
	if m.Channels, err = patternList("-channels", *channels); err != nil {
		return fail(err)
	}
	if m.Publish, err = patternList("-publish", *publish); err != nil {
		return fail(err)
	}
	if *ttl > 0 {
		m.Expires = m.IssuedAt.Add(*ttl)
	}
	var key any
	switch {
	case *keyFile != "":
		if key, err = readPrivateKey(*keyFile); err != nil {
			return fail(err)
		}
	default:
		s := *secret
		if s == "" {
			s = getenv("WSGATE_JWT_SECRET")
		}
		if s == "" {
			return fail(errors.New("no key: set WSGATE_JWT_SECRET (the server's HS256 secret) or -private-key"))
		}
		if len(s) < auth.MinSecret {
			return fail(fmt.Errorf("the secret is %d bytes; the server refuses secrets under %d", len(s), auth.MinSecret))
		}
		key = []byte(s)
	}
	tok, err := m.Sign(key)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// patternList splits a comma-separated list of channel patterns and checks each.
func patternList(flagName, v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if err := auth.CheckPattern(p); err != nil {
			return nil, fmt.Errorf("%s %q: %w", flagName, p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// readPrivateKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC).
func readPrivateKey(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("%s: PEM block %q is not a private key", path, block.Type)
}
