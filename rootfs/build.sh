#!/usr/bin/env bash
# Build the guest root filesystem: rootfs/tree/ (staging tree) and
# rootfs/busybox.cpio (newc archive of it).  Runs without root, is quiet
# unless something fails, and only redoes the expensive steps (busybox
# download, compiling tests/progs/*.c) when needed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=$HERE/cache
TREE=$HERE/tree
OUT=$HERE/busybox.cpio
CC=${CC:-gcc}

umask 022
export LC_ALL=C
mkdir -p "$CACHE/progs"

die() { echo "rootfs/build.sh: $*" >&2; exit 1; }

# ---- 1. busybox-static from Debian -------------------------------------
fetch_busybox() {
    local tmp log
    tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    log=$tmp/log
    if ! (cd "$tmp" && apt-get download busybox-static) >"$log" 2>&1; then
        if [ "$(id -u)" = 0 ] && apt-get update -qq >>"$log" 2>&1 &&
           (cd "$tmp" && apt-get download busybox-static) >>"$log" 2>&1; then
            :
        else
            cat "$log" >&2
            rm -rf "$tmp"
            die "'apt-get download busybox-static' failed; the apt package lists are probably empty: run 'apt-get update' (as root) and retry"
        fi
    fi
    dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x" 2>>"$log" || { cat "$log" >&2; rm -rf "$tmp"; die "dpkg-deb -x failed"; }
    [ -x "$tmp/x/bin/busybox" ] || { rm -rf "$tmp"; die "busybox-static package has no bin/busybox"; }
    cp "$tmp/x/bin/busybox" "$CACHE/busybox.tmp"
    chmod 755 "$CACHE/busybox.tmp"
    mv -f "$CACHE/busybox.tmp" "$CACHE/busybox"
    rm -rf "$tmp"
}
[ -x "$CACHE/busybox" ] || fetch_busybox

