#!/usr/bin/env bash
# A medcell cluster lab on one Linux machine (root): three hosts node1..node3, each a network
# namespace (plus its own hostname and a private mount namespace) with its own Docker Engine,
# joined by veth pairs to a bridge in a fourth namespace. Their addresses exist only inside these
# namespaces: nothing the lab does leaves the machine.
#
#   bash deploy/lab.sh up                    start the lab (images loaded, cluster init/join done)
#   bash deploy/lab.sh status                the nodes and their addresses (exit 1 when down)
#   bash deploy/lab.sh exec NODE -- CMD...   run CMD as that host: its network, its engine
#                                            (DOCKER_HOST), its MEDCELL_HOME, `medcell` on PATH
#                                            (each node sees its own folder at $MEDCELL_LAB_DIR/node,
#                                            so MEDCELL_HOME is the same path on every node, as a
#                                            cluster's global services need)
#   bash deploy/lab.sh cut NODE / heal NODE  take a node's network link down / up
#   bash deploy/lab.sh down                  remove everything the lab made (safe to run twice)
#
# Environment: MEDCELL_LAB (lab name, default `lab`; a second lab with another name runs beside
# it, which the tests use), MEDCELL_LAB_DIR (its directory, default /var/lib/medcell-<name>),
# MEDCELL_IMAGE_TAG (the images to load, default latest), MEDCELL_IMAGE_LOCK (a file to hold with
# flock while saving the images, when others build them on the same engine), MEDCELL_LAB_SIZE
# (the most memory its directory may take, default 6g; it lives in memory, see cmd_up).
set -eu
set -o pipefail

SCRIPT_NAME=lab
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB="${MEDCELL_LAB:-lab}"
case "$LAB" in
'' | *[!a-z0-9]* | ???????*) die "MEDCELL_LAB must be 1 to 6 lower-case letters or digits" ;;
esac
LAB_DIR="${MEDCELL_LAB_DIR:-/var/lib/medcell-$LAB}"
case "$LAB_DIR" in
/?*/?*) ;;
*) die "MEDCELL_LAB_DIR must be an absolute path two levels deep or more, not '$LAB_DIR'" ;;
esac
LAB_SIZE="${MEDCELL_LAB_SIZE:-6g}" # the lab's memory-backed directory (three engines' images)
TAG="${MEDCELL_IMAGE_TAG:-latest}"
IMAGES="medcell-facility:$TAG medcell-gateway:$TAG medcell-supervisor:$TAG"
NODES="node1 node2 node3"
SUBNET_PREFIX=10.231.7 # node N is $SUBNET_PREFIX.N/24
NET_NS="medcell-$LAB-net"
MARKER=.medcell-lab # only a directory holding this file is ever removed
WAIT_SECONDS=60

node_ns() { echo "medcell-$LAB-$1"; }
node_dir() { echo "$LAB_DIR/$1"; }
node_addr() { echo "$SUBNET_PREFIX.${1#node}"; }
node_sock() { echo "$(node_dir "$1")/docker.sock"; }
# Inside its own mount namespace every node sees its folder here: the same MEDCELL_HOME and
# Docker socket path on every node, as on real hosts (the bind mounts of the stack's global
# services name host paths, which must exist on every node). Outside, it is an empty folder.
NODE_VIEW="$LAB_DIR/node"
# A path a command printed inside a node, as seen from outside.
outside_path() { echo "$(node_dir "$1")${2#"$NODE_VIEW"}"; }

check_node() {
    case " $NODES " in
    *" ${1:-} "*) ;;
    *) die "no node '${1:-}' in the lab; the nodes are: $NODES" ;;
    esac
}

ns_exists() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"
}

