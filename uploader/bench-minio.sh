#!/usr/bin/env bash
# Runs the uploader's MinIO benchmark sweep (or its e2e test) against a
# MinIO with data on tmpfs, reached directly and through Toxiproxy, on
# loopback. MinIO and Toxiproxy run as containers of the images the harness
# uses (`go run ./cmd/tierchaos images`: built from source or pulled,
# whichever this machine has), with host networking on Linux so that they
# listen on loopback as plain processes would; elsewhere (Docker Desktop)
# on a network of their own with ports published on 127.0.0.1.
#
#   uploader/bench-minio.sh            # benchmark sweep, prints one table
#   uploader/bench-minio.sh e2e        # e2e: 1000 uploads under reset_peer
#
# Environment: BENCHTIME (go test -benchtime, default 3x), COUNT (go test
# -count, default 3; the table shows medians), BENCH (regexp, default all
# MinIO benchmarks), MINIO_PORT / TOXI_PORT / PROXY_PORT (defaults 19100,
# 19174, 19166), TIERCHAOS_MINIO_IMAGE / TIERCHAOS_TOXIPROXY_IMAGE (as for
# the harness). If TIERCHAOS_S3_ENDPOINT is already set, nothing is started
# and the given endpoints are used.
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-bench}
out=${OUT:-$(mktemp -d)}
containers=()
net=""

cleanup() {
	for c in ${containers[@]+"${containers[@]}"}; do
		docker logs "$c" >"$out/$c.log" 2>&1 || true
		docker rm -f "$c" >/dev/null 2>&1 || true
	done
	if [[ -n "$net" ]]; then docker network rm "$net" >/dev/null 2>&1 || true; fi
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
	images=$(go run ./cmd/tierchaos images)
	minio=$(awk '$1 == "minio" {print $2}' <<<"$images")
	toxi=$(awk '$1 == "toxiproxy" {print $2}' <<<"$images")
	if [[ -z "$minio" || -z "$toxi" ]]; then
		echo "tierchaos images named no MinIO or Toxiproxy image:" >&2
		echo "$images" >&2
		exit 1
	fi
	echo "MinIO image $minio, Toxiproxy image $toxi"
	mport=${MINIO_PORT:-19100}
	tport=${TOXI_PORT:-19174}
	pport=${PROXY_PORT:-19166}
	name=tierchaos-bench-$$
	# Random per run, like the harness's stack: nothing else knows them.
	TIERCHAOS_S3_ACCESS_KEY=tc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	TIERCHAOS_S3_SECRET_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	export TIERCHAOS_S3_ACCESS_KEY TIERCHAOS_S3_SECRET_KEY
	# The harness's images run as 65532:65532 (harness/images): so do the
	# official ones here, on tmpfs mounts that user owns.
	common=(--detach --label org.tierchaos.bench=true --user 65532:65532
		--tmpfs /data:uid=65532,gid=65532 --tmpfs /tmp:uid=65532,gid=65532)
	if [[ $(uname -s) == Linux ]]; then
		minio_net=(--network host)
		toxi_net=(--network host)
		minio_addr=127.0.0.1:$mport console_addr=127.0.0.1:$((mport + 1))
		toxi_args=(-host 127.0.0.1 -port "$tport")
		listen=127.0.0.1:$pport upstream=127.0.0.1:$mport
	else
		net=$name
		docker network create --label org.tierchaos.bench=true "$net" >/dev/null
		minio_net=(--network "$net" --network-alias minio -p "127.0.0.1:$mport:9000")
		toxi_net=(--network "$net" -p "127.0.0.1:$tport:8474" -p "127.0.0.1:$pport:8666")
		minio_addr=:9000 console_addr=:9001
		toxi_args=(-host 0.0.0.0 -port 8474)
		listen=0.0.0.0:8666 upstream=minio:9000
	fi
	containers+=("$name-minio")
	docker run "${common[@]}" --name "$name-minio" "${minio_net[@]}" \
		-e MINIO_ROOT_USER="$TIERCHAOS_S3_ACCESS_KEY" -e MINIO_ROOT_PASSWORD="$TIERCHAOS_S3_SECRET_KEY" \
		"$minio" server --quiet --address "$minio_addr" --console-address "$console_addr" --certs-dir /tmp/certs /data >/dev/null
	containers+=("$name-toxiproxy")
	docker run "${common[@]}" --name "$name-toxiproxy" "${toxi_net[@]}" "$toxi" "${toxi_args[@]}" >/dev/null
	wait_http "http://127.0.0.1:$mport/minio/health/live" 60
	wait_http "http://127.0.0.1:$tport/version" 30
	curl -sf -o /dev/null -X POST "http://127.0.0.1:$tport/proxies" \
		-d "{\"name\":\"s3\",\"listen\":\"$listen\",\"upstream\":\"$upstream\",\"enabled\":true}"
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
