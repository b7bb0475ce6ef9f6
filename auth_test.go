package wsgate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/pubsub"
)

var authSecret = []byte("test secret of at least 32 bytes!!")

// authClock is a fake wall clock (tokens) and loop clock (timers) moved together.
type authClock struct {
	wall0 time.Time
	d     atomic.Int64 // ns since the start
}

func newAuthClock() *authClock { return &authClock{wall0: time.Unix(1_900_000_000, 0)} }

func (c *authClock) wall() time.Time { return c.wall0.Add(time.Duration(c.d.Load())) }
func (c *authClock) loop() int64     { return 1e12 + c.d.Load() }

// advance moves both clocks and wakes every loop, so that due timers fire.
func (c *authClock) advance(s *Server, d time.Duration) {
	c.d.Add(int64(d))
	for _, e := range s.Engines() {
		e.Post(func() {})
	}
}

// authServer runs the gateway with tokens verified by v (built from vc with the clock's wall time).
func authServer(t testing.TB, clk *authClock, vc auth.Config, pc pubsub.Config) (*Server, *pubsub.PubSub) {
	t.Helper()
	if clk != nil {
		vc.Now = clk.wall
	}
	v, err := auth.NewVerifier(vc)
	if err != nil {
		t.Fatal(err)
	}
	pc.Auth = v
	cfg := Config{Loops: 2}
	if clk != nil {
		cfg.Now = clk.loop
	}
	s := pubsubServer(t, cfg, pc)
	return s, s.cfg.Handler.(*pubsub.PubSub)
}

func mint(t testing.TB, key any, m auth.Mint) string {
	t.Helper()
	if m.IssuedAt.IsZero() {
		m.IssuedAt = time.Now()
	}
	tok, err := m.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dialToken connects with the token in ?token= (header false) or Authorization: Bearer.
func dialToken(t testing.TB, s *Server, tok string, header bool) *sub {
	t.Helper()
	url, h := wsURL(s, "/?token="+tok), http.Header(nil)
	if header {
		url, h = wsURL(s, "/"), http.Header{"Authorization": {"Bearer " + tok}}
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = resp.Status + " " + string(b)
		}
		t.Fatalf("dial: %v %s", err, body)
	}
	t.Cleanup(func() { c.Close() })
	return &sub{t: t, c: c}
}

// refusedStatus sends a handshake with extra header lines on raw TCP and returns the status and
// body of the answer.
func refusedStatus(t testing.TB, s *Server, target, extra string) (int, string) {
	t.Helper()
	r := dialRaw(t, s)
	req := strings.Replace(upgradeRequest(target), "Host: localhost\r\n", "Host: localhost\r\n"+extra, 1)
	r.write([]byte(req))
	status, h := r.readHTTP()
	n, _ := strconv.Atoi(h["content-length"])
	body := make([]byte, n)
	io.ReadFull(r.br, body)
	if status == 401 && h["www-authenticate"] != `Bearer realm="wsgate"` {
		t.Fatalf("401 without the Bearer challenge: WWW-Authenticate %q", h["www-authenticate"])
	}
	return status, string(body)
}

func pemOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestAuthAcceptsHS256RS256ES256: tokens of each algorithm, in the query or the Authorization
// header, open a connection that is subscribed to its user's personal channel.
func TestAuthAcceptsHS256RS256ES256(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		vc   auth.Config
		key  any
	}{
		{"HS256", auth.Config{Secret: authSecret}, authSecret},
		{"RS256", auth.Config{PublicKey: pemOf(t, &rsaKey.PublicKey)}, rsaKey},
		{"ES256", auth.Config{PublicKey: pemOf(t, &ecKey.PublicKey)}, ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := authServer(t, nil, tc.vc, pubsub.Config{})
			tok := mint(t, tc.key, auth.Mint{Sub: "42", Channels: []string{"news"}, Expires: time.Now().Add(time.Hour)})
			a := dialToken(t, s, tok, false)
			b := dialToken(t, s, tok, true)
			a.subscribe("news")
			code, out := apiPost(t, s, "/api/publish", "", "", `{"user":"42","data":{"hi":1}}`)
			if code != 200 || out["delivered"] != float64(2) || out["channel"] != "#42" {
				t.Fatalf("user publish: %d %v", code, out)
			}
			for _, c := range []*sub{a, b} {
				if m := c.read(); m.Op != "message" || m.Channel != "#42" || string(m.Data) != `{"hi":1}` {
					t.Fatalf("got %+v", m)
				}
			}
		})
	}
}

