module github.com/wsgate/wsgate/bench/peers/gws

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/lxzan/gws v1.8.9
	github.com/wsgate/wsgate/bench/peers/peerproto v0.0.0
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.17.9 // indirect
)

replace github.com/wsgate/wsgate/bench/peers/peerproto => ../peerproto
