#!/usr/bin/env bash
# The Docker engine for the compose engine test.
#
#   tools/compose-engine/engine.sh status   # exit 0 when an engine answers on /var/run/docker.sock
#   tools/compose-engine/engine.sh start    # start dockerd (vfs storage, nice 19) unless one answers; prints its pid
#                                           # when this call started it, nothing when one was already running
#   tools/compose-engine/engine.sh stop PID # stop the dockerd of that pid (one this script started)
#
# vfs: the storage driver that works on any file system, inside a container too (overlay does not, here).
# The engine's state stays in /var/lib/docker, so base images built once are reused by later runs.
set -euo pipefail

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "${1:-}" in
  status)
    answers
    ;;
  start)
    answers && exit 0
    command -v dockerd >/dev/null || { echo "engine: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
    log=/var/log/gradq-dockerd.log
    # At the lowest CPU priority, which its containerd, builds and containers inherit: npm test runs the engine test
    # beside the other tests, whose timing a build's bursts on 2 cores would otherwise disturb.
    setsid nice -n 19 dockerd --storage-driver=vfs >>"$log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 150); do
      answers && { echo "$pid"; exit 0; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    echo "engine: dockerd did not answer within 30 s; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    pid=${2:?engine: stop needs the pid that start printed}
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
    echo "engine: dockerd $pid still running after 30 s" >&2
    exit 1
    ;;
  *)
    echo "usage: $0 status | start | stop PID" >&2
    exit 2
    ;;
esac