// TestAuthRefusals: every class of bad token is refused in the handshake with 401 and a short
// reason, counted by reason, and nothing is opened or subscribed.
func TestAuthRefusals(t *testing.T) {
	clk := newAuthClock()
	s, _ := authServer(t, clk, auth.Config{Secret: authSecret, Audience: "app", Issuer: "backend"}, pubsub.Config{})
	now := clk.wall()
	good := auth.Mint{Sub: "42", Channels: []string{"*"}, Audience: "app", Issuer: "backend", IssuedAt: now,
		Expires: now.Add(time.Hour)}
	mod := func(f func(m *auth.Mint)) string { m := good; f(&m); return mint(t, authSecret, m) }
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "aud": "app", "iss": "backend"}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	valid := mint(t, authSecret, good)
	for _, tc := range []struct {
		name, target, header, reason string
	}{
		{"missing", "/", "", "missing"},
		{"empty bearer", "/", "Authorization: Bearer \r\n", "missing"},
		{"malformed", "/?token=abc.def", "", "malformed"},
		{"malformed header", "/", "Authorization: Bearer x.y.z\r\n", "malformed"},
		{"bad signature", "/?token=" + valid[:len(valid)-3] + "AAA", "", "signature"},
		{"ES256 without its key", "/?token=" + mint(t, ecKey, good), "", "algorithm"},
		{"alg none", "/?token=" + none, "", "algorithm"},
		{"expired", "/?token=" + mod(func(m *auth.Mint) { m.Expires = now.Add(-time.Second) }), "", "expired"},
		{"not yet valid", "/?token=" + mod(func(m *auth.Mint) { m.NotBefore = now.Add(time.Minute) }), "", "not_yet_valid"},
		{"wrong audience", "/?token=" + mod(func(m *auth.Mint) { m.Audience = "other" }), "", "audience"},
		{"wrong issuer", "/?token=" + mod(func(m *auth.Mint) { m.Issuer = "mallory" }), "", "issuer"},
		{"no sub", "/?token=" + mod(func(m *auth.Mint) { m.Sub = "" }), "", "claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := refusedStatus(t, s, tc.target, tc.header)
			if status != 401 || body == "" || strings.Contains(body, "eyJ") {
				t.Fatalf("status %d body %q, want 401 with a reason and no token", status, body)
			}
			if got := metricValue(t, s, `wsgate_auth_refused_total{reason="`+tc.reason+`"}`); got < 1 {
				t.Fatalf("refusal not counted under %q", tc.reason)
			}
		})
	}
	// Nothing was opened or subscribed; a good token still works.
	if _, st := apiGet(t, s, "/api/stats", ""); st["subscriptions"] != float64(0) {
		t.Fatalf("refused handshakes subscribed: %v", st)
	}
	c := dialToken(t, s, valid, true)
	c.subscribe("anything")
}

// TestAuthChannelPermissions: the channels claim decides subscribes (exact names and prefix:*
// patterns), the personal channel is joined at the handshake and may be subscribed again but not
// left, another user's is refused, forbidden requests answer 403 and count toward -max-errors;
// the publish claim decides client publishes.
func TestAuthChannelPermissions(t *testing.T) {
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{MaxErrors: 6, ClientPublish: true})
	tok := mint(t, authSecret, auth.Mint{Sub: "42", Channels: []string{"news", "prices:*"}, Publish: []string{"chat:*"},
		Expires: time.Now().Add(time.Hour)})
	c := dialToken(t, s, tok, false)
	c.subscribe("news")
	c.subscribe("prices:eur")
	c.subscribe("prices:")
	c.subscribe("#42") // harmless: already a member
	for _, ch := range []string{"news2", "prices", "other", "#7"} {
		c.send(`{"op":"subscribe","channel":"` + ch + `"}`)
		if m := c.read(); m.Op != "error" || m.Code != 403 {
			t.Fatalf("subscribe %s: %+v, want 403", ch, m)
		}
	}
	c.send(`{"op":"publish","channel":"news","data":1}`)
	if m := c.read(); m.Op != "error" || m.Code != 403 {
		t.Fatalf("publish without the claim: %+v", m)
	}
	c.send(`{"op":"publish","channel":"chat:1","data":1}`)
	if m := c.read(); m.Op != "published" {
		t.Fatalf("publish with the claim: %+v", m)
	}
	// Only one subscription to #42 despite the explicit subscribe: one copy of a user message.
	apiPost(t, s, "/api/publish", "", "", `{"user":"42","data":"once"}`)
	if m := c.read(); m.Channel != "#42" || string(m.Data) != `"once"` {
		t.Fatalf("%+v", m)
	}
	// The sixth error: unsubscribing the personal channel is refused too, and closes with 1008.
	c.send(`{"op":"unsubscribe","channel":"#42"}`)
	if m := c.read(); m.Op != "error" || m.Code != 403 {
		t.Fatalf("unsubscribe #42: %+v", m)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1008 {
		t.Fatalf("after 6 errors: %v, want close 1008", err)
	}
	if got := metricValue(t, s, "wsgate_auth_forbidden_total"); got != 6 {
		t.Fatalf("forbidden counted %v, want 6", got)
	}
}

