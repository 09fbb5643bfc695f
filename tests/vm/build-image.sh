#!/usr/bin/env bash
# Builds the Debian VM image the fleet scenario boots: a kernel from Debian's
# linux-image package and a root filesystem packed as an initramfs, plus the
# SSH key that opens it. Every part comes from Debian's packages.
#
# Built once and cached under $CACHE/vm/<digest>/, where the digest covers
# this recipe and the kernel package it picks, so an unchanged recipe reuses
# the image and any edit here builds a new one. Prints the image directory.
#
#   tests/vm/build-image.sh            build (or reuse) and print the directory
#   tests/vm/build-image.sh --digest   print only the digest
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"

SUITE=bookworm
DEBIAN_MIRROR=${HANDMADE_VM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the managed hosts need to run the collection (python3), be reached
# (openssh-server, networkd from systemd), and run the collection's own
# integration tests in place (python3-pytest; busybox-static and gnupg for
# the offline Alpine mirror fixture; gcc and libc6-dev for the small static
# programs the isolation tests run inside containers).
PACKAGES=python3,python3-pytest,openssh-server,systemd-sysv,kmod,udev,iproute2,procps,util-linux,busybox-static,gnupg
PACKAGES=$PACKAGES,gcc,libc6-dev
# The kernel's drivers for QEMU's virtio devices are modules in Debian's
# kernel, so the root filesystem carries them (and what they depend on).
# overlay, veth and bridge are there for container networking experiments;
# loop gives the device tests a block device of their own to refuse.
# virtio_blk and ext4 mount the VM's disk, which keeps what a host keeps
# across a reboot (see /init below).
MODULES="virtio_pci virtio_net virtio_rng virtio_blk ext4 overlay veth bridge loop"

# The newest kernel the linux-image-amd64 metapackage points at; naming it in
# the digest makes a kernel update build a new image.
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}

image_digest() {
    { cat "${BASH_SOURCE[0]}"; echo "$1"; } | sha256sum | cut -c1-16
}

