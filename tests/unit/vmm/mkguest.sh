#!/bin/sh
# Builds the boot-test guest in OUTDIR: vmlinuz from Debian's cloud kernel
# package (cached in $BANGER_TEST_CACHE, default /var/cache/banger-test,
# downloaded with apt-get the first time) and a tiny gzip'd cpio initramfs:
# static busybox, the virtio modules the cloud kernel does not build in, and
# an /init driven by the kernel command line. Exit 77 (skip) when a tool or
# the package is unavailable.
set -eu
out=${1:?usage: mkguest.sh OUTDIR}
cache=${BANGER_TEST_CACHE:-/var/cache/banger-test}
skip() { echo "skip: $*" >&2; exit 77; }

for tool in dpkg-deb cpio gzip tar; do
	command -v "$tool" >/dev/null || skip "needs $tool"
done
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || skip "needs busybox-static (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && skip "$busybox is dynamically linked: apt-get install busybox-static"

deb=$(ls "$cache"/linux-image-6.1.0-*-cloud-amd64_*.deb 2>/dev/null | sort | tail -n 1 || true)
if [ -z "$deb" ]; then
	mkdir -p "$cache" || skip "cannot create $cache"
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-6\.1\.0-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || skip "cannot resolve linux-image-cloud-amd64 with apt-cache"
	(cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || skip "apt-get download $pkg failed (no mirror?)"
	deb=$(ls "$cache"/linux-image-6.1.0-*-cloud-amd64_*.deb | sort | tail -n 1)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
	'./lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/drivers/block/virtio_blk.ko' \
	'./lib/modules/*/kernel/drivers/char/virtio_console.ko' './lib/modules/*/kernel/net/core/failover.ko' \
	'./lib/modules/*/kernel/drivers/net/net_failover.ko' './lib/modules/*/kernel/drivers/net/virtio_net.ko'
mkdir -p "$out"
cp "$tmp"/boot/vmlinuz-* "$out/vmlinuz"

root=$tmp/root
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev"
cp "$busybox" "$root/bin/busybox"
# Dependency order: the kernel cannot resolve symbols of modules not loaded yet.
mods="virtio_ring virtio virtio_mmio virtio_blk virtio_console failover net_failover virtio_net"
for m in $mods; do
	cp "$(find "$tmp/lib/modules" -name "$m.ko")" "$root/lib/modules/"
done
cat > "$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
if grep -q 'banger.probe=1' /proc/cmdline; then
	echo "banger-init: probe ok"
	poweroff -f
fi
echo "vmm-test: init up"
for m in $mods; do insmod /lib/modules/\$m.ko; done
echo "vmm-test: cmdline \$(cat /proc/cmdline)"
for i in \$(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
for d in vda vdb; do
	[ -b /dev/\$d ] && echo "vmm-test: \$d ro=\$(cat /sys/block/\$d/ro) head=\$(head -c 12 /dev/\$d)"
done
for i in \$(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
[ -e /sys/class/net/eth0 ] && echo "vmm-test: eth0 mac=\$(cat /sys/class/net/eth0/address)"
port=
for p in /sys/class/virtio-ports/*; do
	[ "\$(cat \$p/name 2>/dev/null)" = banger.agent ] && port=/dev/\${p##*/}
done
echo "vmm-test: agent port=\$port"
if grep -q 'vmmtest=sleep' /proc/cmdline; then
	echo "vmm-test: sleeping"
	while :; do
		[ -n "\$port" ] && echo "ping from guest" > "\$port" 2>/dev/null
		sleep 0.5
	done
fi
echo "vmm-test: done"
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$out/initrd.img")
echo "$out"