// TestAuthNoChannelsClaim: a token without "channels" allows the personal channel only.
func TestAuthNoChannelsClaim(t *testing.T) {
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{})
	c := dialToken(t, s, mint(t, authSecret, auth.Mint{Sub: "u1"}), false)
	c.send(`{"op":"subscribe","channel":"news"}`)
	if m := c.read(); m.Code != 403 {
		t.Fatalf("%+v", m)
	}
	c.subscribe("#u1")
}

// TestAuthUserPublish: a publish to a user reaches every connection of that user, on every loop,
// and no one else's; it is numbered like any channel; user and channel together are a 400.
func TestAuthUserPublish(t *testing.T) {
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{HistorySize: 10})
	t42 := mint(t, authSecret, auth.Mint{Sub: "42", Channels: []string{"*"}})
	t7 := mint(t, authSecret, auth.Mint{Sub: "7", Channels: []string{"*"}})
	var mine []*sub
	for range 4 { // two loops: connections land on both
		mine = append(mine, dialToken(t, s, t42, false))
	}
	other := dialToken(t, s, t7, false)
	for i := 1; i <= 2; i++ {
		code, out := apiPost(t, s, "/api/publish", "", "", `{"user":"42","data":`+strconv.Itoa(i)+`}`)
		if code != 200 || out["delivered"] != float64(4) || out["seq"] != float64(i) || out["user"] != "42" {
			t.Fatalf("publish %d: %d %v", i, code, out)
		}
	}
	for _, c := range mine {
		for i := 1; i <= 2; i++ {
			if m := c.read(); m.Channel != "#42" || m.Seq != uint64(i) || string(m.Data) != strconv.Itoa(i) {
				t.Fatalf("got %+v", m)
			}
		}
	}
	// The other user got nothing: the next thing it reads is its own message.
	apiPost(t, s, "/api/publish", "", "", `{"user":"7","data":"for 7"}`)
	if m := other.read(); m.Channel != "#7" || string(m.Data) != `"for 7"` {
		t.Fatalf("user 7 read %+v first", m)
	}
	for _, body := range []string{`{"user":"42","channel":"news","data":1}`, `{"user":"a b","data":1}`} {
		if code, out := apiPost(t, s, "/api/publish", "", "", body); code != 400 {
			t.Fatalf("%s: %d %v, want 400", body, code, out)
		}
	}
}

