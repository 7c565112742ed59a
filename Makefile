# Parley — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/parley
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: help web run build test test-go test-e2e deps deps-test lint fuzz bench clean

help: ## print the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: web ## build bin/parley (with the web app embedded) and bin/parley-load
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/parley
	$(GO) build -o bin/parley-load ./cmd/parley-load

# The web app: plain ES modules from web/src plus the OpenVidu browser SDK from npm (pinned by
# web/package-lock.json), copied into web/dist, which the binary embeds. Rebuilt only when a source
# or the lock file changed.
WEB_SRC := $(shell find web/src -type f 2>/dev/null)
web: web/dist/index.html ## build the web app into web/dist (embedded by build)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	rm -rf web/dist/assets web/dist/*.html
	mkdir -p web/dist
	cp -R web/src/. web/dist/
	cp web/node_modules/openvidu-browser/static/js/openvidu-browser-2.32.2.min.js web/dist/assets/

run: deps build ## serve dev mode on http://localhost:4443 (secret MY_SECRET, media on UDP 4443)
	HTTPS_PORT=$${HTTPS_PORT:-4443} OPENVIDU_SECRET=$${OPENVIDU_SECRET:-MY_SECRET} ./$(BIN) serve

deps: ## fetch Go modules
	$(GO) mod download

deps-test: deps ## install what tests need (Chromium, ffmpeg, coturn, redis; npm packages)
	./scripts/install-test-deps.sh

test: deps-test build test-go fuzz-short test-e2e ## run every test (Go with -race, short fuzz runs, browser end-to-end)

test-go: ## Go unit and protocol tests with the race detector
	$(GO) test -race -count=1 ./...

test-e2e: build ## browser end-to-end tests with the stock OpenVidu clients
	PARLEY_BIN=$(CURDIR)/$(BIN) ./test/e2e/run.sh

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l cmd internal)" || (gofmt -l cmd internal; exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

FUZZTIME ?= 30s
fuzz: ## bounded fuzz runs of every decoder (FUZZTIME each, default 30s)
	@for t in $$(grep -rl '^func Fuzz' --include='*_test.go' internal | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | sed 's/func //'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run=NONE -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) ./$$t || exit 1; done; done

fuzz-short: ## every fuzz target for 20000 inputs (part of make test)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

bench: ## benchmarks (never part of make test)
	$(GO) test -run=NONE -bench=. -benchmem ./...

clean: ## remove build outputs
	rm -rf bin test-output
