# tierchaos: every day-to-day command. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
SCENARIOS ?= ./scenarios/...
E2E_FLAGS ?= -count=1 -timeout 20m
# Where no registry answers, never try to pull (build from source at once).
export TIERCHAOS_PULL ?= auto

.PHONY: help test unit e2e e2e-race images cleanup lint vet fmt actionlint repro load nightly bench-upload

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: unit e2e ## unit tests with -race, then the e2e chaos suites

unit: ## unit tests of every package, with the race detector
	$(GO) test -race -count=1 $(PKGS)

e2e: images ## the chaos suites against the container stack
	$(GO) test -tags e2e $(E2E_FLAGS) $(SCENARIOS)

images: ## make sure MinIO, Toxiproxy and tierd images exist (builds what is missing)
	$(GO) run ./cmd/tierchaos images

cleanup: ## remove containers, networks and volumes left by dead runs
	$(GO) run ./cmd/tierchaos cleanup

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet, with and without the e2e tag
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

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