// TestAuthExpiryAndRefresh: with injected clocks, a connection closes with 4001 "token expired"
// at its token's exp, not before; a refresh for the same user moves the deadline; a refresh for
// another user is refused with 403.
func TestAuthExpiryAndRefresh(t *testing.T) {
	clk := newAuthClock()
	s, _ := authServer(t, clk, auth.Config{Secret: authSecret}, pubsub.Config{})
	start := clk.wall()
	tok := func(sub string, exp time.Duration) string {
		return mint(t, authSecret, auth.Mint{Sub: sub, Channels: []string{"news"}, IssuedAt: start, Expires: start.Add(exp)})
	}
	a := dialToken(t, s, tok("42", time.Minute), false)
	b := dialToken(t, s, tok("42", time.Minute), false)
	alive := func(c *sub) {
		t.Helper()
		c.send(`{"op":"subscribe","channel":"news"}`)
		if m := c.read(); m.Op != "subscribed" {
			t.Fatalf("%+v", m)
		}
	}
	clk.advance(s, 30*time.Second)
	a.send(`{"op":"refresh","token":"` + tok("42", 2*time.Minute) + `"}`)
	if m := a.readRaw(); m["op"] != "refreshed" || m["exp"] != float64(start.Add(2*time.Minute).Unix()) {
		t.Fatalf("refresh: %v", m)
	}
	a.send(`{"op":"refresh","token":"` + tok("7", 2*time.Minute) + `"}`)
	if m := a.read(); m.Op != "error" || m.Code != 403 {
		t.Fatalf("refresh for another user: %+v", m)
	}
	a.send(`{"op":"refresh","token":"garbage"}`)
	if m := a.read(); m.Op != "error" || m.Code != 401 {
		t.Fatalf("refresh with a bad token: %+v", m)
	}
	clk.advance(s, 29*time.Second) // 59 s: both open
	alive(a)
	alive(b)
	clk.advance(s, time.Second) // 60 s: b's token expires, a's was refreshed
	expectCloseCode(t, b, 4001, "token expired")
	alive(a)
	clk.advance(s, 59*time.Second)
	alive(a)
	clk.advance(s, time.Second) // 120 s
	expectCloseCode(t, a, 4001, "token expired")
	if got := metricValue(t, s, "wsgate_expired_total"); got != 2 {
		t.Fatalf("wsgate_expired_total %v, want 2", got)
	}
}

func expectCloseCode(t testing.TB, c *sub, code int, reason string) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, m, err := c.c.ReadMessage()
		if err == nil {
			t.Logf("message before the close: %s", m)
			continue
		}
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != code || ce.Text != reason {
			t.Fatalf("got %v, want close %d %q", err, code, reason)
		}
		return
	}
}

// TestAuthDisconnect: POST /api/disconnect closes every connection of the user, and only those,
// with 4002 "disconnected by server".
func TestAuthDisconnect(t *testing.T) {
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{})
	a := dialToken(t, s, mint(t, authSecret, auth.Mint{Sub: "42", Channels: []string{"news"}}), false)
	b := dialToken(t, s, mint(t, authSecret, auth.Mint{Sub: "42"}), true)
	other := dialToken(t, s, mint(t, authSecret, auth.Mint{Sub: "43", Channels: []string{"news"}}), false)
	code, out := apiPost(t, s, "/api/disconnect", "", "", `{"user":"42"}`)
	if code != 200 || out["disconnected"] != float64(2) {
		t.Fatalf("disconnect: %d %v", code, out)
	}
	expectCloseCode(t, a, 4002, "disconnected by server")
	expectCloseCode(t, b, 4002, "disconnected by server")
	other.subscribe("news")
	for _, body := range []string{`{}`, `{"user":""}`, `{"user":"42","x":1}`, `not json`} {
		if code, _ := apiPost(t, s, "/api/disconnect", "", "", body); code != 400 {
			t.Fatalf("%s: %d, want 400", body, code)
		}
	}
}

