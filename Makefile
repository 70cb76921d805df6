# tierchaos: every day-to-day command. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
SCENARIOS ?= ./scenarios/...
# Container self-tests of the harness (fault effects, process faults, cleanup).
SELFTESTS ?= ./harness/... ./uploader/...
E2E_FLAGS ?= -count=1 -timeout 20m
# Where no registry answers, never try to pull (build from source at once).
export TIERCHAOS_PULL ?= auto

.PHONY: help test unit e2e e2e-race nemesis images cleanup lint vet fmt actionlint repro load nightly bench-upload

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: unit e2e e2e-race ## unit tests with -race, then the chaos suites in both modes (container; in process with -race)

unit: ## unit tests of every package, with the race detector
	$(GO) test -race -count=1 $(PKGS)

e2e: images ## the chaos suites and the harness self-tests against the container stack
	$(GO) test -tags e2e $(E2E_FLAGS) $(SCENARIOS) $(SELFTESTS)

NEMESIS_FLAGS ?=
nemesis: images ## the nemesis rows (random fault schedules under load); NEMESIS_FLAGS='-chaos.duration=10m -chaos.shrink=20m'
	$(GO) test -tags e2e -count=1 -timeout 90m -v -run '^TestNemesis' ./scenarios/nemesis $(NEMESIS_FLAGS)

e2e-race: images ## the chaos suites with tierd in the test process, under the race detector
	TIERCHAOS_SUT=inprocess $(GO) test -race -tags e2e $(E2E_FLAGS) $(SCENARIOS)

load: images ## 60 s at 100 req/s of the default mix against the stack; report in load-report/ (budgets reported, not enforced)
	$(GO) run ./cmd/tierload -rate 100 -duration 60s -out load-report -fail-on-budget=false

nightly: images ## the seed's gate: 100 req/s for 10 minutes, p95 < 25 ms, errors < 0.1%, CPU < 80%, heap stable
	$(GO) run ./cmd/tierload -rate 100 -duration 10m -out nightly-report -progress plain -budget-p95 25ms \
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

# make repro SCENARIO='^TestFailure$$/^s3-proxy-down$$' SEED=123 COUNT=50 RACE=1 [SUT=inprocess] [PKG=./scenarios/failure]
# reruns one case many times with one seed and stops at the first failure.
SCENARIO ?= .
SEED     ?=
COUNT    ?= 20
RACE     ?=
SUT      ?=
PKG      ?= ./scenarios/...
repro: images ## rerun SCENARIO (regex) COUNT times with SEED, stop at the first failure (RACE=1, SUT=inprocess)
	TIERCHAOS_SUT=$(SUT) $(GO) test -tags e2e $(if $(RACE),-race) -failfast -count=$(COUNT) -timeout 60m \
		-run '$(SCENARIO)' $(PKG) $(if $(SEED),-args -chaos.seed=$(SEED))

actionlint: ## lint the GitHub workflows
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 .github/workflows/*.yml

lint: vet actionlint ## gofmt, go vet and actionlint