# ---- 2. guest test programs --------------------------------------------
shopt -s nullglob
# a shared header (results.h, inet.h) newer than a program rebuilds it
newer_header() {
    local h
    for h in "$REPO"/tests/progs/*.h; do
        [ "$h" -nt "$1" ] && return 0
    done
    return 1
}
PIE_PROGRAMS="t_misc t_forkwait t_cloexec t_escape t_gdb t_statx t_aslr"
for src in "$REPO"/tests/progs/*.c; do
    name=$(basename "$src" .c)
    bin=$CACHE/progs/$name
    # a first line `// cflags: ...` adds flags (t_gdb: -g -O0 for the debugger)
    extra=$(sed -n '1s|^// cflags: ||p' "$src")
    if [ ! -e "$bin" ] || [ "$src" -nt "$bin" ] || newer_header "$bin"; then
        "$CC" -static -O1 -Wall -pthread $extra -o "$bin.tmp" "$src" || die "compiling $src failed"
        mv -f "$bin.tmp" "$bin"
    fi
    # the programs the tests also run as static PIEs (loaded at a bias,
    # ET_DYN); not every program: the tree is the initramfs, held in the
    # guest's RAM (a few hundred static binaries filled 256M's rootfs)
    case " $PIE_PROGRAMS " in *" $name "*) ;; *) continue ;; esac
    if [ ! -e "$bin.pie" ] || [ "$src" -nt "$bin.pie" ] || newer_header "$bin.pie"; then
        "$CC" -static-pie -fPIE -O1 -Wall -pthread $extra -o "$bin.pie.tmp" "$src" || die "compiling $src (static-pie) failed"
        mv -f "$bin.pie.tmp" "$bin.pie"
    fi
done

# ---- 3. staging tree ----------------------------------------------------
rm -rf "$TREE"
mkdir -p "$TREE"
chmod 755 "$TREE"
cd "$TREE"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp root etc mnt home var run \
         t/bin t/sh t/data
chmod 1777 tmp
chmod 700 root
install -m 755 "$CACHE/busybox" bin/busybox

while read -r applet; do
    case $applet in
        bin/busybox) continue ;;
        bin/*)                  target=busybox ;;
        sbin/*)                 target=../bin/busybox ;;
        usr/bin/*|usr/sbin/*)   target=../../bin/busybox ;;
        *) continue ;;          # e.g. "linuxrc" at the top level
    esac
    [ -e "$applet" ] || [ -L "$applet" ] || ln -s "$target" "$applet"
done < <("$CACHE/busybox" --list-full | sort)

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
              'user:x:1000:1000:user:/home/user:/bin/sh' > etc/passwd
printf '%s\n' 'root:x:0:' 'user:x:1000:' > etc/group
printf '%s\n' 'umlpy' > etc/hostname
# udhcpc's event script where busybox looks for it (Debian's build: /etc/udhcpc)
install -D -m 755 "$HERE/udhcpc/default.script" usr/share/udhcpc/default.script
mkdir -p etc/udhcpc
ln -s /usr/share/udhcpc/default.script etc/udhcpc/default.script

for src in "$REPO"/tests/progs/*.c; do     # only programs that still have a source
    name=$(basename "$src" .c)
    install -m 755 "$CACHE/progs/$name" t/bin/
    case " $PIE_PROGRAMS " in *" $name "*) install -m 755 "$CACHE/progs/$name.pie" t/bin/ ;; esac
done
for sh in "$REPO"/tests/shell/*.sh; do
    install -m 644 "$sh" t/sh/
done

# Fixed data files for the shell battery (T_DATA / /t/data).
python3 - t/data <<'EOF'
import sys, os
d = sys.argv[1]
def w(name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
syl = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "xe", "zu", "ba", "de"]
x = 12345
def rnd():
    global x
    x = (x * 1103515245 + 12345) % 2147483648
    return x >> 16
words = []
for i in range(200):
    n = 1 + rnd() % 3
    words.append("".join(syl[rnd() % len(syl)] for _ in range(n)))
w("words", "".join(s + "\n" for s in words))
w("numbers", "".join("%d\n" % (rnd() % 1000) for _ in range(100)))
fruits = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]
colors = ["red", "green", "blue", "yellow"]
rows = ["id,name,color,qty"]
for i in range(1, 41):
    rows.append("%d,%s,%s,%d" % (i, fruits[rnd() % len(fruits)],
                                colors[rnd() % len(colors)], rnd() % 50))
w("table.csv", "".join(r + "\n" for r in rows))
lorem = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim "
         "ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
         "aliquip ex ea commodo consequat. Duis aute irure dolor in "
         "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla "
         "pariatur. Excepteur sint occaecat cupidatat non proident, sunt in "
         "culpa qui officia deserunt mollit anim id est laborum.").split()
lines, cur = [], []
for wd in lorem * 3:
    cur.append(wd)
    if len(cur) == 7 + len(lines) % 5:
        lines.append(" ".join(cur))
        cur = []
if cur:
    lines.append(" ".join(cur))
w("lorem.txt", "".join(l + "\n" for l in lines))
w("hello.txt", "hello world\n")
EOF
chmod 644 t/data/*

# ---- 4. archive ---------------------------------------------------------
python3 "$HERE/mkcpio.py" "$TREE" "$OUT"

# ---- 5. disk image (ext4) -------------------------------------------------
# The same tree plus init's files, made with `mke2fs -t ext4 -d` (Debian
# 12's ext4 defaults, as the images users have).  Rebuilt only when its
# content or its making changes: a new image invalidates every COW file made
# on the old one (rootfs/run.cow is then removed).
IMGTREE=$HERE/imgtree
IMG=$HERE/busybox.img
rm -rf "$IMGTREE"
cp -a "$TREE" "$IMGTREE"
install -m 644 "$HERE/etc/inittab" "$IMGTREE/etc/inittab"
install -m 600 "$HERE/etc/shadow" "$IMGTREE/etc/shadow"      # root's password: umlpy
install -m 644 "$HERE/etc/issue" "$IMGTREE/etc/issue"
mkdir -p "$IMGTREE/etc/init.d"
install -m 755 "$HERE/etc/init.d/rcS" "$IMGTREE/etc/init.d/rcS"
python3 "$HERE/mkcpio.py" "$IMGTREE" "$CACHE/imgtree.cpio"
MKFS_VERSION=ext4-256-4k    # change it when the image's making changes
sum=$( (cat "$CACHE/imgtree.cpio"; echo "$MKFS_VERSION") | sha256sum | cut -d' ' -f1)
if [ ! -f "$IMG" ] || [ "$(cat "$CACHE/busybox.img.sum" 2>/dev/null)" != "$sum" ]; then
    rm -f "$IMG.tmp"
    # the tree plus 256 MiB free for what a user or a test writes, in 16 MiB
    # steps (sparse on the host: only what is written takes room)
    size=$(( ($(du -sm "$IMGTREE" | cut -f1) + 256 + 15) / 16 * 16 ))
    mke2fs -q -F -t ext4 -T default -E root_owner=0:0 -d "$IMGTREE" "$IMG.tmp" "${size}M" >/dev/null \
        || die "mke2fs failed"
    if [ "$(id -u)" != 0 ]; then
        # mke2fs -d keeps the builder's uid/gid: give everything to root
        (cd "$IMGTREE" && find . -mindepth 1 | sed 's|^\.||' |
            while read -r p; do printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"; done) |
            debugfs -w -f - "$IMG.tmp" >/dev/null 2>&1 || die "debugfs chown failed"
    fi
    mv -f "$IMG.tmp" "$IMG"
    echo "$sum" > "$CACHE/busybox.img.sum"
    rm -f "$HERE/run.cow"
fi
rm -rf "$IMGTREE"
