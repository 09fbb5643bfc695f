#!/usr/bin/env bash
# Boots, reaches and stops the fleet's QEMU VMs: real remote hosts with their
# own kernel, one booted with the pure cgroup v1 (legacy) hierarchy and one
# with pure cgroup v2 (unified). Used by molecule/fleet and by hand:
#
#   tests/vm/vm.sh start NAME v1|v2   boot NAME in the background, print its SSH port
#   tests/vm/vm.sh wait NAME...       wait until each answers on SSH
#   tests/vm/vm.sh ssh NAME [CMD...]  a shell (or CMD) on NAME as root
#   tests/vm/vm.sh stop NAME...       power off and remove NAME's runtime files
#   tests/vm/vm.sh list               the VMs running from this runtime directory
#
# Settings (environment):
#   HANDMADE_VM_RUNTIME_DIR  where pid, port and console files live ($BUILD/vm)
#   HANDMADE_VM_ACCEL        tcg (default) or kvm where KVM boots on this machine
#   HANDMADE_VM_MEMORY       guest RAM, default 1536M (the root fs lives in it)
#   HANDMADE_VM_CPUS         virtual CPUs, default 1 (two TCG VMs on a 2-core host)
#   HANDMADE_VM_BOOT_TIMEOUT seconds to wait for SSH, default 300
#   HANDMADE_VM_DISK         size of the disk kept across reboots, default 8G (sparse)
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"

RUNTIME_DIR=${HANDMADE_VM_RUNTIME_DIR:-$BUILD/vm}
ACCEL=${HANDMADE_VM_ACCEL:-tcg}
MEMORY=${HANDMADE_VM_MEMORY:-1536M}
CPUS=${HANDMADE_VM_CPUS:-1}
BOOT_TIMEOUT=${HANDMADE_VM_BOOT_TIMEOUT:-300}
DISK=${HANDMADE_VM_DISK:-8G}

# The VM's host keys are baked into the cached image and its ports are reused
# between runs, so there is nothing to remember about them.
SSH_OPTIONS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=8)

# What systemd needs on the kernel command line for each cgroup layout.
cgroup_cmdline() {
    case $1 in
        v1) echo "systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1" ;;
        v2) echo "systemd.unified_cgroup_hierarchy=1" ;;
        *) die "cgroup layout '$1' is unknown: use v1 (legacy) or v2 (unified)" ;;
    esac
}

vm_dir() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "VM name '$1' is not valid: use letters, digits, '_', '.', '-'"
    echo "$RUNTIME_DIR/$1"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The pid of NAME's QEMU if it still runs. The pid file alone could name a
