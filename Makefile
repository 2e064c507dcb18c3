# vipd — see README.md. Targets that touch network namespaces need root.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
# Debian packages the end-to-end tests and the benchmark use.
DEB_PACKAGES := iproute2 nftables keepalived
export CGO_ENABLED = 0

.PHONY: all build deps test lint demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vipd ./cmd/vipd

# Installs what the tests need when it is missing (apt-get needs root).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# The whole suite: lint, unit tests, end-to-end tests in network namespaces.
test: lint
	$(GO) test -count=1 -timeout 40m ./...

# A failover walk-through a person can follow, in network namespaces (root).
demo:
	$(MAKE) build
	$(GO) build -trimpath -o $(BIN)/vipd-lab ./cmd/vipd-lab
	$(BIN)/vipd-lab demo --vipd $(BIN)/vipd

# Outages of vipd and keepalived, side by side (root; a few minutes).
# RUNS=N overrides the measurements per cell (default 3).
bench:
	$(MAKE) build
	$(GO) build -trimpath -o $(BIN)/vipd-lab ./cmd/vipd-lab
	@command -v keepalived >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >/dev/null; }
	$(BIN)/vipd-lab bench --vipd $(BIN)/vipd $(if $(RUNS),--runs $(RUNS))

clean:
	rm -rf $(BIN)
