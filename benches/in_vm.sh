#!/usr/bin/env bash
# Runs a bench script inside a KVM guest on this machine, for measurements that the limits of
# the container the host runs in forbid: here the open-file hard limit of 20,000, which not even
# root can raise (no CAP_SYS_RESOURCE), while 100,000 connections need 100,000 descriptors in
# the server and as many in the client. The guest has its own kernel (Debian's, fetched with
# `apt-get download`), so root in it raises fs.nr_open, RLIMIT_NOFILE and net.core.somaxconn.
#
# The guest sees this machine's files read-only over virtio-9p (the repository, the release
# binaries, python3, the tools), has a fresh ext4 disk on /var/tmp for the bench's data
# directory (a sparse image file here), tmpfs on /tmp, and only a loopback network. It runs
# the command as root from the repository's root, copies its output to the console and to
# $VM_DIR/out/log, and powers off; this script exits with the command's status.
#
# Usage: VM_ENV="N=100000 SKIP_BUILD=1" benches/in_vm.sh benches/imap_scale.sh
# Build the release binaries first (the guest cannot write to the repository).
# Needs /dev/kvm and Debian's qemu-system-x86, busybox-static, kmod and e2fsprogs.
# Environment (defaults in brackets):
#   VM_ENV []  variables for the command in the guest, "A=1 B=2 C" (a bare C passes this
#     shell's value of C, which may hold spaces or newlines)
#   VM_MEM [16G]  VM_CPUS [nproc]  VM_DISK_GB [80]  VM_NOFILE [1000000]
#   VM_DIR [/var/tmp/yubin-vm] (kernel, initramfs, disk image, output)
#   VM_DISK_FROM [] (a directory copied onto the guest's /var/tmp disk)
#   VM_ACCEL [kvm] (tcg: emulate the CPU where /dev/kvm cannot run a 64-bit guest, as on
#     machines that are themselves virtual without nested virtualisation; ~10-25x slower)
#   VM_KERNEL_ARGS [quiet loglevel=3]  VM_CPU_MODEL [host,-arch-capabilities | max]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${VM_DIR:-/var/tmp/yubin-vm}
VM_MEM=${VM_MEM:-16G}
VM_CPUS=${VM_CPUS:-$(nproc)}
VM_DISK_GB=${VM_DISK_GB:-80}
VM_NOFILE=${VM_NOFILE:-1000000}
VM_ACCEL=${VM_ACCEL:-kvm}
[ $# -ge 1 ] || { echo "usage: benches/in_vm.sh COMMAND [ARGS...]" >&2; exit 2; }

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[ "$VM_ACCEL" != kvm ] || [ -w /dev/kvm ] || {
  echo "in_vm.sh: /dev/kvm is not usable here (VM_ACCEL=tcg emulates the CPU instead)" >&2
  exit 1
}
for tool in qemu-system-x86_64 busybox mkfs.ext4 /sbin/modprobe /sbin/depmod; do
  command -v "$tool" >/dev/null || {
    echo "in_vm.sh: $tool is missing (apt-get install qemu-system-x86 busybox-static kmod e2fsprogs)" >&2
    exit 1
  }
done
mkdir -p "$VM_DIR/out"

# The guest kernel: Debian's current one, unpacked here (not installed).
KDIR=$VM_DIR/kernel
if [ ! -d "$KDIR/boot" ]; then
  log "fetching Debian's kernel package"
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  rm -rf "$KDIR" "$VM_DIR/deb" && mkdir -p "$VM_DIR/deb"
  (cd "$VM_DIR/deb" && apt-get download "$pkg" 2>/dev/null)
  dpkg-deb -x "$VM_DIR"/deb/*.deb "$KDIR"
fi
KVER=$(ls "$KDIR/lib/modules" | head -1)
[ -f "$KDIR/lib/modules/$KVER/modules.dep" ] || /sbin/depmod -b "$KDIR" "$KVER"

# The initramfs: busybox and the modules for virtio, 9p and ext4, in dependency order.
INITRD=$VM_DIR/initrd.cpio.gz
if [ ! -f "$INITRD" ]; then
  log "building the initramfs"
  IR=$VM_DIR/initramfs
  rm -rf "$IR" && mkdir -p "$IR"/{bin,proc,sys,dev,newroot,mods}
  cp "$(command -v busybox)" "$IR/bin/busybox"
  : >"$IR/mods/order"
  for m in virtio_pci 9pnet_virtio 9p virtio_blk crc32c_generic ext4; do
    /sbin/modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}' |
      while read -r ko; do
        base=$(basename "$ko")
        grep -qx "$base" "$IR/mods/order" || { cp "$ko" "$IR/mods/"; echo "$base" >>"$IR/mods/order"; }
      done
  done
  cat >"$IR/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m" 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /newroot || exec sh
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs tmpfs /newroot/run
mount -t ext4 /dev/vda /newroot/var/tmp || exec sh
mkdir -p /newroot/tmp/vm-out
mount -t 9p -o trans=virtio,version=9p2000.L out /newroot/tmp/vm-out
for d in proc sys dev; do mount --move /$d /newroot/$d; done
exec switch_root /newroot /bin/bash /tmp/vm-out/guest.sh
INIT
  chmod +x "$IR/init"
  (cd "$IR" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
fi

# A fresh data disk each run (sparse: only what the guest writes takes space).
DISK=$VM_DIR/disk.img
rm -f "$DISK"
truncate -s "${VM_DISK_GB}G" "$DISK"
# VM_DISK_FROM: the disk starts with that directory's contents (mkfs.ext4 -d), e.g. a data
# directory prepared here at native speed.
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 ${VM_DISK_FROM:+-d "$VM_DISK_FROM"} "$DISK"

# What the guest runs: the limits raised, then the command, its status kept for this script.
{
  echo '#!/bin/bash'
  echo 'mount -t devpts devpts /dev/pts 2>/dev/null; mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm'
  echo 'mkdir -p /var/tmp/.home && export HOME=/var/tmp/.home'
  printf 'export PATH=%q\n' "$PATH"
  echo "ip link set lo up"
  echo "sysctl -qw fs.nr_open=$((VM_NOFILE + 1000)) fs.file-max=$((VM_NOFILE * 4))"
  echo "sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535"
  echo "sysctl -qw net.ipv4.ip_local_port_range='1024 65000' net.ipv4.tcp_tw_reuse=1"
  echo "ulimit -n $VM_NOFILE"
  printf 'cd %q\n' "$ROOT"
  echo "echo \"guest: kernel \$(uname -r), \$(nproc) CPUs, \$(awk '/MemTotal/ {print \$2}' /proc/meminfo) kB, ulimit -n \$(ulimit -n)\""
  # VM_ENV's words: NAME=VALUE as it stands, or a bare NAME for this shell's value of NAME
  # (which may hold spaces or newlines, e.g. several lines of TOML).
  for word in ${VM_ENV:-}; do
    case $word in
      *=*) printf 'export %q=%q\n' "${word%%=*}" "${word#*=}" ;;
      *) printf 'export %q=%q\n' "$word" "${!word-}" ;;
    esac
  done
  printf '%q ' "$@"
  echo ' 2>&1 | tee /tmp/vm-out/log'
  echo 'echo "${PIPESTATUS[0]}" >/tmp/vm-out/rc'
  echo 'sync; umount /var/tmp 2>/dev/null; poweroff -f'
} >"$VM_DIR/out/guest.sh"
rm -f "$VM_DIR/out/rc" "$VM_DIR/out/log"

if [ "$VM_ACCEL" = kvm ]; then
  ACCEL=kvm CPU_MODEL=${VM_CPU_MODEL:-host,-arch-capabilities}
else
  ACCEL=tcg,thread=multi,tb-size=1024 CPU_MODEL=${VM_CPU_MODEL:-max}
fi
log "booting the guest ($VM_CPUS CPUs, $VM_MEM, kernel $KVER): $*"
qemu-system-x86_64 -machine q35 -accel "$ACCEL" -cpu "$CPU_MODEL" -smp "$VM_CPUS" -m "$VM_MEM" \
  -nodefaults -nographic -no-reboot -serial stdio \
  -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD" \
  -append "console=ttyS0 ${VM_KERNEL_ARGS:-quiet loglevel=3} panic=-1" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$VM_DIR/out,mount_tag=out,security_model=none" \
  -drive "file=$DISK,if=virtio,format=raw,cache=writeback" </dev/null
rm -f "$DISK"
rc=$(cat "$VM_DIR/out/rc" 2>/dev/null || echo 1)
log "guest finished: status $rc (output in $VM_DIR/out/log)"
exit "$rc"