# reused pid, so the process must also carry this VM's directory on its
# command line.
running_pid() {
    local dir=$1 pid
    pid=$(cat "$dir/qemu.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
    echo "$pid"
}

# Prints why QEMU cannot boot the fleet here, with the fix, and fails; or
# prints nothing and succeeds.
qemu_usable() {
    command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"; return 1; }
    local accelerators
    if ! accelerators=$(qemu-system-x86_64 -accel help 2>&1); then
        echo "$(command -v qemu-system-x86_64) does not run: $(tail -n 1 <<<"$accelerators")"
        return 1
    fi
    if ! grep -qx "$ACCEL" <<<"$accelerators"; then
        echo "$(command -v qemu-system-x86_64) has no $ACCEL accelerator (HANDMADE_VM_ACCEL=$ACCEL): Debian's qemu-system-x86 has tcg, the default"
        return 1
    fi
    if [ "$ACCEL" = kvm ] && [ ! -w /dev/kvm ]; then
        echo "HANDMADE_VM_ACCEL=kvm but /dev/kvm is not usable here: unset it to use TCG"
        return 1
    fi
    return 0
}

cmd_start() {
    local name=$1 layout=$2 dir image port pid
    dir=$(vm_dir "$name")
    cgroup_cmdline "$layout" >/dev/null
    if pid=$(running_pid "$dir"); then
        cat "$dir/port"
        return
    fi
    qemu_usable >&2 || exit 1
    image=$("$ROOT/tests/vm/build-image.sh")
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "$layout" >"$dir/layout"
    echo "$image" >"$dir/image"
    # The disk that keeps what a host keeps across a reboot (the image's /init
    # mounts it): sparse, so it costs what is written to it.
    truncate -s "$DISK" "$dir/disk.raw"
    mkfs.ext4 -q -F -L handmade-vm "$dir/disk.raw" ||
        die "mkfs.ext4 could not make the disk of VM $name (apt-get install e2fsprogs)"
    # A free port can be taken between choosing it and QEMU binding it:
    # QEMU then exits before daemonizing, and another port is tried.
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if qemu-system-x86_64 -name "$name" -machine q35 -accel "$ACCEL" -cpu max \
            -smp "$CPUS" -m "$MEMORY" \
            -kernel "$image/vmlinuz" -initrd "$image/root.cpio.gz" \
            -append "console=ttyS0 rdinit=/init mitigations=off systemd.hostname=$name $(cgroup_cmdline "$layout")" \
            -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net0 \
            -device virtio-rng-pci \
            -drive "file=$dir/disk.raw,format=raw,if=virtio" \
            -display none -vga none -monitor none -serial "file:$dir/console.log" \
            -daemonize -pidfile "$dir/qemu.pid" 2>"$dir/qemu.err"; then
            echo "$port" >"$dir/port"
            echo "$port"
            return
        fi
        grep -q 'hostfwd\|Could not set up host forwarding' "$dir/qemu.err" || break
    done
    cat "$dir/qemu.err" >&2
    rm -rf "$dir"
    die "QEMU could not start VM $name"
}

ssh_args() {
    local dir=$1
    echo "${SSH_OPTIONS[@]}" -i "$(cat "$dir/image")/id_ed25519" -p "$(cat "$dir/port")" root@127.0.0.1
}

cmd_wait() {
    local name dir started pid
    started=$SECONDS
    for name in "$@"; do
        dir=$(vm_dir "$name")
        [ -f "$dir/port" ] || die "VM $name was not started: tests/vm/vm.sh start $name v1|v2"
        # shellcheck disable=SC2046 # ssh_args is a list of words on purpose
        until ssh $(ssh_args "$dir") true 2>/dev/null; do
            if ! pid=$(running_pid "$dir"); then
                tail -n 30 "$dir/console.log" >&2
                die "VM $name stopped while booting (console above, full log in $dir/console.log)"
            fi
            if [ $((SECONDS - started)) -ge "$BOOT_TIMEOUT" ]; then
                tail -n 30 "$dir/console.log" >&2
                die "VM $name did not answer on SSH within ${BOOT_TIMEOUT}s (console above): a slow machine may need a larger HANDMADE_VM_BOOT_TIMEOUT"
            fi
            sleep 1
        done
    done
}

cmd_ssh() {
    local dir
    dir=$(vm_dir "$1")
    shift
    [ -f "$dir/port" ] || die "VM $(basename "$dir") is not running"
    # shellcheck disable=SC2046
    exec ssh $(ssh_args "$dir") "$@"
}

cmd_stop() {
    local name dir pid
    for name in "$@"; do
        dir=$(vm_dir "$name")
        if pid=$(running_pid "$dir"); then
            kill "$pid"
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -rf "$dir"
    done
    rmdir "$RUNTIME_DIR" 2>/dev/null || true
}

cmd_list() {
    local dir pid
    for dir in "$RUNTIME_DIR"/*/; do
        dir=${dir%/}
        pid=$(running_pid "$dir") || continue
        printf '%s\t%s\tport %s\tpid %s\n' "$(basename "$dir")" "$(cat "$dir/layout")" "$(cat "$dir/port")" "$pid"
    done
}

case ${1:-} in
    start) [ $# -eq 3 ] || die "usage: $0 start NAME v1|v2"; cmd_start "$2" "$3" ;;
    wait) shift; cmd_wait "$@" ;;
    ssh) [ $# -ge 2 ] || die "usage: $0 ssh NAME [CMD...]"; shift; cmd_ssh "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    list) cmd_list ;;
    usable) qemu_usable ;;
    *) die "usage: $0 start|wait|ssh|stop|list|usable (see the top of $0)" ;;
esac