build_image() {
    local out=$1 kernel_pkg=$2 work root kver module
    work=$(mktemp -d "$CACHE/vm/.build.XXXXXX")
    # A failed or interrupted build leaves no half-made image behind.
    trap 'rm -rf "$work"' EXIT
    root=$work/root

    log "debootstrap $SUITE (minbase) into $root"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

    log "kernel $kernel_pkg"
    (cd "$work" && apt-get download -q "$kernel_pkg" >/dev/null) ||
        die "apt-get download $kernel_pkg failed: run apt-get update, or set HANDMADE_VM_DEBIAN_MIRROR"
    dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
    kver=${kernel_pkg#linux-image-}
    cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
    # Only the modules the VM loads, found with their dependencies by modprobe
    # itself over the full tree, then indexed for the VM's own modprobe.
    depmod -b "$work/kernel" "$kver"
    for module in $MODULES; do
        modprobe -d "$work/kernel" -S "$kver" --show-depends "$module" | awk '$1 == "insmod" {print $2}'
    done | sort -u | while read -r path; do
        mkdir -p "$root$(dirname "${path#"$work/kernel"}")"
        cp "$path" "$root${path#"$work/kernel"}"
    done
    cp "$work/kernel/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
    depmod -b "$root" "$kver"

    log "configuring the root filesystem"
    ssh-keygen -q -t ed25519 -N '' -C handmade-fleet -f "$work/id_ed25519"
    install -d -m 700 "$root/root/.ssh"
    install -m 600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    # DHCP on QEMU's user network (10.0.2.15, host loopback at 10.0.2.2).
    cat >"$root/etc/systemd/network/20-dhcp.network" <<'EOF'
[Match]
Name=e*

[Network]
DHCP=ipv4
EOF
    chroot "$root" systemctl enable -q systemd-networkd ssh
    # Nothing asks for a loop device by name at boot: load the driver, so
    # that losetup finds /dev/loop-control.
    mkdir -p "$root/etc/modules-load.d"
    printf 'loop\n' >"$root/etc/modules-load.d/loop.conf"
    # Nothing here needs to wait for the network or for a login prompt on
    # every virtual terminal; the serial console still gets one.
    chroot "$root" systemctl mask -q systemd-networkd-wait-online getty@tty1
    # Each VM gets its name from the kernel command line (systemd.hostname=).
    : >"$root/etc/hostname"
    : >"$root/etc/machine-id"
    printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
    # The kernel runs /init from the initramfs. pivot_root(2) refuses to move
    # the initial rootfs (it has no parent mount), and containers need
    # pivot_root, so /init bind-mounts the rootfs onto a mount of its own,
    # moves that over / and starts systemd there.
    #
    # The root filesystem is RAM, new at every boot. What a host keeps across
    # a reboot (the collection's boot records, root filesystems and runtime
    # in /var/lib/handmade-containers, the units in /etc/systemd/system) lives
    # on the VM's disk (vm.sh gives each VM one, ext4): the first boot copies
    # the image's directories there, every boot mounts them over the image's.
    mkdir "$root/sysroot" "$root/persist"
    cat >"$root/init" <<'EOF'
#!/bin/sh
# Every mount is made below /sysroot before it moves over /: until the
# chroot, this process's root is still the initramfs beneath it.
mount --bind / /sysroot
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for module in virtio_pci virtio_blk ext4; do modprobe "$module"; done
for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
if mount -t ext4 /dev/vda /sysroot/persist; then
    for kept in var/lib/handmade-containers etc/systemd/system; do
        mkdir -p "/sysroot/$kept"
        if [ ! -d "/sysroot/persist/$kept" ]; then
            mkdir -p "/sysroot/persist/$kept"
            cp -a "/sysroot/$kept/." "/sysroot/persist/$kept/"
        fi
        mount --bind "/sysroot/persist/$kept" "/sysroot/$kept"
    done
else
    echo "init: no disk at /dev/vda: nothing is kept across a reboot" >&2
fi
umount /dev
umount /proc
cd /sysroot
mount --move . /
exec chroot . /sbin/init "$@"
EOF
    chmod 755 "$root/init"
    rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

    log "packing the initramfs"
    (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$work/root.cpio.gz"
    printf 'kernel %s\nsuite %s\npackages %s\n' "$kver" "$SUITE" "$PACKAGES" >"$work/recipe.txt"
    rm -rf "$root" "$work/kernel" "$work"/*.deb
    mv "$work" "$out"
    trap - EXIT
}

# Images of earlier recipes are about 80 MB each: drop those that no running
# QEMU boots from (a VM keeps its image open through its command line).
remove_unused_images() {
    local keep=$1 image
    for image in "$CACHE"/vm/*/; do
        image=${image%/}
        [ "$image" = "$keep" ] && continue
        pgrep -f -- "$image/" >/dev/null || rm -rf "$image"
    done
}

main() {
    local kernel_pkg digest out
    kernel_pkg=$(kernel_package)
    if [ -z "$kernel_pkg" ]; then
        apt-get update -qq
        kernel_pkg=$(kernel_package)
    fi
    [ -n "$kernel_pkg" ] || die "no linux-image-amd64 in the apt sources: the VM kernel comes from Debian's package"
    digest=$(image_digest "$kernel_pkg")
    if [ "${1:-}" = --digest ]; then
        echo "$digest"
        return
    fi
    out=$CACHE/vm/$digest
    if [ ! -f "$out/root.cpio.gz" ]; then
        require_root molecule-fleet
        apt_install debootstrap cpio openssh-client kmod
        mkdir -p "$CACHE/vm"
        build_image "$out" "$kernel_pkg"
        remove_unused_images "$out"
    fi
    echo "$out"
}

main "$@"
