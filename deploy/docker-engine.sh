#!/usr/bin/env bash
# Make sure a Docker Engine answers: use the running one, or (as root) install and start one.
# Safe to run again: it does nothing when `docker info` already answers.
set -euo pipefail

SCRIPT_NAME=docker-engine
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKERD_LOG=/var/log/medcell-dockerd.log
DOCKERD_PIDFILE=/var/run/docker.pid
WAIT_SECONDS="${MEDCELL_ENGINE_WAIT:-60}"

# A half-started daemon can leave `docker info` hanging; never wait on it unbounded.
engine_answers() {
    command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

dockerd_running() {
    local pid
    [ -s "$DOCKERD_PIDFILE" ] || return 1
    pid="$(cat "$DOCKERD_PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

explain_for_non_root() {
    if [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ]; then
        die "a Docker Engine runs but $(id -un) may not use it; add yourself to the docker group" \
            "(sudo usermod -aG docker $(id -un), then log in again) or run this as root"
    fi
    die "no Docker Engine answers and starting one needs root; start it" \
        "(sudo systemctl start docker) or run as root: sudo bash deploy/docker-engine.sh"
}

install_engine() {
    # Debian's own package: no third-party repository, works with the machine's apt sources.
    apt_install docker.io
}

wait_for_engine() {
    local pid="${1:-}" waited=0
    while [ "$waited" -lt "$WAIT_SECONDS" ]; do
        engine_answers && return 0
        # A daemon that died already will never answer: fail now, not after the full wait.
        # Its pid file counts too, in case setsid forked and $pid was only the launcher.
        if [ -n "$pid" ] && [ "$waited" -ge 2 ] && ! kill -0 "$pid" 2>/dev/null \
            && ! dockerd_running; then
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    return 1
}

start_engine() {
    # Where systemd runs, the packaged service is the right owner of the daemon.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        say "starting docker.service"
        systemctl start docker.service >/dev/null 2>&1 || true
        if wait_for_engine; then
            return 0
        fi
    fi

    if dockerd_running; then
        # Someone started it moments ago; give it time instead of starting a second one.
        say "dockerd (pid $(cat "$DOCKERD_PIDFILE")) is starting; waiting for it"
        wait_for_engine "$(cat "$DOCKERD_PIDFILE")" && return 0
        show_log_tail "$DOCKERD_LOG"
        die "dockerd runs but did not answer within ${WAIT_SECONDS}s"
    fi
    # A pid file left by a daemon that died makes dockerd refuse to start.
    rm -f "$DOCKERD_PIDFILE"

    say "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: the daemon must outlive this script and the terminal or CI step that ran it.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$!
    if wait_for_engine "$pid"; then
        say "Docker Engine is up"
        return 0
    fi
    show_log_tail "$DOCKERD_LOG"
    if kill -0 "$pid" 2>/dev/null || dockerd_running; then
        die "dockerd did not answer within ${WAIT_SECONDS}s (log: $DOCKERD_LOG)"
    fi
    die "dockerd exited while starting (log: $DOCKERD_LOG)"
}

main() {
    engine_answers && exit 0
    is_root || explain_for_non_root

    if ! command -v dockerd >/dev/null 2>&1; then
        install_engine
        command -v dockerd >/dev/null 2>&1 || die "docker.io is installed but dockerd is not on PATH"
        # On a systemd machine the package starts the service itself.
        engine_answers && exit 0
    fi
    start_engine
}

main "$@"