# The PID of a node's dockerd, if it runs (read from its pid file, checked to be alive).
engine_pid() {
    local pidfile pid
    pidfile="$(node_dir "$1")/dockerd.pid"
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

engine_answers() {
    timeout 10 docker -H "unix://$(node_sock "$1")" info >/dev/null 2>&1
}

lab_is_up() {
    local node
    [ -f "$LAB_DIR/up" ] || return 1
    for node in $NODES; do
        ns_exists "$(node_ns "$node")" && engine_pid "$node" >/dev/null || return 1
    done
}

print_nodes() {
    local node
    for node in $NODES; do
        printf '%s  %s\n' "$node" "$(node_addr "$node")"
    done
}

make_network() {
    ip netns add "$NET_NS"
    ip -n "$NET_NS" link set lo up
    ip -n "$NET_NS" link add br0 type bridge
    ip -n "$NET_NS" link set br0 up
    local node ns
    for node in $NODES; do
        ns="$(node_ns "$node")"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # The bridge's side carries the node's name; the node sees a plain eth0.
        ip -n "$NET_NS" link add "$node" type veth peer name eth0 netns "$ns"
        ip -n "$NET_NS" link set "$node" master br0 up
        ip -n "$ns" addr add "$(node_addr "$node")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

write_engine_config() {
    local node="$1" dir
    dir="$(node_dir "$node")"
    mkdir -p "$dir/etc-docker" "$dir/data" "$dir/exec" "$dir/home"
    chmod 700 "$dir/home"
    # "bridge": "none" and "no-new-privileges": true are what a facility node needs (README,
    # "Cluster mode"); the rest keeps this engine apart from the machine's own.
    cat >"$dir/daemon.json" <<EOF
{
  "bridge": "none",
  "no-new-privileges": true,
  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/dockerd.pid",
  "hosts": ["unix://$dir/docker.sock"],
  "cgroup-parent": "/medcell-$LAB-$node",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"}
}
EOF
}

start_engine() {
    local node="$1" dir ns
    dir="$(node_dir "$node")"
    ns="$(node_ns "$node")"
    write_engine_config "$node"
    # Own hostname (the Swarm node name) and own /etc/docker (its key.json is the engine's ID).
    # shellcheck disable=SC2016  # expanded by the inner shell
    # nsenter, not `ip netns exec`: that mounts a fresh /sys, which hides the cgroup hierarchy.
    setsid nohup nsenter --net="/run/netns/$ns" unshare --uts --mount --propagation private \
        sh -c 'hostname "$1" && mount --bind "$2/etc-docker" /etc/docker &&
            mount --bind "$2" "$3" && exec dockerd --config-file "$2/daemon.json"' \
        lab-engine "$node" "$dir" "$NODE_VIEW" >>"$dir/dockerd.log" 2>&1 </dev/null &
}

wait_engine() {
    local node="$1" waited=0
    while [ "$waited" -lt "$WAIT_SECONDS" ]; do
        engine_answers "$node" && return 0
        sleep 1
        waited=$((waited + 1))
    done
    show_log_tail "$(node_dir "$node")/dockerd.log"
    die "the engine of $node did not answer within ${WAIT_SECONDS}s"
}

save_images() {
    local image archive="$LAB_DIR/images.tar"
    for image in $IMAGES; do
        image_exists "$image" || die "image $image missing: build it first (make images)"
    done
    say "saving the images"
    # shellcheck disable=SC2086  # a fixed list of image names
    if [ -n "${MEDCELL_IMAGE_LOCK:-}" ]; then
        flock "$MEDCELL_IMAGE_LOCK" docker save -o "$archive" $IMAGES
    else
        docker save -o "$archive" $IMAGES
    fi
}

load_images() {
    local node pids="" pid
    for node in $NODES; do
        docker -H "unix://$(node_sock "$node")" load -q -i "$LAB_DIR/images.tar" \
            >"$(node_dir "$node")/load.log" 2>&1 &
        pids="$pids $!"
    done
    for pid in $pids; do
        wait "$pid" || die "loading the images into a node failed (see $LAB_DIR/*/load.log)"
    done
    rm -f "$LAB_DIR/images.tar"
}

# Run a command as a node: its namespaces (entered through its engine's process), its engine,
# its MEDCELL_HOME (both under NODE_VIEW), the project's `medcell` first on PATH.
as_node() {
    local node="$1" pid
    shift
    pid="$(engine_pid "$node")" || die "$node is not running (bash deploy/lab.sh up)"
    nsenter --target "$pid" --net --uts --mount -- env \
        DOCKER_HOST="unix://$NODE_VIEW/docker.sock" MEDCELL_HOME="$NODE_VIEW/home" \
        PATH="$ROOT_DIR/.venv/bin:$PATH" "$@"
}

# One field of the JSON document a medcell command printed.
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# The lab does what an operator does: init on node1, then for each other host a join-command
# on node1 and the join on that host.
form_cluster() {
    local node join bundle
    as_node node1 medcell cluster init --advertise-addr "$(node_addr node1)" >/dev/null
    for node in node2 node3; do
        join="$(as_node node1 medcell cluster join-command --json)"
        # The new host's certificate bundle travels as a file, as an operator would copy it.
        bundle="$(outside_path node1 "$(printf '%s' "$join" | json_field bundle)")"
        if [ -z "$bundle" ] || [ ! -f "$bundle" ]; then die "cluster join-command gave no bundle file"; fi
        install -m 600 "$bundle" "$(node_dir "$node")/home/join-bundle.json"
        rm -f "$bundle"
        as_node "$node" medcell cluster join \
            --token "$(printf '%s' "$join" | json_field token)" \
            --bundle "$NODE_VIEW/home/join-bundle.json" \
            --advertise-addr "$(node_addr "$node")" \
            "$(printf '%s' "$join" | json_field manager)" >/dev/null
    done
    # `cluster init` started the gateway and the supervisor on node1; this waits until the
    # other nodes run theirs too.
    as_node node1 medcell up >/dev/null
}

cmd_up() {
    is_root || die "the lab needs root (network namespaces and engines of its own)"
    if lab_is_up; then
        say "the lab '$LAB' is already up"
        print_nodes
        return 0
    fi
    if ns_exists "$NET_NS" || [ -e "$LAB_DIR" ]; then
        say "removing what is left of an earlier lab '$LAB'"
        cmd_down
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd missing: make engine"
    [ -x "$ROOT_DIR/.venv/bin/medcell" ] || die "medcell missing: make venv"
    local started node
    started="$(date +%s)"
    # Everything the lab keeps lives in memory: it goes in one unmount, leaving nothing on disk
    # (three engines' image layers take over a minute to delete from a disk).
    mkdir -p "$LAB_DIR"
    mount -t tmpfs -o "size=$LAB_SIZE,mode=700" "medcell-$LAB" "$LAB_DIR"
    touch "$LAB_DIR/$MARKER"
    mkdir -m 700 "$NODE_VIEW"
    make_network
    for node in $NODES; do
        start_engine "$node"
    done
    save_images
    for node in $NODES; do
        wait_engine "$node"
    done
    say "loading the images into the three engines"
    load_images
    say "forming the cluster"
    form_cluster
    touch "$LAB_DIR/up"
    say "the lab '$LAB' is up in $(($(date +%s) - started)) s; run a command on a node with" \
        "bash deploy/lab.sh exec NODE -- COMMAND"
    print_nodes
}

# Stop every node's engine by its PID, all at once (a Swarm manager whose peers are gone takes
# long to shut down cleanly; nothing of the lab is kept, so after a while it is killed).
stop_engines() {
    local node pid pids="" waited=0
    for node in $NODES; do
        pid="$(engine_pid "$node")" || continue
        kill -TERM "$pid" 2>/dev/null || true
        pids="$pids $pid"
    done
    for pid in $pids; do
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 20 ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# What is left of a node: containerd and the shims in its network namespace, and the containers'
# processes in its cgroup (each container has a network namespace of its own).
node_processes() {
    local node="$1" ns procs
    ns="$(node_ns "$node")"
    ns_exists "$ns" && ip netns pids "$ns" 2>/dev/null
    for procs in /sys/fs/cgroup/pids/"medcell-$LAB-$node"/*/cgroup.procs \
        /sys/fs/cgroup/pids/"medcell-$LAB-$node"/cgroup.procs \
        /sys/fs/cgroup/"medcell-$LAB-$node"/*/cgroup.procs; do
        [ -f "$procs" ] && cat "$procs"
    done
    return 0
}

kill_node_processes() {
    local node="$1" pid tries=0
    while [ -n "$(node_processes "$node")" ] && [ "$tries" -lt 20 ]; do
        for pid in $(node_processes "$node"); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        sleep 0.2
        tries=$((tries + 1))
    done
}

remove_cgroups() {
    local node="$1" dir
    for dir in /sys/fs/cgroup/*/"medcell-$LAB-$node" /sys/fs/cgroup/"medcell-$LAB-$node"; do
        [ -d "$dir" ] || continue
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

cmd_down() {
    is_root || die "the lab needs root"
    local node ns
    stop_engines
    for node in $NODES; do
        ns="$(node_ns "$node")"
        kill_node_processes "$node"
        ns_exists "$ns" && ip netns delete "$ns"
        remove_cgroups "$node"
    done
    ns_exists "$NET_NS" && ip netns delete "$NET_NS"
    # An empty directory is what an `up` that failed before mounting left.
    if [ -d "$LAB_DIR" ] && ! mountpoint -q "$LAB_DIR"; then
        rmdir "$LAB_DIR" 2>/dev/null || true
    fi
    if [ -d "$LAB_DIR" ]; then
        [ -f "$LAB_DIR/$MARKER" ] || die "$LAB_DIR was not made by the lab; not removing it"
        if mountpoint -q "$LAB_DIR"; then
            umount "$LAB_DIR"
        else
            rm -rf --one-file-system -- "$LAB_DIR"
        fi
        [ ! -e "$LAB_DIR" ] || rmdir "$LAB_DIR"
    fi
    say "the lab '$LAB' is down"
}

cmd_status() {
    lab_is_up || {
        say "the lab '$LAB' is not up"
        return 1
    }
    print_nodes
}

cmd_link() {
    local state="$1" node="${2:-}"
    check_node "$node"
    ns_exists "$NET_NS" || die "the lab '$LAB' is not up"
    ip -n "$NET_NS" link set "$node" "$state"
    say "$node's link is $state"
}

cmd_exec() {
    local node="${1:-}"
    check_node "$node"
    shift
    [ "${1:-}" = "--" ] && shift
    [ "$#" -gt 0 ] || die "usage: bash deploy/lab.sh exec NODE -- COMMAND..."
    as_node "$node" "$@"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
exec)
    shift
    cmd_exec "$@"
    ;;
cut) cmd_link down "${2:-}" ;;
heal) cmd_link up "${2:-}" ;;
*) die "usage: bash deploy/lab.sh up|down|status|exec NODE -- COMMAND...|cut NODE|heal NODE" ;;
esac
