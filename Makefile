# vipd — see README.md. Targets that touch network namespaces need root.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# net/http without its bundled HTTP/2: vipd speaks HTTP/1.1 only (the
# metrics listener is plain TCP; a health check's own Transport sets
# DialContext and TLSClientConfig, which turns HTTP/2 off). Half a MiB less
# binary, and so half a MiB less resident memory. Every build of vipd uses it:
# packaging/Dockerfile, test/e2e and test/packaging repeat it.
TAGS      := nethttpomithttp2
# BGP=no builds vipd without GoBGP (-tags nobgp): half the binary (12.6
# against 24.0 MB) and 1 MiB less private memory; a bgp section is then
# refused. docs/bgp.md ("Cost").
BGP       ?= yes
ifeq ($(BGP),no)
TAGS      := $(TAGS),nobgp
endif
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
# Debian packages the end-to-end tests and the benchmark use. (make bench
# installs its load-balancing anchors, haproxy and nginx, itself.)
DEB_PACKAGES := iproute2 iputils-ping nftables keepalived systemd prometheus frr
export CGO_ENABLED = 0

.PHONY: all build deps test lint demo bench clean

all: build

build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/vipd ./cmd/vipd

# Installs what the tests need when it is missing (apt-get needs root).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# The Helm chart's tests are a module of their own, so that vipd's go.mod
# does not pull in helm and Kubernetes; ./... does not reach into it.
HELM_MODULE := packaging/helm

lint: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags nobgp ./...
	$(GOBIN)/staticcheck ./...
	cd $(HELM_MODULE) && $(GO) vet ./... && $(GOBIN)/staticcheck ./...

# The whole suite: lint, unit tests, end-to-end tests in network namespaces,
# the Helm chart's tests, then a bounded run of every fuzz target.
test: lint
	$(GO) test -count=1 -timeout 40m ./...
	cd $(HELM_MODULE) && $(GO) test -count=1 ./...
	$(MAKE) fuzz

# Every native fuzz target (func FuzzX in a _test.go file) for FUZZTIME each,
# one at a time: go test -fuzz takes one target per run. Inputs that fail are
# written to the package's testdata/fuzz/FuzzX, the seed corpus, and fail
# the run.
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "$(GO) test -run='^$$' -fuzz='^$$fn$$' -fuzztime=$(FUZZTIME) ./$$(dirname $${f#./})"; \
			$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) ./$$(dirname $${f#./}); \
		done; \
	done

# A failover walk-through a person can follow, in network namespaces (root).
demo:
	$(MAKE) build
	$(GO) build -trimpath -o $(BIN)/vipd-lab ./cmd/vipd-lab
	$(BIN)/vipd-lab demo --vipd $(BIN)/vipd

# vipd beside keepalived: failover outages, health-check failover, CPU and
# memory at scale, soak, packet loss, partition heals, 1,000 instances; then
# auth_hmac's cost and a forged flood; load balancing beside HAProxy and nginx
# stream; BGP route withdrawal against FRR, with and without GoBGP linked
# (root; ~21 minutes).
# RUNS=N overrides the measurements per cell (default 3).
bench:
	$(MAKE) build
	$(MAKE) build BGP=no BIN=$(BIN)/nobgp
	$(GO) build -trimpath -o $(BIN)/vipd-lab ./cmd/vipd-lab
	@command -v keepalived >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >/dev/null; }
	@{ command -v haproxy && command -v nginx && test -e /usr/lib/nginx/modules/ngx_stream_module.so; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy nginx libnginx-mod-stream >/dev/null; }
	@test -x /usr/lib/frr/bgpd -a -x /usr/lib/frr/bfdd || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends frr >/dev/null; }
	$(BIN)/vipd-lab bench --vipd $(BIN)/vipd --vipd-nobgp $(BIN)/nobgp/vipd $(if $(RUNS),--runs $(RUNS))

clean:
	rm -rf $(BIN)

# Installation and the Debian package (see docs/guides/systemd.md).
# make install [DESTDIR=/scratch/root] [PREFIX=/usr]: the binary, the systemd
# unit, the example config (only if /etc/vipd/vipd.yaml is absent) and the
# docs. As root with an empty DESTDIR it also creates the vipd system user.
PREFIX   ?= /usr
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
UNITDIR  ?= /lib/systemd/system
CONFDIR  ?= /etc/vipd
DOCDIR   ?= $(PREFIX)/share/doc/vipd
DIST     ?= dist
# The newest nfpm whose dependencies all resolve through the module proxy.
NFPM_VERSION := v2.45.0
DEB_VERSION   = $(shell sh packaging/debversion '$(VERSION)')
DEB_ARCH      = $(shell $(GO) env GOARCH)
# Installed as /usr/share/doc/vipd/PATH, so the links between them still work.
DOC_FILES     = README.md $(wildcard docs/*.md docs/guides/*.md) configs/vipd.yaml $(wildcard configs/k8s/*.yaml)

.PHONY: install uninstall deb

install:
	@test -x $(BIN)/vipd || $(MAKE) build
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR)
	install -m 0755 $(BIN)/vipd $(DESTDIR)$(SBINDIR)/vipd
	sed 's#/usr/sbin/vipd#$(SBINDIR)/vipd#g' systemd/vipd.service > $(DESTDIR)$(UNITDIR)/vipd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vipd.service
	@if [ -e $(DESTDIR)$(CONFDIR)/vipd.yaml ]; then \
		echo "keeping $(DESTDIR)$(CONFDIR)/vipd.yaml"; \
	else \
		echo "install -m 0644 configs/vipd.yaml $(DESTDIR)$(CONFDIR)/vipd.yaml"; \
		install -m 0644 configs/vipd.yaml $(DESTDIR)$(CONFDIR)/vipd.yaml; \
	fi
	@for f in $(DOC_FILES); do \
		install -d -m 0755 "$(DESTDIR)$(DOCDIR)/$$(dirname $$f)" && \
		install -m 0644 $$f "$(DESTDIR)$(DOCDIR)/$$f" || exit 1; \
	done
	@if [ -z "$(DESTDIR)" ]; then \
		sh packaging/adduser && \
		echo "next: edit $(CONFDIR)/vipd.yaml, then: systemctl daemon-reload && systemctl enable --now vipd"; \
	fi

# Leaves the config and the vipd user alone.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/vipd $(DESTDIR)$(UNITDIR)/vipd.service
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(DESTDIR)$(CONFDIR)/vipd.yaml and the vipd user; remove them by hand if you want them gone"

# dist/vipd_VERSION_ARCH.deb, built by nfpm from packaging/nfpm.yaml.
deb: build
	@mkdir -p $(DIST)
	VIPD_BIN=$(BIN) VIPD_VERSION=$(DEB_VERSION) VIPD_ARCH=$(DEB_ARCH) \
		$(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) \
		package --config packaging/nfpm.yaml --packager deb --target $(DIST)/
