# vipd — see README.md. Targets that touch network namespaces need root.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
export CGO_ENABLED = 0

.PHONY: all build test lint unit fuzz demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vipd ./cmd/vipd

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The whole suite: lint, unit tests, end-to-end tests in network namespaces.
test: lint
	$(GO) test -count=1 -timeout 40m ./...

clean:
	rm -rf $(BIN)
