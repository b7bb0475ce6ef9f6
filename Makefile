# wsgate: `make run` runs the server, `make test` runs every test. See README.md.
GO      ?= go
BIN     ?= bin
ARGS    ?=
FUZZTIME ?= 20s

.PHONY: build run test test-browser stress-test check bench fuzz loadtest compare compare-moderate nats-server bench-cluster million clean

build:
	$(GO) build -o $(BIN)/wsgate ./cmd/wsgate
	$(GO) build -o $(BIN)/wsbench ./cmd/wsbench

# Runs the server (the pub/sub gateway) in the foreground on ws://127.0.0.1:8080/ (admin and
# publish API on 127.0.0.1:9090). Pass flags with ARGS, e.g. `make run ARGS="-mode echo"` or
# `make run ARGS="-client-publish"`.
run:
	$(GO) build -o $(BIN)/wsgate ./cmd/wsgate
	./$(BIN)/wsgate $(ARGS)

# nats-server with JetStream, for cluster mode (docs/cluster.md) and the process-level runs:
# installed from the Go module proxy into $(BIN)/ (the tests run it in-process instead).
NATS_VERSION ?= v2.15.3
nats-server: $(BIN)/nats-server
$(BIN)/nats-server:
	GOBIN=$(abspath $(BIN)) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION)

# The main module (with -race; then its zero-allocation tests, which are built without -race
# because the detector allocates), then each peer server's own module (bench/peers/*, used by
# `make compare`).
test:
	$(GO) test -race -shuffle=on ./...
	$(GO) test -count=1 -run 'Alloc' ./...
	@for d in bench/peers/*/; do \
	  [ -f $$d/go.mod ] || continue; \
	  echo "== $$d"; (cd $$d && $(GO) test -race -shuffle=on ./...) || exit 1; \
	done

# The suite 5 times (RUNS=n) with -race -shuffle=on while busy loops keep every core busy: run it
# before calling an issue resolved; a test that depends on timing fails here, not in CI.
stress-test:
	bash .ci/stress-test.sh

# The demo page in a real headless browser (Debian's /usr/bin/chromium; .ci/run installs it).
test-browser:
	$(GO) test -tags browser -race -run Browser -count=1 .

# gofmt, go vet, the import-direction rules of docs/architecture.md, and the Prometheus alert
# rules (promtool, from Debian's prometheus package; .ci/run installs it).
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags browser .
	@for d in bench/peers/*/; do [ -f $$d/go.mod ] || continue; (cd $$d && $(GO) vet ./...) || exit 1; done
	bash .ci/imports.sh
	@command -v promtool >/dev/null || { echo "make check: promtool not found; it checks docs/prometheus/wsgate-rules.yml." \
	  "Install Debian's prometheus package: apt-get update && apt-get install -y --no-install-recommends prometheus (.ci/run does)"; exit 1; }
	promtool check rules docs/prometheus/wsgate-rules.yml
	cd docs/prometheus && promtool test rules wsgate-rules.test.yml

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./ringbuf ./frame ./netpoll ./conn ./shard .

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# A short smoke run of every wsbench scenario against a local wsgate.
loadtest:
	bash bench/loadtest.sh

# Cluster mode (NATS JetStream, 3 nodes on one port) against a single node under the same load.
bench-cluster:
	bash bench/cluster.sh

# One million concurrent connections on this host: nats-server and wsgate cluster nodes on one
# SO_REUSEPORT port, held and published to, with a JSON report, a summary and SVG charts
# (bench/million.sh; every number is a variable: make million CONNS=100000 HOLD=2m).
# APPLY_SYSCTL=1 applies the bundled sysctl profile for the run and restores it afterwards.
million:
	bash bench/million.sh

# Builds wsgate, wsbench and the peer servers and compares them (writes docs/benchmarks.md).
compare:
	bash bench/peers/compare.sh

# Server CPU at moderate load (echo at a fixed rate, fan-out at 100 publishes/s), the server
# pinned to one CPU and the driver to another; see bench/peers/moderate.sh for the knobs.
compare-moderate:
	bash bench/peers/moderate.sh

clean:
	rm -rf $(BIN)
