# tierchaos: every day-to-day command. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
SCENARIOS ?= ./scenarios/...
# Container self-tests of the harness (fault effects, process faults, cleanup).
SELFTESTS ?= ./harness/... ./uploader/...
# Example services on the generic stack core, with their chaos suites.
EXAMPLES  ?= ./examples/...
E2E_FLAGS ?= -count=1 -timeout 20m
# Where no registry answers, never try to pull (build from source at once).
export TIERCHAOS_PULL ?= auto

# Results: unit, e2e and e2e-race run go test through gotestsum, which writes $(RESULTS)/<part>.xml
# (JUnit) and $(RESULTS)/<part>.json (go test -json events); `make results` merges the parts into
# $(RESULTS)/junit.xml. Failing cases write their files (checker histories, violations and
# timelines, tierd's container log, nemesis runs) under $(RESULTS)/artifacts/<part>/ (TIERCHAOS_ARTIFACTS).
RESULTS ?= test-results
PARTS   ?= unit e2e e2e-race
TAGS    ?=
ifeq ($(origin GOTESTSUM),undefined)
GOTESTSUM := $(or $(shell command -v gotestsum 2>/dev/null),$(wildcard $(shell $(GO) env GOPATH 2>/dev/null)/bin/gotestsum))
endif
need-gotestsum = $(if $(GOTESTSUM),,$(error gotestsum not found: install it with 'go install gotest.tools/gotestsum@v1.13.0' (it lands in $$(go env GOPATH)/bin), or set GOTESTSUM=/path/to/gotestsum))
# $(call gotest,PART): gotestsum writing PART's results, then "--" and the go test arguments.
gotest = $(need-gotestsum)TIERCHAOS_ARTIFACTS=$(abspath $(RESULTS))/artifacts/$(1) $(GOTESTSUM) --format standard-quiet \
	--junitfile $(RESULTS)/$(1).xml --jsonfile $(RESULTS)/$(1).json --

.PHONY: help test unit e2e e2e-race results nemesis images cleanup lint vet fmt actionlint repro load nightly bench-upload proto proto-lint proto-check proto-breaking proto-tools

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: ## unit, e2e and e2e-race (each runs even when one before failed), then results; fails if any did
	rm -rf -- '$(RESULTS)'
	@rc=0; for part in $(PARTS); do $(MAKE) --no-print-directory $$part || rc=1; done; \
	$(MAKE) --no-print-directory results || rc=1; exit $$rc

$(RESULTS):
	mkdir -p $@

results: ## merge test-results/<part>.xml of PARTS into test-results/junit.xml and list the failing cases
	-find $(RESULTS)/artifacts -mindepth 1 -type d -empty -delete 2>/dev/null
	$(GO) run ./cmd/tierchaos junit -o $(RESULTS)/junit.xml $(foreach p,$(PARTS),$(RESULTS)/$(p).xml)

unit: | $(RESULTS) ## unit tests of every package, with the race detector (PKGS, TAGS)
	$(call gotest,unit) -race -count=1 $(if $(TAGS),-tags $(TAGS)) $(PKGS)

e2e: images | $(RESULTS) ## the chaos suites, the examples' suites and the harness self-tests against the container stack
	$(call gotest,e2e) -tags e2e $(E2E_FLAGS) $(SCENARIOS) $(EXAMPLES) $(SELFTESTS)

NEMESIS_FLAGS ?=
nemesis: images ## the nemesis rows (random fault schedules under load); NEMESIS_FLAGS='-chaos.duration=10m -chaos.shrink=20m'
	$(GO) test -tags e2e -count=1 -timeout 90m -v -run '^TestNemesis' ./scenarios/nemesis $(NEMESIS_FLAGS)

e2e-race: images | $(RESULTS) ## the chaos suites and the examples' suites with the service in the test process, under the race detector
	TIERCHAOS_SUT=inprocess $(call gotest,e2e-race) -race -tags e2e $(E2E_FLAGS) $(SCENARIOS) $(EXAMPLES)

load: images ## 60 s at 100 req/s of the default mix against the stack; report in load-report/ (budgets reported, not enforced)
	$(GO) run ./cmd/tierload -rate 100 -duration 60s -out load-report -fail-on-budget=false

