# Parley — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/parley
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: help web run build deb test test-go test-e2e test-deb deps deps-test lint fuzz bench clean

help: ## print the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: web ## build bin/parley (with the web app embedded) and bin/parley-load
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/parley
	$(GO) build -o bin/parley-load ./cmd/parley-load

# The Debian package: nfpm, a packager made for Go binaries, pinned here (go run builds it once
# into the Go build cache). The package's unit is deploy/parley.service with the binary in /usr/bin.
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB_VERSION ?= 0.0~git$(shell git log -1 --format=%cd --date=format:%Y%m%d.%H%M%S 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
deb: build ## build the Debian package bin/parley_<version>_<arch>.deb (systemd unit, user parley)
	rm -rf bin/deb bin/parley_*.deb && mkdir -p bin/deb
	cp $(BIN) bin/deb/parley
	sed 's#/usr/local/bin/parley#/usr/bin/parley#' deploy/parley.service > bin/deb/parley.service
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH=$$($(GO) env GOARCH) \
	  $(GO) run $(NFPM) package --config deploy/deb/nfpm.yaml --packager deb --target bin/

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

test: deps-test build test-go fuzz-short test-e2e test-deb ## run every test (Go with -race, short fuzz runs, browser end-to-end, the Debian package)

test-go: ## Go unit and protocol tests with the race detector
	$(GO) test -race -count=1 ./...

test-e2e: build ## browser end-to-end tests with the stock OpenVidu clients
	PARLEY_BIN=$(CURDIR)/$(BIN) ./test/e2e/run.sh

test-deb: deb ## install the Debian package with dpkg -i in a throwaway overlay of /etc, /usr and /var, start it as its unit says, purge it
	./test/e2e/deb/run.sh bin/parley_*.deb

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
