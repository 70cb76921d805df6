#!/usr/bin/env bash
# Runs the uploader's MinIO benchmark sweep (or its e2e test) against a
# MinIO with data on tmpfs, reached directly and through Toxiproxy, all on
# loopback, started here from the binaries the harness caches.
#
#   uploader/bench-minio.sh            # benchmark sweep, prints one table
#   uploader/bench-minio.sh e2e        # e2e: 1000 uploads under reset_peer
#
# Environment: TIERCHAOS_BIN (binary cache, default /root/.cache/tierchaos/bin),
# BENCHTIME (go test -benchtime, default 3x), COUNT (go test -count, default 3; the table shows medians), BENCH (regexp, default all
# MinIO benchmarks), MINIO_PORT / TOXI_PORT / PROXY_PORT (defaults 19100,
# 19174, 19166). If TIERCHAOS_S3_ENDPOINT is already set, nothing is started
# and the given endpoints are used.
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-bench}
bin=${TIERCHAOS_BIN:-/root/.cache/tierchaos/bin}
out=${OUT:-$(mktemp -d)}
pids=()
data=""

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ -n "$data" ]]; then rm -rf "$data"; fi
}
trap cleanup EXIT INT TERM

wait_http() { # url deadline-seconds
	local end=$((SECONDS + $2))
	until curl -sf -o /dev/null "$1"; do
		if ((SECONDS > end)); then
			echo "timed out waiting for $1" >&2
			return 1
		fi
		sleep 0.2
	done
}

if [[ -z "${TIERCHAOS_S3_ENDPOINT:-}" ]]; then
	minio=$(ls -d "$bin"/minio-*/minio 2>/dev/null | tail -1)
	toxi=$(ls -d "$bin"/toxiproxy-*/server 2>/dev/null | tail -1)
	if [[ -z "$minio" || -z "$toxi" ]]; then
		echo "minio or toxiproxy binary missing under $bin (the harness builds them)" >&2
		exit 1
	fi
	mport=${MINIO_PORT:-19100}
	tport=${TOXI_PORT:-19174}
	pport=${PROXY_PORT:-19166}
	data=$(mktemp -d /dev/shm/tierchaos-minio.XXXXXX)
	export TIERCHAOS_S3_ACCESS_KEY=tierchaos TIERCHAOS_S3_SECRET_KEY=tierchaos-secret-key
	MINIO_ROOT_USER=$TIERCHAOS_S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$TIERCHAOS_S3_SECRET_KEY \
		"$minio" server --quiet --address "127.0.0.1:$mport" --console-address "127.0.0.1:$((mport + 1))" "$data" \
		>"$out/minio.log" 2>&1 &
	pids+=($!)
	"$toxi" -host 127.0.0.1 -port "$tport" >"$out/toxiproxy.log" 2>&1 &
	pids+=($!)
	wait_http "http://127.0.0.1:$mport/minio/health/live" 30
	wait_http "http://127.0.0.1:$tport/version" 30
	curl -sf -o /dev/null -X POST "http://127.0.0.1:$tport/proxies" \
		-d "{\"name\":\"s3\",\"listen\":\"127.0.0.1:$pport\",\"upstream\":\"127.0.0.1:$mport\",\"enabled\":true}"
	export TIERCHAOS_S3_ENDPOINT=127.0.0.1:$mport
	export TIERCHAOS_S3_PROXY_ENDPOINT=127.0.0.1:$pport
	export TIERCHAOS_TOXIPROXY_URL=http://127.0.0.1:$tport
	export TIERCHAOS_TOXIPROXY_PROXY=s3
fi

case "$mode" in
bench)
	go test -run '^$' -bench "${BENCH:-BenchmarkMinIO}" -benchtime "${BENCHTIME:-3x}" -count "${COUNT:-3}" -timeout 60m ./uploader/ |
		tee "$out/bench.txt"
	echo
	go run ./uploader/internal/benchtable <"$out/bench.txt"
	echo "raw benchmark output (benchstat format): $out/bench.txt"
	;;
e2e)
	go test -tags e2e -race -count=1 -run 'TestE2E' -v -timeout 20m ./uploader/
	;;
*)
	echo "usage: $0 [bench|e2e]" >&2
	exit 2
	;;
esac