nightly: images ## the seed's gate: 100 req/s for 10 minutes, search p95 < 25 ms, errors < 0.1% per op, CPU < 80%, heap stable, rate >= 99%
	$(GO) run ./cmd/tierload -rate 100 -duration 10m -out nightly-report -progress plain \
		-budget 'search:p95=25ms,*:errors=0.1%' -budget-p95 0 \
		-budget-error-rate 0.001 -budget-rate-ratio 0.99 -budget-cpu 0.8 -budget-heap-growth 0.1

bench-upload: ## uploader benchmark sweep against MinIO (the harness's images, built or pulled; direct and through Toxiproxy); prints one table
	bash uploader/bench-minio.sh

images: ## make sure MinIO, Toxiproxy and tierd images exist (builds what is missing)
	$(GO) run ./cmd/tierchaos images

cleanup: ## remove containers, networks and volumes left by dead runs
	$(GO) run ./cmd/tierchaos cleanup

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## gofmt, go vet with and without the e2e tag, and both again for macOS (GOOS=darwin)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=darwin $(GO) vet -tags e2e ./...
	GOOS=darwin $(GO) build ./...

# make repro SCENARIO='^TestFailure$$/^s3-proxy-down$$' [SEED=R] [CASE_SEED=S] [COUNT=20] [RACE=1] [SUT=inprocess] [PKG=./scenarios/failure]
# runs the cases SCENARIO selects COUNT times in one process (one stack) and stops at the first failure.
# Each iteration of a case draws its own case seed: iteration 1 the one derived from the run seed SEED
# (random when unset) and the case's name, or CASE_SEED when given (SCENARIO must then select one case);
# iteration n one derived from iteration 1's seed and n. A failing iteration prints its rerun line
# (-chaos.seed=R -chaos.case-seed=S -count=1), which replays exactly that iteration: SEED=R CASE_SEED=S COUNT=1.
SCENARIO  ?= .
SEED      ?=
CASE_SEED ?=
COUNT     ?= 20
RACE      ?=
SUT       ?=
PKG       ?= ./scenarios/...
REPRO_ARGS = $(strip $(if $(SEED),-chaos.seed=$(SEED)) $(if $(CASE_SEED),-chaos.case-seed=$(CASE_SEED)))
repro: images ## run SCENARIO (regex) COUNT times, each iteration with its own case seed (SEED, CASE_SEED, RACE=1, SUT=inprocess); stop at the first failure
	$(if $(SUT),TIERCHAOS_SUT=$(SUT)) $(GO) test -tags e2e $(if $(RACE),-race) -failfast -count=$(COUNT) -timeout 60m \
		-run '$(SCENARIO)' $(PKG) $(if $(REPRO_ARGS),-args $(REPRO_ARGS))

actionlint: ## lint the GitHub workflows
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 .github/workflows/*.yml

# gRPC code generation: buf with local protoc-gen-go and protoc-gen-go-grpc, pinned here and
# installed into .bin/ through the Go module proxy (no remote plugins). The module is system/grpcapi.
BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
PROTO_BIN  := $(abspath .bin)
PROTO_DIR  := system/grpcapi
PROTO_PATH := PATH="$(PROTO_BIN):$$PATH"

proto-tools: ## install the pinned buf, protoc-gen-go and protoc-gen-go-grpc into .bin/
	GOBIN=$(PROTO_BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(PROTO_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: proto-tools ## regenerate the gRPC Go code of system/grpcapi/proto (buf generate)
	cd $(PROTO_DIR) && $(PROTO_PATH) buf generate

proto-lint: proto-tools ## buf lint of system/grpcapi/proto
	cd $(PROTO_DIR) && $(PROTO_PATH) buf lint

# What proto-breaking compares against: main of this clone (a CI checkout fetches it first).
PROTO_AGAINST ?= $(abspath .git)\#branch=main,subdir=$(PROTO_DIR)

proto-breaking: proto-tools ## buf breaking of system/grpcapi/proto against main (PROTO_AGAINST): no wire- or source-incompatible change
	cd $(PROTO_DIR) && $(PROTO_PATH) buf breaking --against '$(PROTO_AGAINST)'

proto-check: proto proto-lint ## regenerate and fail if the committed generated code differs
	git diff --exit-code -- $(PROTO_DIR)
	@test -z "$$(git status --porcelain -- $(PROTO_DIR))" || { git status --porcelain -- $(PROTO_DIR); echo "untracked generated files"; exit 1; }

lint: vet actionlint proto-check proto-breaking ## gofmt, go vet, actionlint, buf lint and breaking, and the generated gRPC code up to date
