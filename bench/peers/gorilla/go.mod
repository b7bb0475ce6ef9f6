module github.com/wsgate/wsgate/bench/peers/gorilla

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/wsgate/wsgate/bench/peers/peerproto v0.0.0
)

replace github.com/wsgate/wsgate/bench/peers/peerproto => ../peerproto