// TestOriginAllowList: a browser's Origin must match the allow-list ('*' in the host), else 403;
// a request without Origin passes unless -require-origin.
func TestOriginAllowList(t *testing.T) {
	for _, require := range []bool{false, true} {
		o, err := auth.ParseOrigins("https://*.example.com,http://localhost:3000", require)
		if err != nil {
			t.Fatal(err)
		}
		s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{Origins: o})
		for origin, want := range map[string]int{
			"https://app.example.com": 101, "http://localhost:3000": 101,
			"https://example.com": 403, "https://app.example.com.evil.net": 403, "http://app.example.com": 403,
			"null": 403,
		} {
			if status, body := refusedStatus(t, s, "/", "Origin: "+origin+"\r\n"); status != want {
				t.Fatalf("Origin %s: %d %q, want %d", origin, status, body, want)
			}
		}
		want := 101
		if require {
			want = 403
		}
		if status, _ := refusedStatus(t, s, "/", ""); status != want {
			t.Fatalf("no Origin, require=%v: %d, want %d", require, status, want)
		}
		// A real browser-like client with an allowed Origin is served.
		c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), http.Header{"Origin": {"https://x.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestAuthOffRefusesPersonalChannels: without auth there are no users: "#..." cannot be
// subscribed to or published to by clients.
func TestAuthOffRefusesPersonalChannels(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{ClientPublish: true})
	c := dialSub(t, s)
	c.send(`{"op":"subscribe","channel":"#42"}`)
	if m := c.read(); m.Code != 403 {
		t.Fatalf("%+v", m)
	}
	c.send(`{"op":"publish","channel":"#42","data":1}`)
	if m := c.read(); m.Code != 403 {
		t.Fatalf("%+v", m)
	}
	c.send(`{"op":"refresh","token":"x"}`)
	if m := c.read(); m.Code != 400 {
		t.Fatalf("%+v", m)
	}
}

// TestClusterUserPublishAndDisconnect: with two nodes on a real in-process nats-server, a publish
// to a user reaches that user's connections on both nodes (the personal channel's '#' survives
// the subject mapping) and no one else's, and /api/disconnect on one node closes the user's
// connections on the other with 4002.
func TestClusterUserPublishAndDisconnect(t *testing.T) {
	b := startNATS(t)
	v, err := auth.NewVerifier(auth.Config{Secret: authSecret})
	if err != nil {
		t.Fatal(err)
	}
	n1 := clusterNode(t, b, "n1", pubsub.Config{Auth: v})
	n2 := clusterNode(t, b, "n2", pubsub.Config{Auth: v})
	t42 := mint(t, authSecret, auth.Mint{Sub: "42"})
	on1, on2 := dialToken(t, n1, t42, false), dialToken(t, n2, t42, true)
	other := dialToken(t, n2, mint(t, authSecret, auth.Mint{Sub: "7"}), false)
	code, out := apiPost(t, n1, "/api/publish", "", "", `{"user":"42","id":"m1","data":{"n":1}}`)
	if code != 200 || out["channel"] != "#42" || out["seq"] != float64(1) {
		t.Fatalf("publish: %d %v", code, out)
	}
	for _, c := range []*sub{on1, on2} {
		if m := readMessage(c); m.Channel != "#42" || m.Seq != 1 || string(m.Data) != `{"n":1}` {
			t.Fatalf("got %+v", m)
		}
	}
	apiPost(t, n1, "/api/publish", "", "", `{"user":"7","data":"seven"}`)
	if m := readMessage(other); m.Channel != "#7" || string(m.Data) != `"seven"` {
		t.Fatalf("user 7 read %+v first", m)
	}
	code, out = apiPost(t, n1, "/api/disconnect", "", "", `{"user":"42"}`)
	if code != 200 || out["disconnected"] != float64(1) {
		t.Fatalf("disconnect: %d %v", code, out)
	}
	expectCloseCode(t, on1, 4002, "disconnected by server")
	expectCloseCode(t, on2, 4002, "disconnected by server")
	other.send(`{"op":"subscribe","channel":"#7"}`)
	if m := other.read(); m.Op != "subscribed" {
		t.Fatalf("user 7 after 42's disconnect: %+v", m)
	}
}

// readMessage reads the next {"op":"message"}, skipping the "subscribed" notices a cluster sends
// when a channel's numbering starts (docs/protocol.md).
func readMessage(c *sub) msg {
	c.t.Helper()
	for {
		if m := c.read(); m.Op != "subscribed" {
			return m
		}
	}
}

// lockedBuffer is a log sink the loops write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuthRefusalDebugLog: at debug level a refused token is logged with its reason, never
// with the token itself.
func TestAuthRefusalDebugLog(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{Logger: log})
	tok := mint(t, authSecret, auth.Mint{Sub: "42", Expires: time.Now().Add(-time.Minute)})
	if status, _ := refusedStatus(t, s, "/feed?token="+tok, ""); status != 401 {
		t.Fatalf("status %d", status)
	}
	out := logs.String()
	if !strings.Contains(out, "handshake refused: token") || !strings.Contains(out, "reason=expired") ||
		!strings.Contains(out, "path=/feed") {
		t.Fatalf("log lacks the refusal: %s", out)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if strings.Contains(out, sig) || strings.Contains(out, tok[:20]) {
		t.Fatalf("the log contains the token: %s", out)
	}
}
